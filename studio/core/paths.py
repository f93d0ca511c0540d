"""Where Studio keeps settings, user models, caches and outputs (platform-standard places).

``STUDIO_HOME`` redirects everything under one folder (tests, portable installs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP = "studio"


def _home_override() -> Path | None:
    home = os.environ.get("STUDIO_HOME")
    return Path(home) if home else None


def config_dir() -> Path:
    home = _home_override()
    path = home / "config" if home else Path(platformdirs.user_config_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    home = _home_override()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    home = _home_override()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_output_dir() -> Path:
    home = _home_override()
    return home / "outputs" if home else Path(platformdirs.user_documents_dir()) / "Studio"


def is_bundle() -> bool:
    """Whether Studio runs from the one-folder bundle (PyInstaller), not from a Python environment."""
    return bool(getattr(sys, "frozen", False))


def self_command() -> tuple[str, ...]:
    """The command that runs Studio's own CLI in a child process: the bundle's executable, else this Python."""
    return (sys.executable,) if is_bundle() else (sys.executable, "-m", "studio")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def system_environment() -> dict[str, str]:
    """The environment for running one of the machine's own programs (nvidia-smi, apt-get): the bundle's launcher
    points LD_LIBRARY_PATH at the bundle's libraries, which are not the ones those programs were built with."""
    env = dict(os.environ)
    if is_bundle():
        original = env.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is None:
            env.pop("LD_LIBRARY_PATH", None)
        else:
            env["LD_LIBRARY_PATH"] = original
    return env


def reinstall_hint() -> str:
    """What to do about a damaged file that ships with Studio."""
    if is_bundle():
        return "unpack the Studio archive again (its files are read-only, so something outside Studio changed them)"
    return "restore the models folder (`git checkout -- models`) and run the set-up command again"


def bundled_models_dir() -> Path:
    """The read-only ``models/`` folder shipped with the program."""
    override = os.environ.get("STUDIO_BUNDLED_MODELS")
    return Path(override) if override else repo_root() / "models"


def resources_dir() -> Path:
    return repo_root() / "resources"
