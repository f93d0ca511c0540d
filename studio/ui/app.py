"""Application setup (dark Fusion theme, style sheet, icon) and ``run()`` behind ``studio app``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from studio.core.errors import StudioError
from studio.core.paths import data_dir, resources_dir
from studio.ui.icons import icon
from studio.ui.single_instance import InstanceLock, already_open_message

SCREENSHOT_WAIT_MS = 15_000  # at most this long for the engine to report its device before the screenshot
SETTLE_MS = 400


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#1b1e24", QPalette.ColorRole.WindowText: "#d8dde6",
        QPalette.ColorRole.Base: "#16191e", QPalette.ColorRole.AlternateBase: "#20242b",
        QPalette.ColorRole.Text: "#d8dde6", QPalette.ColorRole.Button: "#2b303a",
        QPalette.ColorRole.ButtonText: "#d8dde6", QPalette.ColorRole.Highlight: "#4263eb",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#2b3039",
        QPalette.ColorRole.ToolTipText: "#e8ecf2", QPalette.ColorRole.PlaceholderText: "#6b7280",
        QPalette.ColorRole.Link: "#8fb8ff", QPalette.ColorRole.Mid: "#353b47",
        QPalette.ColorRole.Dark: "#111317", QPalette.ColorRole.Light: "#3a404d",
        QPalette.ColorRole.Midlight: "#2f3540", QPalette.ColorRole.Shadow: "#000000",
    }
    for role, value in roles.items():
        palette.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5d6573"))
    return palette


def style_sheet() -> str:
    """resources/style.qss with ``@ICONS@`` pointing at resources/icons (Qt resolves url() from the cwd)."""
    path = resources_dir() / "style.qss"
    if not path.exists():
        return ""
    return path.read_text(encoding="utf-8").replace("@ICONS@", (resources_dir() / "icons").as_posix())


def apply_theme(target: QApplication | QWidget) -> None:
    """The dark theme on the whole application, or on one widget tree (tests, embedding)."""
    if isinstance(target, QApplication):
        target.setStyle("Fusion")
    target.setPalette(dark_palette())
    target.setStyleSheet(style_sheet())


def create_application() -> QApplication:
    """The QApplication with Studio's name, icon and dark theme (reused when one exists, e.g. under pytest-qt)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    app.setWindowIcon(icon("studio"))
    apply_theme(app)
    return app


def _check_display(screenshot: str | None) -> None:
    """On Linux without a display, screenshots render offscreen; opening a window needs a display."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    raise StudioError("no display to open the window on (DISPLAY is not set); use `studio app --screenshot F.png` "
                      "or the headless commands (`studio --help`)")


def run(screenshot: str | None = None, quit_after_ms: int = 0) -> int:
    """Open the main window; with ``screenshot`` save the window to that PNG once it has settled, then quit."""
    _check_display(screenshot)
    app = create_application()
    lock = InstanceLock(data_dir())
    if not lock.acquire():
        message = already_open_message(lock.holder())
        print(f"studio: {message}", file=sys.stderr)
        if QGuiApplication.platformName() != "offscreen":
            QMessageBox.information(None, "Studio is already open", message)
        return 1
    from studio.ui.main_window import MainWindow  # after the QApplication: widgets need one

    window = MainWindow(autosave=not (screenshot or quit_after_ms))  # automation must never wait on a question
    window.show()
    if screenshot:
        target = Path(screenshot)
        target.parent.mkdir(parents=True, exist_ok=True)
        shot = {"taken": False}

        def take() -> None:
            if shot["taken"]:
                return
            shot["taken"] = True
            if not window.grab().save(str(target)):
                print(f"studio: could not write {target}", file=sys.stderr)
            window.close()

        window.engine.ready.connect(lambda _device: QTimer.singleShot(SETTLE_MS, take))
        QTimer.singleShot(quit_after_ms or SCREENSHOT_WAIT_MS, take)
    elif quit_after_ms:
        QTimer.singleShot(quit_after_ms, window.close)
    try:
        return app.exec()
    finally:
        lock.release()
