"""Autosave: every workspace's unsaved work is written to the user data folder every few seconds (only when it
changed), removed once it is saved or discarded, and restored at the next start when Studio did not close normally.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from studio.core import paths
from studio.core.errors import StudioError
from studio.ui.workspaces.base import Workspace

log = logging.getLogger(__name__)

INTERVAL_MS = 15_000


def autosave_dir() -> Path:
    return paths.data_dir() / "autosave"


class Autosaver(QObject):
    def __init__(self, workspaces: list[Workspace], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workspaces = workspaces
        self._written: dict[str, object] = {}  # workspace title -> revision written last
        self.problem = ""  # the last write that failed, in words
        self.timer = QTimer(self)
        self.timer.setInterval(INTERVAL_MS)
        self.timer.timeout.connect(self.save_now)

    @staticmethod
    def folder(workspace: Workspace) -> Path:
        return autosave_dir() / workspace.title.lower()

    def save_now(self) -> None:
        """Write what changed since the last tick; drop what is no longer unsaved."""
        for workspace in self._workspaces:
            folder = self.folder(workspace)
            if not workspace.unsaved_work():
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                self._written.pop(workspace.title, None)
                continue
            revision = workspace.revision()
            if self._written.get(workspace.title) == revision and folder.exists():
                continue
            staging = folder.with_name(folder.name + ".new")
            try:
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                workspace.autosave(staging)
                shutil.rmtree(folder, ignore_errors=True)
                staging.rename(folder)  # a crash mid-write leaves the previous autosave whole
            except (OSError, StudioError) as exc:
                self.problem = f"Could not autosave {workspace.title}: {exc}"
                log.warning(self.problem)
                continue
            self._written[workspace.title] = revision

    def restore(self) -> list[str]:
        """Bring back work a crash left behind; returns the titles of the workspaces that got some back."""
        restored = []
        for workspace in self._workspaces:
            folder = self.folder(workspace)
            if folder.is_dir() and workspace.restore_autosave(folder):
                restored.append(workspace.title)
        return restored

    def clear(self) -> None:
        """After a normal close (work saved or knowingly discarded)."""
        self.timer.stop()
        shutil.rmtree(autosave_dir(), ignore_errors=True)
