"""The doctor's report in the app (status bar and Settings), and one window per user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from studio.core import paths
from studio.core.machine_report import MachineReport, WorkspaceRuntime
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui.app import run
from studio.ui.settings_dialog import SettingsDialog
from studio.ui.single_instance import InstanceLock
from studio.ui.status_bar import StudioStatusBar

MEASURED = MachineReport(
    studio="Studio 0.1.0", torch="PyTorch 2.14.1, CUDA 13.0 build", onnxruntime="ONNX Runtime 1.32.0: CPU",
    gpu="NVIDIA H200: driver 580.65.06, 138.7 of 140.4 GiB free", device="cuda", device_text="CUDA: NVIDIA H200",
    provider_problem="its CUDA provider is not installed", gpu_found=True,
    workspaces=(WorkspaceRuntime("sprite", "sprite-gan", "cuda", "onnxruntime", "CPUExecutionProvider",
                                 "measured fastest on this machine", "912 sprites/s"),),
)


def _speed(spec, ctx) -> MachineReport:
    return MEASURED


@pytest.fixture
def engine(qtbot):
    eng = Engine(Settings(device="cpu"), tasks={"system.speed": _speed})
    with qtbot.waitSignal(eng.machine_report, timeout=60_000):
        pass
    yield eng
    eng.shutdown()


def test_the_status_bar_shows_the_device_and_warns_when_onnxruntime_is_on_the_cpu(qtbot, engine) -> None:
    status = StudioStatusBar(engine)
    qtbot.addWidget(status)
    assert status.device_label.text().startswith("CPU")  # the report the worker made at start (this machine)
    assert "Workspaces:" in status.device_label.toolTip() and "Sprites: sprite-gan" in status.device_label.toolTip()
    assert "color" not in status.device_label.styleSheet()  # the CPU chosen in Settings: nothing to warn about
    engine.set_report(MEASURED)
    assert status.device_label.text() == "CUDA: NVIDIA H200 · ONNX Runtime on the CPU"
    assert "#f0b429" in status.device_label.styleSheet()
    assert "ONNX Runtime runs on the CPU because its CUDA provider is not installed" in status.device_label.toolTip()


def test_settings_show_the_report_and_measure_speed(qtbot, engine, save_screenshot) -> None:
    dialog = SettingsDialog(Settings(device="cpu"), engine=engine)
    qtbot.addWidget(dialog)
    assert "Models run on: CPU" in dialog.machine.toPlainText()
    assert "Running on the CPU because the CPU is chosen in Settings" in dialog.machine.toPlainText()
    dialog.show()
    save_screenshot(dialog, "settings-this-machine")
    with qtbot.waitSignal(engine.machine_report, timeout=10_000):
        dialog.measure.click()
    assert "speed: 912 sprites/s" in dialog.machine.toPlainText()
    assert dialog.measure.isEnabled() and dialog.measure_note.text() == "Measured."
    assert engine.report is MEASURED


def test_a_second_lock_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    first, second = InstanceLock(tmp_path), InstanceLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()
    assert second.holder() == f"process {os.getpid()}" + (f" on {os.uname().nodename}" if os.uname().nodename else "")
    first.release()
    assert second.acquire()
    second.release()


def test_a_lock_left_by_a_crashed_copy_is_taken_over(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[2]); "
         "from studio.ui.single_instance import InstanceLock; lock = InstanceLock(Path(sys.argv[1])); "
         "print(lock.acquire(), flush=True); time.sleep(60)", str(tmp_path), str(Path(__file__).parents[2])],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert not InstanceLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert InstanceLock(tmp_path).acquire()  # its process is gone: the lock is stale


def test_a_second_window_says_studio_is_open_and_leaves(qtbot, capsys) -> None:
    lock = InstanceLock(paths.data_dir())
    assert lock.acquire()
    try:
        assert run(quit_after_ms=1) == 1
    finally:
        lock.release()
    assert "Studio is already open (process " in capsys.readouterr().err
    assert not [w for w in QApplication.topLevelWidgets() if w.isVisible()]  # no window was opened

