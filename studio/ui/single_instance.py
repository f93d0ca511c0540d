"""One Studio window at a time per user: two would write the same autosave files and settings and could start the
same background model export twice. A second copy says so and leaves; a lock left by a crashed copy is taken over
(Qt's lock file records the holder's process, and a lock whose process is gone is stale)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QLockFile

LOCK_NAME = "window.lock"


class InstanceLock:
    def __init__(self, folder: Path) -> None:
        self._lock = QLockFile(str(folder / LOCK_NAME))
        self._lock.setStaleLockTime(0)  # stale only when its process is gone, never by age

    def acquire(self) -> bool:
        return self._lock.tryLock(200)

    def release(self) -> None:
        self._lock.unlock()

    def holder(self) -> str:
        """Who holds it, in words: ``process 4242 on this machine``."""
        info = self._lock.getLockInfo()
        if not info or not info[0]:
            return "another copy"
        return f"process {info[0]}" + (f" on {info[1]}" if info[1] else "")


def already_open_message(holder: str) -> str:
    return (f"Studio is already open ({holder}). Switch to that window: a second one would share its autosave, "
            "settings and model folder. (The command line, `studio generate ...`, works beside it.)")
