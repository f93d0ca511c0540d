"""The UI-side handle on the engine: submit, cancel, follow events, shut down in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.core.settings import Settings
from studio.engine.worker import ModelWorker


class Engine(QObject):
    """Owns the worker thread. Signals are delivered in the thread that created the Engine (the UI thread)."""

    event = Signal(object)  # JobEvent
    queue_changed = Signal(int)  # jobs queued or running
    ready = Signal(str)  # device description, once models can run
    machine_report = Signal(object)  # MachineReport: what runs where and why (after ready, and after a re-measure)

    def __init__(
        self,
        settings: Settings | None = None,
        tasks: dict[str, Callable[..., Any]] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pending: dict[int, JobSpec] = {}
        self.device_description = ""
        self.report: Any = None  # the latest MachineReport
        self._thread = QThread()
        self._thread.setObjectName("studio-model-worker")
        self._worker = ModelWorker(settings or Settings(), tasks)
        self._worker.moveToThread(self._thread)
        self._worker.event.connect(self._on_event)
        self._worker.ready.connect(self._on_ready)
        self._worker.report.connect(self.set_report)
        self._thread.started.connect(self._worker.run)
        self._thread.start()

    def submit(self, spec: JobSpec) -> int:
        self._pending[spec.job_id] = spec
        self._worker.enqueue(spec)
        self.event.emit(JobEvent(spec.job_id, spec.kind, EventType.QUEUED))
        self.queue_changed.emit(len(self._pending))
        return spec.job_id

    def cancel(self, job_id: int) -> None:
        self._worker.cancel(job_id)

    def cancel_all(self) -> None:
        self._worker.cancel_all()

    @property
    def queue_length(self) -> int:
        return len(self._pending)

    def is_pending(self, job_id: int) -> bool:
        return job_id in self._pending

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything, stop the loop, then quit and wait: no thread is destroyed while running."""
        if not self._thread.isRunning():
            return True
        self._worker.stop()
        self._thread.quit()
        return self._thread.wait(timeout_ms)

    def _on_ready(self, description: str) -> None:
        self.device_description = description
        self.ready.emit(description)

    def set_report(self, report: Any) -> None:
        """A new machine report (from the worker at start, or from a ``system.speed`` job)."""
        self.report = report
        self.machine_report.emit(report)

    def _on_event(self, event: JobEvent) -> None:
        if event.type.is_terminal:
            self._pending.pop(event.job_id, None)
            self.queue_changed.emit(len(self._pending))
        self.event.emit(event)
