"""What the main window expects of every workspace: generate/cancel, open/save/export, an undo stack."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QScrollArea, QWidget

from studio.core.settings import Settings
from studio.engine.client import Engine


class SidePanel(QScrollArea):
    """A workspace's settings column: it scrolls up and down, and is never narrower than what it holds (a panel
    narrower than its content cut its group boxes off at the side, at 200% scaling too)."""

    def __init__(self, content: QWidget, width: int) -> None:
        super().__init__()
        self._width = width
        self.setObjectName("panel")
        self.setWidgetResizable(True)
        self.setWidget(content)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        inner = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() \
            + 2 * self.frameWidth()
        return QSize(max(self._width, inner), hint.height())

    def sizeHint(self) -> QSize:
        return QSize(self.minimumSizeHint().width(), super().sizeHint().height())


class Workspace(QWidget):
    """Base class. Subclasses override the actions they support; the defaults say what is not supported."""

    title = "Workspace"
    #: first-run welcome: (what the workspace is for, the label of its one example); ("", "") for none
    welcome = ("", "")
    #: a message for the status bar (errors from bad input, "saved to …")
    status_message = Signal(str)

    def __init__(self, engine: Engine, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.settings = settings
        self.undo_stack = QUndoStack(self)
        self.active_job: int | None = None
        self.pending_model = ""  # a model to select once the model list arrives (see use_model)

    def refresh_models(self) -> None:
        """Ask the engine for this workspace's models again (after training or importing one)."""

    def use_model(self, name: str) -> None:
        """Select model ``name`` (it may be new): refresh the list, select it when the list arrives."""
        self.pending_model = name
        self.refresh_models()

    def take_pending_model(self) -> str:
        name, self.pending_model = self.pending_model, ""
        return name

    def run_example(self) -> None:
        """The welcome's example: fill in a small, sure-to-work request and run it."""

    def generate(self) -> None:
        self.status_message.emit(f"{self.title}: nothing to generate here")

    def cancel(self) -> None:
        if self.active_job is not None:
            self.engine.cancel(self.active_job)

    def open_path(self, path: Path) -> None:
        self.status_message.emit(f"{self.title} cannot open {Path(path).name}")

    def open_dialog(self) -> None:
        """Ctrl+O: show a file dialog and call open_path."""

    def save(self) -> None:
        """Ctrl+S."""

    def export(self) -> None:
        """Ctrl+E."""

    def step_result(self, delta: int) -> None:
        """Left/right arrows: step through results."""

    def shared_text(self) -> str:
        """The text Edit > Send text to … hands to another workspace (its selection, or what it holds)."""
        return ""

    def receive_text(self, text: str) -> None:
        """Text sent from another workspace (Edit > Send text to …)."""
        self.status_message.emit(f"{self.title} takes no text")

    def show_preparation(self, text: str, done: bool = False) -> None:
        """The first-run background preparation of this workspace's model (its modality says it has one)."""

    # --- unsaved work -------------------------------------------------------------------------------
    def unsaved_work(self) -> str:
        """What would be lost if the window closed now, in a few words ("" when nothing)."""
        return ""

    def save_work(self) -> bool:
        """Save the unsaved work (asking where when needed); False when the user cancelled or saving failed."""
        self.save()
        return not self.unsaved_work()

    def close_document(self) -> None:
        """Ctrl+W: start afresh with an empty document (the main window asks about unsaved work first)."""

    def revision(self) -> object:
        """Changes whenever the unsaved work changes (the autosaver writes only then)."""
        return None

    def autosave(self, folder: Path) -> None:
        """Write the unsaved work into ``folder`` (empty, in the user data folder) so a crash loses nothing."""

    def restore_autosave(self, folder: Path) -> bool:
        """Bring back work written by :meth:`autosave` (after a crash); True when something was restored."""
        return False
