"""Unsaved work: Quit (Ctrl+Q) and Close (Ctrl+W) ask first, Save saves where the user says, and autosave brings
the work back after a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio.core.jobs import EventType
from studio.ui import dialogs
from studio.ui.autosave import Autosaver, autosave_dir
from studio.ui.main_window import MainWindow
from studio.ui.widgets.pixel_canvas import Tool
from tests.qt.workspace_fakes import TASKS

CTRL = Qt.KeyboardModifier.ControlModifier


def open_window(qtbot) -> MainWindow:
    window = MainWindow(tasks=TASKS)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    sprites = window.workspace("Sprites")
    qtbot.waitUntil(lambda: sprites.panel.model.count() > 0 and window.workspace("Copy").model_combo.count() > 0,
                    timeout=30_000)
    return window


@pytest.fixture
def window(qtbot):
    win = open_window(qtbot)
    yield win
    win.autosaver = None  # whatever the test left: close without a question
    win.close()


def finished(kind: str):
    return lambda e: e.kind == kind and e.type is EventType.FINISHED


def make_unsaved_work(qtbot, window: MainWindow) -> None:
    """A pixel on the canvas, a typed headline and a generated clip: what the tester lost on Ctrl+Q."""
    sprites = window.workspace("Sprites")
    window.show_workspace(sprites)
    sprites.set_tool(Tool.PENCIL)
    qtbot.mouseClick(sprites.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     sprites.canvas.widget_point(3, 3))
    copy = window.workspace("Copy")
    window.show_workspace(copy)
    copy.set_ad({"headline": ["My own headline"], "description": [], "path": []})
    music = window.workspace("Music")
    window.show_workspace(music)
    with qtbot.waitSignals([window.engine.event], check_params_cbs=[finished("music.generate")], timeout=10_000):
        music.generate()
    qtbot.waitUntil(lambda: music.clip is not None)


def quit_with_keys(qtbot, window: MainWindow) -> None:
    window.current.setFocus()
    qtbot.keyClick(window.current, Qt.Key.Key_Q, CTRL)


def test_quit_asks_about_unsaved_canvas_copy_and_clip_and_saves_them(qtbot, window, monkeypatch, tmp_path):
    """Issue 13, bug 7: Ctrl+Q lost canvas edits, copy and the music clip without a word."""
    make_unsaved_work(qtbot, window)
    asked: list[str] = []
    monkeypatch.setattr(dialogs, "ask_unsaved", lambda _parent, _title, text: asked.append(text) or dialogs.CANCEL)
    quit_with_keys(qtbot, window)
    assert asked, "Quit must ask about unsaved work"
    for title in ("Sprites", "Copy", "Music"):
        assert f"• {title}:" in asked[0]
    assert window.isVisible()  # Cancel: nothing closed, nothing lost
    assert window.workspace("Copy").current_ad()["headline"] == ["My own headline"]

    monkeypatch.setattr(dialogs, "ask_unsaved", lambda *_args: dialogs.SAVE)
    monkeypatch.setattr(dialogs, "ask_save_path",
                        lambda _parent, key, _title, _folder, name, _filters: tmp_path / key / name)
    quit_with_keys(qtbot, window)
    assert not window.isVisible()
    clip_name = window.workspace("Music").clip.name
    for saved in ("copy/copy.txt", f"music/{clip_name}.wav", "sprites/sprite.png"):
        assert (tmp_path / saved).exists(), saved
    assert (tmp_path / "copy" / "copy.txt").read_text(encoding="utf-8").count("My own headline") == 1


def test_cancelling_the_save_dialog_keeps_the_window_open(qtbot, window, monkeypatch):
    make_unsaved_work(qtbot, window)
    monkeypatch.setattr(dialogs, "ask_unsaved", lambda *_args: dialogs.SAVE)
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *_args: None)  # the user closes the file dialog
    quit_with_keys(qtbot, window)
    assert window.isVisible()
    assert "not saved" in window.status.message


def test_close_document_asks_then_starts_afresh(qtbot, window, monkeypatch):
    copy = window.workspace("Copy")
    window.show_workspace(copy)
    copy.set_ad({"headline": ["Keep me"], "description": [], "path": []})
    monkeypatch.setattr(dialogs, "ask_unsaved", lambda *_args: dialogs.CANCEL)
    window.close_document()
    assert copy.current_ad()["headline"] == ["Keep me"]
    monkeypatch.setattr(dialogs, "ask_unsaved", lambda *_args: dialogs.DISCARD)
    window.close_document()
    assert copy.current_ad() == {"headline": [], "description": [], "path": []}
    assert copy.unsaved_work() == ""


def test_autosave_restores_unsaved_work_after_a_crash(qtbot, monkeypatch):
    window = open_window(qtbot)
    make_unsaved_work(qtbot, window)
    canvas = window.workspace("Sprites").canvas.image.copy()
    clip = window.workspace("Music").clip
    window.autosaver.save_now()
    assert sorted(p.name for p in autosave_dir().iterdir()) == ["copy", "music", "sprites"]
    # a crash: the window never closes normally, its autosave stays behind
    window.autosaver.timer.stop()
    window.autosaver = None
    window.close()

    again = open_window(qtbot)
    assert np.array_equal(again.workspace("Sprites").canvas.image, canvas)
    assert again.workspace("Copy").current_ad()["headline"] == ["My own headline"]
    restored = again.workspace("Music").clip
    assert restored.bars == clip.bars and restored.notes == clip.notes
    assert np.allclose(restored.mix, clip.mix, atol=1e-6)
    qtbot.waitUntil(lambda: "Restored work" in again.status.message)
    assert {w.title for w in again.workspaces if w.unsaved_work()} == {"Sprites", "Copy", "Music"}
    monkeypatch.setattr(dialogs, "ask_unsaved", lambda *_args: dialogs.DISCARD)
    again.close()  # discarded knowingly: nothing to restore next time
    assert not autosave_dir().exists()


def test_saved_work_leaves_no_autosave(qtbot, window, tmp_path):
    copy = window.workspace("Copy")
    copy.set_ad({"headline": ["Saved line"], "description": [], "path": []})
    window.autosaver.save_now()
    assert (Autosaver.folder(copy) / "copy.json").exists()
    copy.save_to(tmp_path / "ad.txt")
    window.autosaver.save_now()
    assert not Autosaver.folder(copy).exists()
    assert Path(tmp_path / "ad.txt").exists()
