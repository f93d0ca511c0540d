"""Qt test safety net: an engine left running by a failing test is stopped, so the run reports the failure.

Without it, Python destroys the still-running QThread at exit and Qt aborts the whole process (exit 134).
"""

from __future__ import annotations

import contextlib

import pytest

from studio.engine.client import Engine
from studio.ui import dialogs


@pytest.fixture(autouse=True)
def stop_engines_left_running(monkeypatch: pytest.MonkeyPatch):
    engines: list[Engine] = []
    original_init = Engine.__init__

    def tracking_init(self: Engine, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        engines.append(self)

    monkeypatch.setattr(Engine, "__init__", tracking_init)
    yield
    for engine in engines:
        with contextlib.suppress(RuntimeError):  # its Qt object is already gone, and its thread with it
            engine.shutdown()


@pytest.fixture(autouse=True)
def no_modal_questions(monkeypatch: pytest.MonkeyPatch):
    """A modal dialog would wait forever offscreen: file dialogs answer "cancelled", a question about unsaved work
    "discard" and a confirmation "no", unless a test answers them itself (it patches ``studio.ui.dialogs``)."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    monkeypatch.setattr(dialogs, "ask_unsaved", lambda *a, **k: dialogs.DISCARD)
    monkeypatch.setattr(dialogs, "confirm", lambda *a, **k: False)
