"""Run one engine job from a widget and get called back with its result, partials and failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject

from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.engine.client import Engine


class JobCall(QObject):
    """Follows one job's events; deletes itself when the job ends. Callbacks run on the UI thread."""

    def __init__(
        self,
        engine: Engine,
        spec: JobSpec,
        on_done: Callable[[Any], None] | None = None,
        on_fail: Callable[[str], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(engine)
        self.spec = spec
        self._callbacks = (on_done, on_fail, on_partial, on_cancel)
        self._engine = engine
        engine.event.connect(self._on_event)
        self.job_id = engine.submit(spec)

    def _on_event(self, event: JobEvent) -> None:
        if event.job_id != self.spec.job_id:
            return
        on_done, on_fail, on_partial, on_cancel = self._callbacks
        if event.type is EventType.PARTIAL and on_partial:
            on_partial(event.payload)
        elif event.type is EventType.FINISHED and on_done:
            on_done(event.payload)
        elif event.type is EventType.FAILED and on_fail:
            on_fail(event.message)
        elif event.type is EventType.CANCELLED and on_cancel:
            on_cancel()
        if event.type.is_terminal:
            self._engine.event.disconnect(self._on_event)
            self.deleteLater()


def run_job(engine: Engine, spec: JobSpec, **callbacks: Callable[..., None]) -> JobCall:
    return JobCall(engine, spec, **callbacks)
