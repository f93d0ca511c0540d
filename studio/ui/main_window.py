"""The main window: a sidebar of workspaces (Sprites, Copy, Music, and any added later), menus with the usual
shortcuts routed to the current workspace, the status bar, settings, drag-and-drop, and a remembered layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio import __version__
from studio.core.jobs import JobSpec
from studio.core.modalities import all_modalities
from studio.core.paths import config_dir
from studio.core.settings import Settings, load_settings
from studio.engine.client import Engine
from studio.engine.model_preparation import ModelPreparation
from studio.ui import dialogs
from studio.ui.autosave import Autosaver
from studio.ui.icons import icon
from studio.ui.jobs import run_job
from studio.ui.settings_dialog import SettingsDialog
from studio.ui.status_bar import StudioStatusBar
from studio.ui.welcome import HelpDialog, WelcomeBanner
from studio.ui.widgets.player import warm_up as warm_up_audio
from studio.ui.workspaces.base import Workspace
from studio.ui.workspaces.models import ModelManagerWorkspace
from studio.ui.workspaces.train import TrainWorkspace

#: File extension -> title of the workspace that opens it (drag-and-drop and File > Open).
ROUTES = {suffix: modality.title for modality in all_modalities() for suffix in modality.opens}
SHORTCUTS = (
    ("F1", "What is in Studio (this page)"),
    ("Ctrl+Enter", "Generate in the current workspace"),
    ("Esc", "Cancel the current workspace's job"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo"),
    ("Ctrl+O / Ctrl+S / Ctrl+E", "Open / save / export"),
    ("Ctrl+W / Ctrl+Q", "Close the document (asks about unsaved work) / quit Studio"),
    ("Left / Right", "Previous / next result"),
    ("Ctrl+1 … Ctrl+9", "Switch workspace"),
    ("Space", "Play / pause (Music)"),
    ("Ctrl+wheel", "Zoom the waveform"),
)


def window_settings() -> QSettings:
    """Window geometry, dock state and last workspace: an INI file beside settings.json."""
    return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)



class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, tasks: dict[str, Callable[..., Any]] | None = None,
                 parent: QWidget | None = None, autosave: bool = True, background_setup: bool | None = None) -> None:
        """``autosave`` False (screenshots, automation): no autosave, nothing restored, no question on close.
        ``background_setup`` (default: with the real tasks and autosave): first-run preparation after the window
        opens (the language model's ONNX export)."""
        super().__init__(parent)
        self.settings = settings or load_settings()
        warm_up_audio()  # before the engine's thread starts importing torch (see its docstring)
        self.engine = Engine(self.settings, tasks=tasks)
        self.workspaces: list[Workspace] = []
        self.welcome_banners: dict[str, WelcomeBanner] = {}
        self._undo_group = QUndoGroup(self)
        self.setWindowIcon(icon("studio"))
        self.setAcceptDrops(True)

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setViewMode(QListWidget.ViewMode.IconMode)
        self.sidebar.setFlow(QListWidget.Flow.TopToBottom)
        self.sidebar.setWrapping(False)
        self.sidebar.setMovement(QListWidget.Movement.Static)
        self.sidebar.setIconSize(QSize(26, 26))
        self.sidebar.setGridSize(QSize(80, 70))
        self.sidebar.setFixedWidth(88)
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stack = QStackedWidget()
        self.sidebar.currentRowChanged.connect(self._on_workspace_changed)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.status = StudioStatusBar(self.engine)
        self.setStatusBar(self.status)

        self._build_menus()
        self.modality_workspaces: dict[str, Workspace] = {}  # modality name -> its workspace
        for modality in all_modalities():
            workspace = modality.workspace.load()(self.engine, self.settings)
            self.modality_workspaces[modality.name] = workspace
            self.add_workspace(workspace, modality.icon)
            if modality.takes_text:
                self._add_send_action(modality.title, workspace)
        train = TrainWorkspace(self.engine, self.settings)
        manager = ModelManagerWorkspace(self.engine, self.settings)
        self.add_workspace(train, "train")
        self.add_workspace(manager, "models")
        train.use_model.connect(self.use_model)
        train.activity.connect(lambda text: self.status.set_background("training", text))
        train.run_ended.connect(lambda state, _: manager.refresh() if state == "finished" else None)
        manager.use_model.connect(self.use_model)
        self._restore_layout()
        self.autosaver = Autosaver(self.workspaces, self) if autosave else None
        if self.autosaver is not None:
            restored = self.autosaver.restore()
            if restored:
                self.show_workspace(self.workspace(restored[0]))
                note = (f"Restored work that was not saved when Studio last closed: {', '.join(restored)}. "
                        "Save it (Ctrl+S) to keep it.")
                QTimer.singleShot(0, lambda: self.status.show_message(note))  # after the workspaces' start-up notes
            self.autosaver.timer.start()
        self.preparation = ModelPreparation(self)
        if background_setup if background_setup is not None else (tasks is None and autosave):
            self.engine.ready.connect(self._check_first_run)
            if self.engine.device_description:  # the engine was quicker than this window
                self._check_first_run()
        self.preparation.progress.connect(lambda text: self.status.set_background("preparation", text))
        for workspace in self._preparing():
            self.preparation.progress.connect(workspace.show_preparation)
        self.preparation.finished.connect(self._on_prepared)

    # --- workspaces ---------------------------------------------------------------------------------
    def add_workspace(self, workspace: Workspace, icon_name: str | None = None) -> None:
        """Add a workspace (others add "Train" and "Models" this way); Ctrl+N switches to the N-th."""
        self.workspaces.append(workspace)
        page = QWidget()  # the workspace under its first-run welcome strip
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        text, example = workspace.welcome
        if text:
            banner = WelcomeBanner(workspace.title.lower(), text, example)
            banner.example_clicked.connect(workspace.run_example)
            column.addWidget(banner)
            self.welcome_banners[workspace.title] = banner
        column.addWidget(workspace, 1)
        self.stack.addWidget(page)
        item = QListWidgetItem(icon(icon_name or workspace.title.lower()), workspace.title)
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
        item.setToolTip(workspace.title)
        self.sidebar.addItem(item)
        self._undo_group.addStack(workspace.undo_stack)
        workspace.status_message.connect(self.status.show_message)
        number = len(self.workspaces)
        if number <= 9:
            action = QAction(f"{workspace.title}", self)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.triggered.connect(lambda: self.show_workspace(workspace))
            self.view_menu.addAction(action)
        if self.sidebar.currentRow() < 0:
            self.sidebar.setCurrentRow(0)

    @property
    def current(self) -> Workspace | None:
        row = self.stack.currentIndex()
        return self.workspaces[row] if 0 <= row < len(self.workspaces) else None

    def workspace(self, title: str) -> Workspace | None:
        return next((w for w in self.workspaces if w.title == title), None)

    def use_model(self, modality: str, name: str) -> None:
        """Switch to the generation workspace of ``modality`` with model ``name`` selected."""
        workspace = self.modality_workspaces.get(modality)
        if workspace is None:
            self.status.show_message(f"No workspace generates {modality} models")
            return
        workspace.use_model(name)
        self.show_workspace(workspace)

    def _add_send_action(self, title: str, target: Workspace) -> None:
        """Edit > Send text to TITLE: the current workspace's text (its selection, or what it holds) goes there."""
        action = QAction(f"Send text to {title}", self)
        action.triggered.connect(lambda: self.send_text(target))
        self.edit_menu.addAction(action)

    def send_text(self, target: Workspace) -> None:
        text = self.current.shared_text() if self.current is not None else ""
        if not text.strip():
            self.status.show_message(f"{self.current.title if self.current else 'This workspace'} has no text to "
                                     f"send to {target.title}", error=True)
            return
        self.show_workspace(target)
        target.receive_text(text)

    def show_workspace(self, workspace: Workspace) -> None:
        self.sidebar.setCurrentRow(self.workspaces.index(workspace))

    def _on_workspace_changed(self, row: int) -> None:
        if 0 <= row < len(self.workspaces):
            workspace = self.workspaces[row]
            self.stack.setCurrentIndex(row)
            self._undo_group.setActiveStack(workspace.undo_stack)
            self.setWindowTitle(f"Studio — {workspace.title}")

    # --- menus ---------------------------------------------------------------------------------------
    def _action(self, menu: Any, text: str, slot: Callable[[], None], *keys: Any, icon_name: str = "") -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if keys:
            action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _on_current(self, method: str) -> Callable[[], None]:
        def call() -> None:
            if self.current is not None:
                getattr(self.current, method)()

        return call

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open…", self._on_current("open_dialog"), QKeySequence.StandardKey.Open,
                     icon_name="open")
        self._action(file_menu, "&Save", self._on_current("save"), QKeySequence.StandardKey.Save, icon_name="save")
        self._action(file_menu, "&Export…", self._on_current("export"), "Ctrl+E", icon_name="export")
        self._action(file_menu, "&Close", self.close_document, QKeySequence.StandardKey.Close)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, "Ctrl+Q")  # StandardKey.Quit is empty on some platforms

        edit_menu = self.edit_menu = bar.addMenu("&Edit")
        self.undo_action = self._undo_group.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = self._undo_group.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        self._action(edit_menu, "Se&ttings…", self.open_settings, "Ctrl+,", icon_name="settings")
        edit_menu.addSeparator()

        generate_menu = bar.addMenu("&Generate")
        self.generate_action = self._action(generate_menu, "&Generate", self._on_current("generate"),
                                            "Ctrl+Return", "Ctrl+Enter", icon_name="generate")
        self.cancel_action = self._action(generate_menu, "&Cancel", self._on_current("cancel"), "Esc",
                                          icon_name="cancel")
        self._action(generate_menu, "Cancel &all jobs", self.status.cancel_all)
        generate_menu.addSeparator()
        self._action(generate_menu, "&Previous result", lambda: self._step(-1), "Left", icon_name="previous")
        self._action(generate_menu, "&Next result", lambda: self._step(1), "Right", icon_name="next")

        self.view_menu = bar.addMenu("&View")
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&What is in Studio", self.show_help, "F1")
        self._action(help_menu, "&Keyboard shortcuts", self._show_shortcuts)
        self._action(help_menu, "Show the &welcome again", self.show_welcome_again)
        self._action(help_menu, "&About Studio", self._show_about)

    def _step(self, delta: int) -> None:
        if self.current is not None:
            self.current.step_result(delta)

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self, self.engine)
        if dialog.exec():
            note = " (device, runtime and threads apply after a restart)" if dialog.restart_needed else ""
            self.status.show_message(f"Settings saved{note}")

    def show_help(self) -> HelpDialog:
        """Help > What is in Studio: the README's table of workspaces and the shortcuts (not modal)."""
        dialog = HelpDialog(SHORTCUTS, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_welcome_again(self) -> None:
        for banner in self.welcome_banners.values():
            banner.show()

    def _show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{keys}</b></td><td>&nbsp;&nbsp;{what}</td></tr>" for keys, what in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def _show_about(self) -> None:
        makes = ", ".join(m.label.lower() for m in all_modalities())
        QMessageBox.about(self, "About Studio", f"<b>Studio {__version__}</b><br>Offline generative studio: "
                          f"{makes}. Nothing leaves this computer.")

    # --- files -----------------------------------------------------------------------------------
    def route(self, path: Path) -> Workspace | None:
        """The workspace that opens ``path`` (by extension), or None."""
        title = ROUTES.get(Path(path).suffix.lower())
        return self.workspace(title) if title else None

    def open_paths(self, paths: list[Path]) -> None:
        for path in paths:
            workspace = self.route(path)
            if workspace is None:
                kinds = "/".join(suffix.lstrip(".").upper() for suffix in ROUTES)
                self.status.show_message(f"Studio does not open {Path(path).suffix or 'files without extension'}"
                                         f" files: drop {kinds}", error=True)
                continue
            self.show_workspace(workspace)
            workspace.open_path(Path(path))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # --- layout and shutdown ---------------------------------------------------------------------
    def _restore_layout(self) -> None:
        stored = window_settings()
        geometry = stored.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1360, 860)
        state = stored.value("state")
        if state is not None:
            self.restoreState(state)
        last = self.workspace(str(stored.value("workspace", "")))
        if last is not None:
            self.show_workspace(last)

    def save_layout(self) -> None:
        stored = window_settings()
        stored.setValue("geometry", self.saveGeometry())
        stored.setValue("state", self.saveState())
        if self.current is not None:
            stored.setValue("workspace", self.current.title)
        stored.sync()

    # --- first run ---------------------------------------------------------------------------------
    def _check_first_run(self, _device: str = "") -> None:
        """Once the engine runs: does the language model still need its first-run export? Then make it now, in the
        background, instead of before the window opened."""
        self.engine.ready.disconnect(self._check_first_run)
        run_job(self.engine, JobSpec("models.export_status"),
                on_done=lambda status: self.preparation.start_export(status["name"], status["variant"])
                if status.get("needed") else None)

    def _preparing(self) -> list[Workspace]:
        """The workspaces that show the first-run preparation of their model (the language model's export)."""
        return [self.modality_workspaces[m.name] for m in all_modalities() if m.prepares]

    def _on_prepared(self, ok: bool, message: str) -> None:
        self.status.set_background("preparation", "")
        self.status.show_message(message, error=not ok)
        for workspace in self._preparing():
            workspace.show_preparation(message, done=True)

    # --- unsaved work ----------------------------------------------------------------------------
    def keep_unsaved_work(self, workspaces: list[Workspace], question: str) -> bool:
        """Ask about the unsaved work of ``workspaces`` (Save / Discard / Cancel); True when it is safe to go on."""
        pending = [(w, what) for w in workspaces if (what := w.unsaved_work())]
        if not pending:
            return True
        lines = "\n".join(f"• {w.title}: {what}" for w, what in pending)
        answer = dialogs.ask_unsaved(self, question, f"Not saved yet:\n{lines}\n\nSave before you go on?")
        if answer == dialogs.CANCEL:
            return False
        for workspace, _ in pending if answer == dialogs.SAVE else ():
            self.show_workspace(workspace)
            if not workspace.save_work():
                self.status.show_message(f"{workspace.title}: not saved, so Studio stays open", error=True)
                return False
        return True

    def close_document(self) -> None:
        """Ctrl+W: an empty document in the current workspace, after asking about unsaved work."""
        if self.current is not None and self.keep_unsaved_work([self.current], f"Close the {self.current.title} "
                                                                 "document?"):
            self.current.close_document()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.autosaver is not None:
            if not self.keep_unsaved_work(self.workspaces, "Quit Studio?"):
                event.ignore()
                return
            self.autosaver.clear()  # saved or knowingly discarded: nothing to restore next time
        self.save_layout()
        self.preparation.stop()
        for workspace in self.workspaces:
            workspace.cancel()
            if isinstance(workspace, TrainWorkspace):
                workspace.shutdown()
        self.engine.shutdown()
        super().closeEvent(event)
