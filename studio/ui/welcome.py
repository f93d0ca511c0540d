"""Help for a new user: a welcome strip over each workspace (what it is for, and one example to click) until the
user closes it or tries the example, and the Help > "What is in Studio" page (the README's table and the shortcuts).
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.paths import config_dir, repo_root
from studio.ui.icons import icon

STYLE = """
#welcome { background: #22304d; border-bottom: 1px solid #34487a; }
#welcome QLabel { color: #dbe4ff; }
"""
WHAT_IS_IN_IT = "## What is in it"


def _seen() -> QSettings:
    return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)


class WelcomeBanner(QFrame):
    """``text`` and a button that runs the workspace's example; closing it (or the example) is remembered."""

    example_clicked = Signal()

    def __init__(self, key: str, text: str, example: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName("welcome")
        self.setStyleSheet(STYLE)
        label = QLabel(text)
        label.setWordWrap(True)
        self.example_button = QPushButton(icon("generate"), example)
        self.example_button.setObjectName("primary")
        self.example_button.clicked.connect(self._on_example)
        close = QToolButton()
        close.setIcon(icon("cancel"))
        close.setAutoRaise(True)
        close.setToolTip("Close this welcome (Help > What is in Studio has it all)")
        close.clicked.connect(self.dismiss)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 8, 6)
        row.addWidget(label, 1)
        row.addWidget(self.example_button)
        row.addWidget(close)
        self.setVisible(not _seen().value(f"welcome/{key}", False, bool))

    def dismiss(self) -> None:
        stored = _seen()
        stored.setValue(f"welcome/{self.key}", True)
        stored.sync()
        self.hide()

    def _on_example(self) -> None:
        self.dismiss()
        self.example_clicked.emit()


def readme_section(text: str, heading: str = WHAT_IS_IN_IT) -> str:
    """The README's section under ``heading`` (up to the next ``## ``), or "" when it has none."""
    if heading not in text:
        return ""
    body = text.split(heading, 1)[1]
    return body.split("\n## ", 1)[0].strip()


def help_markdown(shortcuts: tuple[tuple[str, str], ...]) -> str:
    readme = repo_root() / "README.md"
    section = readme_section(readme.read_text(encoding="utf-8")) if readme.exists() else ""
    rows = "\n".join(f"| {keys} | {what} |" for keys, what in shortcuts)
    return (f"# What is in Studio\n\n{section or 'Sprites, Copy, Music, Train and Models: see the README.'}\n\n"
            f"# Shortcuts\n\n| Keys | What they do |\n|---|---|\n{rows}\n")


class HelpDialog(QDialog):
    def __init__(self, shortcuts: tuple[tuple[str, str], ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("What is in Studio")
        self.browser = QTextBrowser()
        self.browser.setMarkdown(help_markdown(shortcuts))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(900, 600)
