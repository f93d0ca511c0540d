"""Run one engine job from a widget and get called back with its start, progress, partial results, result, failure
or cancellation: the one way workspaces follow their jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject

from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.engine.client import Engine


class JobCall(QObject):
    """Follows one job's events; deletes itself when the job ends. Callbacks run on the UI thread; ``on_end`` runs
    after whichever of ``on_done``, ``on_fail`` and ``on_cancel`` ended the job."""

    def __init__(
        self,
        engine: Engine,
        spec: JobSpec,
        on_done: Callable[[Any], None] | None = None,
        on_fail: Callable[[str], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
        on_started: Callable[[], None] | None = None,
        on_progress: Callable[[JobEvent], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(engine)
        self.spec = spec
        self._callbacks: dict[EventType, Callable[[JobEvent], None]] = {}
        for state, callback in ((EventType.FINISHED, on_done and (lambda e: on_done(e.payload))),
                                (EventType.FAILED, on_fail and (lambda e: on_fail(e.message))),
                                (EventType.PARTIAL, on_partial and (lambda e: on_partial(e.payload))),
                                (EventType.CANCELLED, on_cancel and (lambda e: on_cancel())),
                                (EventType.STARTED, on_started and (lambda e: on_started())),
                                (EventType.PROGRESS, on_progress)):
            if callback:
                self._callbacks[state] = callback
        self._on_end = on_end
        self._engine = engine
        engine.event.connect(self._on_event)  # before submit: the engine reports QUEUED at once
        self.job_id = engine.submit(spec)

    def _on_event(self, event: JobEvent) -> None:
        if event.job_id != self.spec.job_id:
            return
        callback = self._callbacks.get(event.type)
        if callback:
            callback(event)
        if event.type.is_terminal:
            self._engine.event.disconnect(self._on_event)
            self.deleteLater()
            if self._on_end:
                self._on_end()


def run_job(engine: Engine, spec: JobSpec, **callbacks: Callable[..., None]) -> JobCall:
    return JobCall(engine, spec, **callbacks)
