"""Training runs in a child process so a crash or out-of-memory there cannot take the app down.

The child is the same `studio train ...` command the CLI and torchrun use, with ``--events`` so it prints one JSON
object per line on stdout (progress, samples, finished, error). Pause asks the child to checkpoint and exit
(SIGTERM, handled by the trainer at the next step); Cancel kills it at once. Resume starts it again with ``--resume``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from studio.core.paths import self_command
from studio.core.training_events import TrainingError, event_from_dict

PAUSED_EXIT_CODE = 75  # EX_TEMPFAIL: the trainer saved a checkpoint and stopped on request


class TrainingProcess(QObject):
    #: the command a run starts with, before its train arguments (tests put a scripted child here)
    program: tuple[str, ...] = (*self_command(), "train")
    event = Signal(object)  # a TrainingEvent: one JSON line from the child, checked and typed
    log_line = Signal(str)  # anything else it printed (stderr, non-JSON output)
    ended = Signal(str, str)  # state: "finished" | "paused" | "cancelled" | "failed", message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self._buffer = b""
        self._cancel_requested = False
        self._last_error = ""
        self.args: list[str] = []

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    @property
    def pid(self) -> int:
        return int(self._process.processId()) if self._process is not None else 0

    def start(self, train_args: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Start ``studio train <train_args> --events``."""
        if self.running:
            raise RuntimeError("a training run is already in progress")
        self.args = [*train_args]
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        for key, value in (env or {}).items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        self._buffer = b""
        self._cancel_requested = False
        self._last_error = ""
        process.start(self.program[0], [*self.program[1:], *self.args, "--events"])

    def pause(self) -> None:
        """Ask the trainer to save a checkpoint and stop (it exits with PAUSED_EXIT_CODE)."""
        if self.running:
            self._process.terminate()

    def cancel(self) -> None:
        """Stop now; the last checkpoint on disk stays usable for a later resume."""
        if self.running:
            self._cancel_requested = True
            self._process.kill()

    def wait(self, msecs: int = 5000) -> bool:
        return self._process is None or self._process.waitForFinished(msecs)

    def _read_stdout(self) -> None:
        self._buffer += bytes(self._process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                event = json.loads(text)
            except ValueError:
                self.log_line.emit(text)
                continue
            if isinstance(event, dict):
                typed = event_from_dict(event)
                if isinstance(typed, TrainingError):
                    self._last_error = typed.message
                self.event.emit(typed)

    def _read_stderr(self) -> None:
        for line in bytes(self._process.readAllStandardError()).decode("utf-8", "replace").splitlines():
            if line.strip():
                self.log_line.emit(line)
                if line.startswith("studio: "):
                    self._last_error = line.removeprefix("studio: ")

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.ended.emit("failed", "the training process could not be started")

    def _on_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        if self._cancel_requested:
            self.ended.emit("cancelled", "Training cancelled; the last checkpoint is kept for resume")
        elif status == QProcess.ExitStatus.CrashExit:
            self.ended.emit("failed", "The training process crashed; resume continues from the last checkpoint")
        elif exit_code == 0:
            self.ended.emit("finished", "Training finished")
        elif exit_code == PAUSED_EXIT_CODE:
            self.ended.emit("paused", "Paused at a checkpoint; resume continues from there")
        else:
            self.ended.emit("failed", self._last_error or f"Training stopped with exit code {exit_code}")
