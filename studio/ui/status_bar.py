"""The status bar: device, what runs and what waits, progress with ETA, messages (failures in red), Cancel.

Everything is driven by the engine's signals (delivered on the UI thread) and by work outside the engine that a
workspace reports (a training run in its child process); nothing here waits for a job.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from studio.core.jobs import EventType, JobEvent
from studio.core.machine_report import MachineReport, status_summary
from studio.core.plain_words import job_words
from studio.engine.client import Engine

MESSAGE_MS = 8000


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s left"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s left"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min left"


class StudioStatusBar(QStatusBar):
    def __init__(self, engine: Engine, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self._engine = engine
        self._running: int | None = None
        self._length = 0  # jobs queued or running in the engine
        self._background: dict[str, str] = {}  # work outside the engine, e.g. {"training": "Training …: 40%"}
        self._message_error = False
        self.message_label = QLabel("")
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.device_label = QLabel("Starting model engine…")
        self.device_label.setObjectName("deviceLabel")
        self.queue_label = QLabel("Idle")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.eta_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("danger")
        self.cancel_button.setToolTip("Cancel all running and queued jobs (Esc cancels the current workspace's job)")
        self.cancel_button.clicked.connect(self.cancel_all)
        self.addWidget(self.message_label, 1)
        for widget in (self.eta_label, self.progress, self.cancel_button, self.queue_label, self.device_label):
            self.addPermanentWidget(widget)
        self._clear_timer = QTimer(self)
        self._clear_timer.setSingleShot(True)
        self._clear_timer.timeout.connect(lambda: self.message_label.setText(""))
        engine.ready.connect(self._on_ready)
        engine.queue_changed.connect(self._on_queue)
        engine.event.connect(self._on_event)
        engine.machine_report.connect(self._on_report)
        if engine.device_description:
            self._on_ready(engine.device_description)
        if engine.report is not None:
            self._on_report(engine.report)
        self._on_queue(engine.queue_length)

    # --- messages ------------------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = False) -> None:
        """Errors stay until the next message; other messages fade after a few seconds."""
        self._message_error = error
        self.message_label.setStyleSheet("color: #ff7b72;" if error else "")
        self.message_label.setText(text)
        self.message_label.setToolTip(text)
        if error:
            self._clear_timer.stop()
        else:
            self._clear_timer.start(MESSAGE_MS)

    @property
    def message(self) -> str:
        return self.message_label.text()

    @property
    def message_is_error(self) -> bool:
        return self._message_error

    def cancel_all(self) -> None:
        self._engine.cancel_all()
        self.show_message("Cancelling all jobs…")

    def set_background(self, key: str, text: str) -> None:
        """Work that runs outside the engine under ``key`` ("" when it ended): shown beside the engine's jobs,
        never as Idle."""
        self._background[key] = text
        self._show_activity()

    @property
    def activity(self) -> str:
        return self.queue_label.text()

    def _show_activity(self) -> None:
        running = 1 if self._running is not None else 0
        waiting = max(0, self._length - running)
        parts = (["1 job running"] if running else []) + ([f"{waiting} waiting"] if waiting else [])
        text = " · ".join([*parts, *(t for t in self._background.values() if t)]) or "Idle"
        self.queue_label.setText(text)

    # --- engine signals ---------------------------------------------------------------------------
    def _on_ready(self, description: str) -> None:
        self.device_label.setText(description)
        self.device_label.setToolTip(f"Models run on: {description}")

    def _on_report(self, report: MachineReport) -> None:
        """The device with a plain warning when a GPU is there but unused; the whole report in the tooltip."""
        text, tooltip, warn = status_summary(report)
        self.device_label.setText(text)
        self.device_label.setToolTip(tooltip)
        self.device_label.setStyleSheet("color: #f0b429;" if warn else "")

    def _on_queue(self, length: int) -> None:
        busy = length > 0
        self._length = length
        self.cancel_button.setVisible(busy)
        self.progress.setVisible(busy)
        self.eta_label.setVisible(busy)
        if not busy:
            self._running = None
            self.progress.setValue(0)
            self.eta_label.setText("")
        self._show_activity()

    def _on_event(self, event: JobEvent) -> None:
        was_running = event.job_id == self._running
        if event.type.is_terminal and was_running:
            self._running = None
            self._show_activity()
        if event.type is EventType.STARTED:
            self._running = event.job_id
            self._show_activity()
            self.progress.setValue(0)
            self.progress.setFormat(f"{job_words(event.kind)} %p%")
            self.eta_label.setText(format_eta(None))
        elif event.type is EventType.PROGRESS and event.job_id == self._running:
            self.progress.setValue(int(event.fraction * 1000))
            self.eta_label.setText(format_eta(event.eta_s))
            if event.message:
                self.progress.setToolTip(event.message)
        elif event.type is EventType.FAILED:
            self.show_message(f"{job_words(event.kind)} failed: {event.message}", error=True)
        elif event.type is EventType.CANCELLED:
            self.show_message(f"{job_words(event.kind)}: {event.message or 'cancelled'}")
        elif event.type is EventType.FINISHED and was_running:
            self.progress.setValue(1000)
            self.eta_label.setText("done")
