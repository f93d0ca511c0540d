"""First-run preparation in the background: the default language model's ONNX export, made by the same
`studio export onnx NAME --int4 --if-missing` that set-up used to run before the window could open.

It runs in a child process (like training), so the window opens at once, the model worker stays free for sprites
and music, and a crash in the exporter cannot take the app down. Copy works meanwhile, through torch.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from studio.core.paths import self_command

#: what the CPU's export (the fused int4 graph) took on a 2-core CPU, checks included: 32 s at load 2 for
#: `time studio export onnx smollm2-135m-instruct --int4`, 41 s quiet for the default adapter's (`copy-ads`: its
#: calibration and two graphs); the estimate shown scales it by nothing else: it is a size of the wait, not a promise
TYPICAL_SECONDS = 45


def describe_wait(elapsed: float, typical: float = TYPICAL_SECONDS) -> str:
    """``0:42 so far, about 2 min in all`` (or ``taking longer than usual`` past the typical time)."""
    minutes, seconds = divmod(int(elapsed), 60)
    so_far = f"{minutes}:{seconds:02d} so far"
    if elapsed > typical * 1.2:
        return f"{so_far}, taking longer than usual"
    return f"{so_far}, about {max(1, round(typical / 60))} min in all"


class ModelPreparation(QObject):
    #: the program a preparation runs, before its arguments (tests put a scripted child here)
    program: tuple[str, ...] = self_command()
    progress = Signal(str)  # "Preparing …: 0:42 so far, about 3 min in all", every second
    finished = Signal(bool, str)  # ok, a sentence for the user

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self._started = 0.0
        self._what = ""
        self._errors: list[str] = []
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    def start_export(self, name: str, variant: str) -> None:
        self._what = f"Preparing the language model for faster copy ({variant}, first start only)"
        self._start(["export", "onnx", name, f"--{variant}", "--if-missing"])

    def _start(self, args: list[str]) -> None:
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(environment)
        process.readyReadStandardError.connect(self._read_errors)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self._process = process
        self._errors = []
        self._started = time.monotonic()
        process.start(self.program[0], [*self.program[1:], *args])
        self._timer.start()
        self._tick()

    def stop(self) -> None:
        """On quit: stop the child (the export is made again, whole, at the next start)."""
        if self.running:
            self._timer.stop()
            self._process.kill()
            self._process.waitForFinished(3000)

    def _tick(self) -> None:
        self.progress.emit(f"{self._what}: {describe_wait(time.monotonic() - self._started)}")

    def _read_errors(self) -> None:
        text = bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        self._errors += [line for line in text.splitlines() if line.startswith("studio: ")]

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._timer.stop()
            self.finished.emit(False, "could not start the preparation of the language model")

    def _on_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._timer.stop()
        if status == QProcess.ExitStatus.NormalExit and exit_code == 0:
            took = round(time.monotonic() - self._started)
            self.finished.emit(True, f"The language model is prepared (took {took // 60}:{took % 60:02d}): copy "
                               "is now written about twice as fast.")
            return
        reason = self._errors[-1].removeprefix("studio: ") if self._errors else f"exit code {exit_code}"
        self.finished.emit(False, f"Could not prepare the faster language model ({reason}); copy keeps running "
                           "through torch.")
