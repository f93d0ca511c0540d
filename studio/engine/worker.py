"""The model worker: one QObject on its own QThread that owns every model and runs jobs one at a time.

Jobs arrive through a thread-safe queue (not queued signals, which would wait behind a busy slot) and cancellation
is a token per job, so cancelling never waits for the running step to end.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from studio.core.cancel import CancelToken, JobCancelled
from studio.core.context import JobContext
from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.core.settings import Settings

log = logging.getLogger(__name__)

_STOP = object()


class ModelWorker(QObject):
    """Lives in the worker thread. ``event`` carries JobEvents; ``ready`` carries the device description, and
    ``report`` the machine report right after (what runs where and why; see studio.ml.doctor)."""

    event = Signal(object)
    ready = Signal(str)
    report = Signal(object)  # MachineReport

    def __init__(self, settings: Settings, tasks: dict[str, Callable[..., Any]] | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._tasks = tasks
        self._queue: queue.Queue[Any] = queue.Queue()
        self._tokens: dict[int, CancelToken] = {}
        self._lock = threading.Lock()
        self.resources: Any = None

    # --- called from any thread -------------------------------------------------------------------
    def enqueue(self, spec: JobSpec) -> None:
        with self._lock:
            self._tokens[spec.job_id] = CancelToken()
        self._queue.put(spec)

    def cancel(self, job_id: int) -> None:
        with self._lock:
            token = self._tokens.get(job_id)
        if token is not None:
            token.cancel()

    def cancel_all(self) -> None:
        with self._lock:
            tokens = list(self._tokens.values())
        for token in tokens:
            token.cancel()

    def stop(self) -> None:
        self.cancel_all()
        self._queue.put(_STOP)

    # --- runs in the worker thread ----------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        self._setup()
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            self._run_job(item)
        self.resources = None

    def _setup(self) -> None:
        # torch is imported here, in the worker thread, so the window appears before it finishes loading.
        from studio.ml.device import describe_device
        from studio.ml.resources import Resources
        from studio.ml.tasks import all_tasks

        if self._tasks is None:
            self._tasks = all_tasks()
        self.resources = Resources.from_settings(self._settings)
        self.ready.emit(describe_device(self.resources.device))
        self._report()

    def _report(self) -> None:
        from studio.ml.doctor import diagnose

        try:
            self.report.emit(diagnose(self.resources))
        except Exception:  # the report is information; a machine it cannot describe must still run jobs
            log.exception("could not describe this machine")

    def _run_job(self, spec: JobSpec) -> None:
        from studio.ml.tasks.runner import describe_error, run_task

        with self._lock:
            token = self._tokens.get(spec.job_id) or CancelToken()
        emit = self.event.emit
        try:
            if token.cancelled:
                emit(JobEvent(spec.job_id, spec.kind, EventType.CANCELLED, message="Cancelled before it started"))
                return
            fn = self._tasks.get(spec.kind)
            if fn is None:
                emit(JobEvent(spec.job_id, spec.kind, EventType.FAILED, message=f"Unknown job kind {spec.kind!r}"))
                return
            ctx = JobContext(spec, emit, token, self.resources.device, self.resources)
            emit(JobEvent(spec.job_id, spec.kind, EventType.STARTED))
            try:
                result = run_task(fn, spec, ctx)
            except JobCancelled:
                emit(JobEvent(spec.job_id, spec.kind, EventType.CANCELLED, message="Cancelled"))
                return
            except Exception as exc:
                log.exception("job %s (%s) failed", spec.job_id, spec.kind)
                emit(JobEvent(spec.job_id, spec.kind, EventType.FAILED, message=describe_error(exc)))
                return
            emit(JobEvent(spec.job_id, spec.kind, EventType.FINISHED, fraction=1.0, payload=result))
        finally:
            with self._lock:
                self._tokens.pop(spec.job_id, None)
