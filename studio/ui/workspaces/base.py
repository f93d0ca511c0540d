"""What the main window expects of every workspace: generate/cancel, open/save/export, an undo stack."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QWidget

from studio.core.settings import Settings
from studio.engine.client import Engine


class Workspace(QWidget):
    """Base class. Subclasses override the actions they support; the defaults say what is not supported."""

    title = "Workspace"
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
