"""The questions workspaces ask: where to save or export (remembering the folder and file type per workspace), and
yes/no or save/discard/cancel confirmations.

Workspaces call these through the module (``dialogs.ask_save_path(...)``) so tests can answer in their place.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from studio.core.paths import config_dir

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def _remembered() -> QSettings:
    return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)


def last_folder(key: str, fallback: Path) -> Path:
    """The folder the user last saved or exported to from ``key`` (a workspace), else ``fallback``."""
    folder = _remembered().value(f"folders/{key}", "")
    return Path(str(folder)) if folder and Path(str(folder)).is_dir() else fallback


def remember(key: str, path: Path, file_filter: str = "") -> None:
    stored = _remembered()
    stored.setValue(f"folders/{key}", str(Path(path).parent))
    if file_filter:
        stored.setValue(f"filters/{key}", file_filter)
    stored.sync()


def ask_save_path(parent: QWidget | None, key: str, title: str, fallback_folder: Path, name: str,
                  filters: str) -> Path | None:
    """A save dialog that opens where the user saved last from ``key``, with the file type chosen last; None when
    the user cancels."""
    folder = last_folder(key, fallback_folder)
    chosen_filter = str(_remembered().value(f"filters/{key}", ""))
    if chosen_filter and chosen_filter in filters.split(";;"):
        suffix = chosen_filter.rsplit("*", 1)[-1].rstrip(")").split()[0] if "*" in chosen_filter else ""
        if suffix.startswith("."):
            name = str(Path(name).with_suffix(suffix))
    else:
        chosen_filter = ""
    path, used_filter = QFileDialog.getSaveFileName(parent, title, str(folder / name), filters, chosen_filter)
    if not path:
        return None
    remember(key, Path(path), used_filter)
    return Path(path)


def ask_open_path(parent: QWidget | None, key: str, title: str, fallback_folder: Path, filters: str) -> Path | None:
    path, _ = QFileDialog.getOpenFileName(parent, title, str(last_folder(key, fallback_folder)), filters)
    if not path:
        return None
    remember(key, Path(path))
    return Path(path)


def ask_folder(parent: QWidget | None, key: str, title: str, fallback_folder: Path) -> Path | None:
    folder = QFileDialog.getExistingDirectory(parent, title, str(last_folder(key, fallback_folder)))
    if not folder:
        return None
    remember(key, Path(folder) / "_")  # the folder itself is what is remembered
    return Path(folder)


def confirm(parent: QWidget | None, title: str, text: str, yes: str = "Continue") -> bool:
    """A warning with ``yes`` and Cancel; Cancel is the default (Enter does not lose or publish anything)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Cancel, parent)
    accept = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is accept


def ask_unsaved(parent: QWidget | None, title: str, text: str) -> str:
    """SAVE, DISCARD or CANCEL for unsaved work (Cancel is the default)."""
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.warning(parent, title, text, buttons.Save | buttons.Discard | buttons.Cancel,
                                 buttons.Cancel)
    return {buttons.Save: SAVE, buttons.Discard: DISCARD}.get(answer, CANCEL)
