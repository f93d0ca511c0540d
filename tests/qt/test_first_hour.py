"""The first hour of a new user, scripted, one test per workspace: generate, open, edit, export, quit, through the
keys and buttons a person uses. No exception (pytest-qt fails a test on one raised in a slot), no lost work, no
state that contradicts itself. Fake tasks (tests/qt/workspace_fakes) keep it to seconds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from studio.core.errors import BadInputError
from studio.core.formats import png_meta
from studio.core.formats.sheet import load_sheet
from studio.core.jobs import EventType, JobEvent
from studio.ui import dialogs
from studio.ui.autosave import autosave_dir
from studio.ui.main_window import MainWindow
from studio.ui.widgets.pixel_canvas import Tool
from tests.qt.test_train_states import CHILD
from tests.qt.workspace_fakes import TASKS

CTRL = Qt.KeyboardModifier.ControlModifier
NONE = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def inspect_lines(spec, ctx) -> dict:
    return {"usable": 12, "counts": {"lines": 12}, "rejected": [{"file": "notes.md", "reason": "not a TXT or CSV"}]}


def refuse_import(spec, ctx) -> dict:
    raise BadInputError("model.onnx is not an ONNX file (it could not be read)")


def estimate(spec, ctx) -> dict:
    return {"seconds": 90, "device": "CPU", "steps": 30, "step_ms": 3000, "memory_mb": 900}


class Session:
    """A window, the answers the user gives to its dialogs, and every job event it saw."""

    def __init__(self, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.qtbot, self.folder = qtbot, tmp_path / "my-work"
        self.window = MainWindow(tasks={**TASKS, "data.inspect": inspect_lines, "train.estimate": estimate,
                                        "models.import": refuse_import})
        qtbot.addWidget(self.window)
        self.window.resize(1280, 720)
        self.window.show()
        self.window.activateWindow()
        qtbot.waitExposed(self.window)
        self.events: list[JobEvent] = []
        self.window.engine.event.connect(self.events.append)
        self.asked: list[str] = []
        self.answer = dialogs.CANCEL
        monkeypatch.setattr(dialogs, "ask_save_path",
                            lambda _parent, key, _title, _folder, name, _filters: self.folder / key / name)
        monkeypatch.setattr(dialogs, "ask_folder", lambda _parent, key, _title, _folder: self.folder / key)
        monkeypatch.setattr(dialogs, "ask_unsaved", lambda _p, _t, text: self.asked.append(text) or self.answer)
        qtbot.waitUntil(lambda: self.window.workspace("Sprites").panel.model.count() > 0
                        and self.window.workspace("Copy").model_combo.count() > 0, timeout=30_000)

    def open(self, title: str):
        workspace = self.window.workspace(title)
        self.qtbot.keyClick(self.window.current, getattr(Qt.Key, f"Key_{self.window.workspaces.index(workspace) + 1}"),
                            CTRL)
        assert self.window.current is workspace
        workspace.setFocus()
        return workspace

    def keys(self, key: Qt.Key, modifier=NONE) -> None:
        self.qtbot.keyClick(self.window.current, key, modifier)

    def finished(self, kind: str, action) -> JobEvent:
        with self.qtbot.waitSignals([self.window.engine.event], timeout=30_000,
                                    check_params_cbs=[lambda e: e.kind == kind and e.type.is_terminal]):
            action()
        event = [e for e in self.events if e.kind == kind and e.type.is_terminal][-1]
        assert event.type is EventType.FINISHED, event.message
        return event

    def quit(self) -> None:
        self.keys(Qt.Key.Key_Q, CTRL)

    def check_clean_end(self) -> None:
        assert not self.window.isVisible(), "Ctrl+Q must close the window"
        assert not [e for e in self.events if e.type is EventType.FAILED]
        assert not autosave_dir().exists(), "a normal quit leaves nothing to restore"


@pytest.fixture
def session(qtbot, tmp_path, monkeypatch):
    return Session(qtbot, tmp_path, monkeypatch)


def test_first_hour_in_sprites(session):
    sprites = session.open("Sprites")
    session.finished("sprite.generate", session.window.welcome_banners["Sprites"].example_button.click)
    assert sprites.results.count() == 16
    seed = sprites.panel.seed.value()
    rect = sprites.results.visualItemRect(sprites.results.item(2))
    session.qtbot.mouseClick(sprites.results.viewport(), LEFT, NONE, rect.center())  # open #3 on the canvas
    opened = sprites.results.result(2)["rgba"]
    assert np.array_equal(sprites.canvas.image, opened)
    sprites.set_tool(Tool.PENCIL)  # edit: a pixel, then an outline
    session.qtbot.mouseClick(sprites.canvas, LEFT, NONE, sprites.canvas.widget_point(0, 0))
    sprites.outline_button.click()
    edited = sprites.canvas.image.copy()
    assert sprites.unsaved_work()
    session.keys(Qt.Key.Key_S, CTRL)  # save: asks where (answered), then the canvas is clean
    saved = session.folder / "sprites" / "sprite.png"
    assert saved.exists() and not sprites.unsaved_work()
    assert png_meta.read_recipe(saved)["seed"] == seed + 2
    session.keys(Qt.Key.Key_E, CTRL)  # export: asks where too, and remembers
    sheets = list((session.folder / "sprites-export").glob("*.json"))
    assert len(sheets) == 1 and len(load_sheet(sheets[0]).frames) == 16
    session.finished("sprite.generate", lambda: session.keys(Qt.Key.Key_Return, CTRL))
    assert sprites.panel.seed.value() != seed  # a new seed, a new batch
    assert np.array_equal(sprites.canvas.image, edited)  # generating does not touch the canvas
    session.quit()
    assert session.asked == []  # everything was saved: no question
    session.check_clean_end()


def test_first_hour_in_copy(session, tmp_path):
    copy = session.open("Copy")
    session.finished("copy.generate", session.window.welcome_banners["Copy"].example_button.click)
    assert copy.brief_form.product.text() and copy.variant_label.text() == "Variant 1/3"
    session.keys(Qt.Key.Key_Right)  # outside the editor, Right steps through the variants
    assert copy.variant_label.text() == "Variant 2/3"
    draft = tmp_path / "draft.txt"
    draft.write_text("# Headlines\nMy own headline\nSecond one\nThird one\n# Descriptions\nA description.\n"
                     "Another description.\n# Paths\n", encoding="utf-8")
    copy.open_path(draft)  # open a draft
    cursor = copy.editor.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    copy.editor.setTextCursor(cursor)
    copy.editor.setFocus()
    session.qtbot.keyClicks(copy.editor, "coffee")  # edit: a path
    assert copy.current_ad()["path"] == ["coffee"]
    session.keys(Qt.Key.Key_E, CTRL)  # export CSV: complete ad, no question
    csv = session.folder / "copy-export" / "ads.csv"
    assert csv.exists() and "My own headline" in csv.read_text(encoding="utf-8-sig")
    session.answer = dialogs.SAVE
    session.quit()  # the edit is unsaved: asked, saved into the draft itself
    assert len(session.asked) == 1 and "• Copy: changes to draft.txt" in session.asked[0]
    assert draft.read_text(encoding="utf-8").rstrip().endswith("# Paths\ncoffee")
    session.check_clean_end()


def test_first_hour_in_music(session, tmp_path):
    music = session.open("Music")
    session.finished("music.generate", session.window.welcome_banners["Music"].example_button.click)
    clip = music.clip
    assert clip.bars == 8 and music.piano_roll.parts == ["melody", "bass"]
    music.waveform.set_selection(0.0, clip.duration / 2)  # loop the first half
    music.mute_boxes["bass"].setChecked(True)  # edit: mute the bass
    session.finished("music.continue", music.continue_button.click)
    assert music.clip.bars == 12 and music.clip.notes[:4] == clip.notes[:4]
    session.keys(Qt.Key.Key_E, CTRL)  # export the whole clip as WAV
    exported = list((session.folder / "music-export").glob("*.wav"))
    assert len(exported) == 1 and sf.info(str(exported[0])).duration == pytest.approx(music.clip.duration, abs=0.01)
    wav = tmp_path / "loop.wav"
    sf.write(str(wav), np.zeros((2205, 2), np.float32), 22_050)
    session.answer = dialogs.CANCEL
    session.window.close_document()  # the generated clip is unsaved: asked, kept
    assert music.clip is not None and len(session.asked) == 1
    session.answer = dialogs.DISCARD
    session.quit()
    assert len(session.asked) == 2
    session.check_clean_end()


def test_first_hour_in_train(session, monkeypatch, tmp_path):
    train = session.open("Train")
    train.process.program = (sys.executable, "-c", CHILD)
    session.finished("data.inspect", session.window.welcome_banners["Train"].example_button.click)
    assert train.rejected.count() == 1 and "Found 12 usable" in train.found.text()
    assert train.modality_key == "copy" and train.name.text() == "brewly-voice"
    monkeypatch.setattr(train, "base", train.base)  # the fake model list has no base model: say there is one
    train.base.addItem("tiny-lm", "tiny-lm")
    train.base.setCurrentIndex(train.base.count() - 1)
    with session.qtbot.waitSignals([train.process.event], timeout=30_000,
                                   check_params_cbs=[lambda e: getattr(e, "step", None) == 1]):
        train.start_button.click()
    assert "Training brewly-voice" in session.window.status.activity
    with session.qtbot.waitSignals([train.run_ended], timeout=30_000,
                                   check_params_cbs=[lambda state, _m: state == "paused"]):
        train.pause_button.click()
    assert not train.start_button.isEnabled() and train.resume_button.isEnabled()
    with session.qtbot.waitSignals([train.run_ended], timeout=30_000,
                                   check_params_cbs=[lambda state, _m: state == "finished"]):
        train.resume_button.click()
    assert not train.resume_button.isEnabled() and train.use_button.isEnabled()
    train.use_button.click()  # "Use in workspace": the Copy workspace with the new voice
    assert session.window.current.title == "Copy"
    session.quit()
    session.check_clean_end()


def test_first_hour_in_models(session, tmp_path):
    models = session.open("Models")
    session.window.welcome_banners["Models"].example_button.click()
    assert models.selected()["name"] == "sprite-gan" and "GAN" in models.card.toPlainText()
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with session.qtbot.waitSignals([session.window.engine.event], timeout=30_000,
                                   check_params_cbs=[lambda e: e.kind == "models.import" and e.type.is_terminal]):
        models.open_path(bad)
    assert session.window.status.message == "model.onnx is not an ONNX file (it could not be read)"
    session.events.clear()  # that failure was the test's own doing
    models.buttons["Use"].click()
    assert session.window.current.title == "Sprites"
    assert session.window.workspace("Sprites").panel.current_model()["name"] == "sprite-gan"
    session.quit()
    session.check_clean_end()
    assert json.loads(json.dumps(models.models))  # what the table showed was plain data
