"""Every workspace of the main window at one window size, with content in it (fake tasks): a screenshot each, and
the list of widgets whose text does not fit. Run in its own process so QT_SCALE_FACTOR applies:

    QT_SCALE_FACTOR=2 python -m tests.qt.layout_shots --size 1280x720 --out artifacts/screenshots/layout-2x

prints one JSON object: {"shots": [paths], "cut": ["Workspace: widget 'text'"], "min_size": [w, h]}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-layout-"))

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QScrollArea,
    QWidget,
)

from studio.core.jobs import EventType
from studio.ui.widgets.elided_label import ElidedLabel


def _visible(widget: QWidget, window: QWidget) -> bool:
    return widget.isVisibleTo(window) and widget.width() > 0 and widget.height() > 0


def cut_off(root: QWidget, window: QWidget) -> list[str]:
    """Widgets whose own text is wider than the room they were given (a combo shows its arrow too)."""
    found = []
    for widget in root.findChildren(QWidget):
        if not _visible(widget, window):
            continue
        metrics = widget.fontMetrics()
        if isinstance(widget, QScrollArea) and widget.widget() is not None \
                and widget.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff \
                and widget.widget().width() > widget.viewport().width():
            found.append(f"{type(widget).__name__} {widget.objectName()!r} cuts its content at the side: "
                         f"{widget.widget().width()} px in {widget.viewport().width()}")
            continue
        if isinstance(widget, QComboBox):
            text, room = widget.currentText(), widget.width() - 36
        elif isinstance(widget, QLineEdit) and not widget.hasFocus():
            text = widget.text() or widget.placeholderText()
            room = widget.width() - 12
            if widget.text() and widget.cursorPosition() == 0:
                continue  # its beginning shows; the rest is a scroll away, as in every text field
        elif isinstance(widget, QAbstractButton) and widget.text():
            text = widget.text().replace("&", "")
            room = widget.width() - 12 - (widget.iconSize().width() + 4 if not widget.icon().isNull() else 0)
        elif isinstance(widget, QLabel) and not isinstance(widget, ElidedLabel) and not widget.wordWrap() \
                and widget.text() and widget.textFormat() != 1 and "<" not in widget.text():
            text, room = widget.text(), widget.contentsRect().width()
        else:
            continue
        if text and metrics.horizontalAdvance(text) > room:
            found.append(f"{type(widget).__name__} {text!r} needs {metrics.horizontalAdvance(text)} px, has {room}")
    return found


def fill(window, qtbot_wait) -> None:
    """Generate something in every generation workspace so the screenshots show real content."""
    engine = window.engine
    done: list = []
    engine.event.connect(lambda e: done.append(e) if e.type is EventType.FINISHED and "." in e.kind
                         and not e.kind.startswith("models.") else None)
    sprites, copy, music = (window.workspace(t) for t in ("Sprites", "Copy", "Music"))
    qtbot_wait(lambda: sprites.panel.model.count() > 0 and copy.model_combo.count() > 0)
    sprites.generate()
    copy.brief_form.set_data({"product": "Lumen Trail running headlamp", "features": ["400 lumens", "USB-C"],
                              "audience": "trail runners who start before dawn", "tone": "bold, outdoorsy",
                              "must_use": ["headlamp"], "banned": ["cheap"]})
    copy.generate()
    music.generate()
    qtbot_wait(lambda: len(done) >= 3)
    sprites.open_result(2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from studio.ui.app import apply_theme
    from studio.ui.main_window import MainWindow
    from tests.qt.workspace_fakes import TASKS

    apply_theme(app)
    window = MainWindow(tasks=TASKS, autosave=False)
    window.show()

    def wait(condition, timeout_s: float = 30.0) -> None:
        import time

        end = time.monotonic() + timeout_s
        while not condition():
            app.processEvents()
            if time.monotonic() > end:
                raise TimeoutError("the fake jobs did not finish")
            time.sleep(0.01)

    fill(window, wait)
    window.resize(width, height)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shots, cut = [], []
    for workspace in window.workspaces:
        window.show_workspace(workspace)
        for _ in range(20):
            app.processEvents()
        path = out / f"{workspace.title.lower()}.png"
        window.grab().save(str(path))
        shots.append(str(path))
        cut += [f"{workspace.title}: {line}" for line in cut_off(workspace, window)]
    hint = window.minimumSizeHint()
    print(json.dumps({"shots": shots, "cut": cut, "min_size": [hint.width(), hint.height()],
                      "window": [window.width(), window.height()]}))
    window.close()
    window.engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
