"""The main window: workspaces, shortcuts routed to the current one, settings and layout that persist, the status
bar (device, queue, progress with ETA, failures, cancel) and drag-and-drop routing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage, QTextCursor

from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.jobs import EventType, JobSpec
from studio.core.modalities import all_modalities
from studio.core.settings import Settings, load_settings
from studio.ui.app import apply_theme
from studio.ui.main_window import MainWindow
from studio.ui.settings_dialog import SettingsDialog
from studio.ui.status_bar import format_eta
from studio.ui.workspaces.base import Workspace


def fake_models(spec: JobSpec, ctx: JobContext) -> list[dict]:
    return []


def steps(spec: JobSpec, ctx: JobContext) -> int:
    total = int(spec.params["steps"])
    for i in range(total):
        time.sleep(float(spec.params["sleep"]))
        ctx.progress((i + 1) / total, f"step {i + 1}")
    return total


def failing(spec: JobSpec, ctx: JobContext) -> None:
    raise BadInputError("that sprite sheet is 33 px wide, not a multiple of 32")


TASKS = {"models.list": fake_models, "test.steps": steps, "test.fail": failing}


class RecordingWorkspace(Workspace):
    """Records which workspace actions the window's shortcuts reach."""

    title = "Recorder"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.calls: list[str] = []
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def generate(self) -> None:
        self.calls.append("generate")

    def cancel(self) -> None:
        self.calls.append("cancel")

    def open_dialog(self) -> None:
        self.calls.append("open")

    def save(self) -> None:
        self.calls.append("save")

    def export(self) -> None:
        self.calls.append("export")

    def step_result(self, delta: int) -> None:
        self.calls.append(f"step {delta:+d}")


def make_window(qtbot) -> MainWindow:
    window = MainWindow(tasks=TASKS)
    qtbot.addWidget(window)
    apply_theme(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot):
    win = make_window(qtbot)
    yield win
    win.close()


def test_workspaces_and_titles(qtbot, window):
    titles = [w.title for w in window.workspaces]
    expected = [*(m.title for m in all_modalities()), "Train", "Models"]  # every registered modality, in order
    assert titles == expected
    assert window.sidebar.count() == len(expected)
    window.show_workspace(window.workspace("Music"))
    assert window.current.title == "Music" and window.windowTitle() == "Studio — Music"


@pytest.mark.parametrize("title", [*(m.title for m in all_modalities()), "Train", "Models"])
def test_screenshot_of_each_workspace(qtbot, window, title, save_screenshot):
    workspace = window.workspace(title)
    if workspace is None:
        pytest.skip(f"{title} workspace not available")
    window.resize(1360, 860)
    window.show_workspace(workspace)
    qtbot.waitUntil(lambda: window.status.device_label.text().startswith(("CPU", "CUDA")), timeout=30_000)
    qtbot.wait(100)
    save_screenshot(window, f"main_window_{title.lower()}")


def test_shortcuts_route_to_the_current_workspace(qtbot, window):
    recorder = RecordingWorkspace(window.engine, window.settings)
    window.add_workspace(recorder, "generate")
    window.show_workspace(recorder)
    recorder.setFocus()
    keys = [
        (Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier, "generate"),
        (Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier, "cancel"),
        (Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier, "open"),
        (Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier, "save"),
        (Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier, "export"),
        (Qt.Key.Key_Left, Qt.KeyboardModifier.NoModifier, "step -1"),
        (Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier, "step +1"),
    ]
    for key, modifier, _ in keys:
        qtbot.keyClick(recorder, key, modifier)
    assert recorder.calls == [call for _, _, call in keys]
    qtbot.keyClick(recorder, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.current is window.workspaces[0]


def test_ctrl_z_undoes_typing_in_the_copy_editor_and_arrows_still_move_the_cursor(qtbot, window):
    copy = window.workspace("Copy")
    window.show_workspace(copy)
    editor = copy.editor
    editor.setFocus()
    cursor = editor.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    editor.setTextCursor(cursor)
    before = editor.toPlainText()
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.keyClicks(editor, "Fresh beans")
    assert editor.toPlainText() == before + "\nFresh beans"
    qtbot.keyClick(editor, Qt.Key.Key_Left)  # the editor keeps plain arrows for itself
    assert editor.textCursor().positionInBlock() == len("Fresh bean")
    for _ in range(2):
        qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert editor.toPlainText() == before
    for _ in range(2):
        qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert editor.toPlainText() == before + "\nFresh beans"
    assert window.undo_action.isEnabled()


def test_settings_persist_across_a_new_window(qtbot, window, tmp_path):
    dialog = SettingsDialog(window.settings, window)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.runtime.setCurrentIndex(dialog.runtime.findData("onnxruntime"))
    dialog.output_dir.setText(str(tmp_path / "outputs"))
    dialog.write_metadata.setChecked(False)
    dialog.cpu_threads.setValue(1)
    dialog.accept()
    assert dialog.restart_needed
    assert window.settings.write_metadata is False  # the running workspaces see it at once
    window.close()
    stored = load_settings()
    assert (stored.device, stored.runtime, stored.write_metadata, stored.cpu_threads) == ("cpu", "onnxruntime",
                                                                                           False, 1)
    again = make_window(qtbot)
    assert again.settings == stored
    assert again.workspace("Copy").settings.output_dir == str(tmp_path / "outputs")
    again.close()


def test_geometry_and_last_workspace_are_restored(qtbot, window, studio_home):
    window.resize(100, 700)  # the offscreen screen is 800x800 and restoreGeometry keeps windows on screen
    qtbot.waitUntil(lambda: window.height() == 700)
    size = window.size()
    window.show_workspace(window.workspace("Music"))
    window.close()
    assert (studio_home / "config" / "window.ini").exists()
    again = make_window(qtbot)
    assert again.size() == size and size.height() == 700
    assert again.current.title == "Music"
    again.close()


def test_status_bar_shows_device_progress_eta_and_cancels(qtbot, window):
    status = window.status
    qtbot.waitUntil(lambda: status.device_label.text().startswith(("CPU", "CUDA")), timeout=30_000)
    spec = JobSpec("test.steps", {"steps": 400, "sleep": 0.01})
    with qtbot.waitSignal(window.engine.event, timeout=10_000,
                          check_params_cb=lambda e: e.job_id == spec.job_id and e.fraction >= 0.02):
        window.engine.submit(spec)
    assert status.progress.isVisible() and status.progress.value() >= 20
    assert status.eta_label.text().endswith("left")
    assert status.queue_label.text() == "1 job running"  # not "queued": it runs
    assert status.cancel_button.isVisible()
    with qtbot.waitSignal(window.engine.event, timeout=5000,
                          check_params_cb=lambda e: e.job_id == spec.job_id and e.type is EventType.CANCELLED):
        qtbot.mouseClick(status.cancel_button, Qt.MouseButton.LeftButton)
    assert status.queue_label.text() == "Idle"
    assert not status.cancel_button.isVisible()
    assert "cancelled" in status.message.lower()


def test_status_bar_shows_a_failed_job_in_red(qtbot, window):
    spec = JobSpec("test.fail")
    with qtbot.waitSignal(window.engine.event, timeout=10_000,
                          check_params_cb=lambda e: e.job_id == spec.job_id and e.type is EventType.FAILED):
        window.engine.submit(spec)
    assert window.status.message == "test.fail failed: that sprite sheet is 33 px wide, not a multiple of 32"
    assert window.status.message_is_error


def test_eta_text():
    assert format_eta(None) == "estimating…"
    assert format_eta(4.4) == "4 s left"
    assert format_eta(125) == "2 min 05 s left"
    assert format_eta(3 * 3600 + 120) == "3 h 02 min left"


def drop(window: MainWindow, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_dropped_files_open_in_the_right_workspace(qtbot, window, tmp_path):
    wav = tmp_path / "drop.wav"
    sf.write(str(wav), np.zeros((2205, 1), np.float32), 22_050)
    text = tmp_path / "ad.txt"
    text.write_text("# Headlines\nDropped headline\n", encoding="utf-8")
    assert window.route(wav).title == "Music" and window.route(text).title == "Copy"
    assert window.route(tmp_path / "x.xyz") is None
    drop(window, [wav])
    assert window.current.title == "Music" and window.current.clip.duration == pytest.approx(0.1)
    drop(window, [text])
    assert window.current.title == "Copy" and window.current.current_ad()["headline"] == ["Dropped headline"]
    drop(window, [tmp_path / "model.bin"])
    assert "does not open .bin" in window.status.message and window.status.message_is_error


def test_settings_object_is_shared_with_workspaces(qtbot, window):
    assert all(w.settings is window.settings for w in window.workspaces)
    assert isinstance(window.settings, Settings)


def test_studio_app_screenshot_command_opens_the_window(tmp_path, studio_home):
    """`studio app --screenshot F` (what CI and the README use) in a fresh process."""
    target = tmp_path / "app.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": str(studio_home)}
    done = subprocess.run([sys.executable, "-m", "studio", "app", "--screenshot", str(target)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    image = QImage(str(target))
    assert image.width() >= 900 and image.height() >= 600
