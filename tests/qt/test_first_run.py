"""First run: the language model's export runs in the background after the window opens, and the Copy workspace
and the status bar say so (with the time so far and the usual total) until it is done."""

from __future__ import annotations

import sys

from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from studio.engine.model_preparation import describe_wait
from studio.ui.main_window import MainWindow
from tests.qt.workspace_fakes import TASKS

EXPORT_CHILD = "import sys, time; time.sleep(2.5); print(' '.join(sys.argv[1:]))"
FAILING_CHILD = "import sys; print('studio: disk full: could not write the graph', file=sys.stderr); sys.exit(1)"


def needs_export(spec: JobSpec, ctx: JobContext) -> dict:
    return {"name": "smollm2-135m-instruct", "variant": "int4", "needed": True, "installed": True}


def open_window(qtbot, child: str) -> MainWindow:
    window = MainWindow(tasks={**TASKS, "models.export_status": needs_export}, autosave=False, background_setup=True)
    window.preparation.program = (sys.executable, "-c", child)
    qtbot.addWidget(window)
    window.show()
    return window


def test_the_export_runs_after_the_window_opens_and_the_copy_workspace_says_so(qtbot):
    window = open_window(qtbot, EXPORT_CHILD)
    copy = window.workspace("Copy")
    qtbot.waitUntil(lambda: window.preparation.running, timeout=60_000)
    qtbot.waitUntil(lambda: not copy.preparation_note.isHidden(), timeout=5000)
    assert "Preparing the language model for faster copy" in copy.preparation_note.text()
    assert "You can write copy now" in copy.preparation_note.text()
    assert "so far, about" in copy.preparation_note.text()
    assert "Preparing the language model" in window.status.activity
    with qtbot.waitSignals([window.preparation.finished], timeout=30_000):
        pass
    assert "prepared" in copy.preparation_note.text() and "Preparing" not in window.status.activity
    window.close()


def test_a_failed_export_is_said_plainly_and_copy_keeps_working(qtbot):
    window = open_window(qtbot, FAILING_CHILD)
    with qtbot.waitSignals([window.preparation.finished], timeout=60_000):
        pass
    assert window.status.message_is_error
    assert window.status.message == ("Could not prepare the faster language model (disk full: could not write the "
                                     "graph); copy keeps running through torch.")
    window.close()


def test_wait_text():
    assert describe_wait(42, 150) == "0:42 so far, about 2 min in all"
    assert describe_wait(200, 150) == "3:20 so far, taking longer than usual"
