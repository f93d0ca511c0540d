"""Icons from ``resources/icons/*.svg`` (drawn for Studio; see resources/LICENSES)."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from studio.core.paths import resources_dir


@cache
def icon(name: str) -> QIcon:
    """The named icon; an empty icon when the file is missing (a button then shows its text only)."""
    path = resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
