"""Shared fixtures: offscreen Qt, settings/data redirected to a temporary folder, screenshot artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(autouse=True)
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own settings, user models, caches and outputs; bundled models stay where they are."""
    home = tmp_path / "studio-home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


@pytest.fixture
def save_screenshot():
    """Write ``widget.grab()`` to artifacts/screenshots/NAME.png (looked at by people, kept by CI)."""

    def save(widget, name: str) -> Path:
        folder = ARTIFACTS / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        assert widget.grab().save(str(path)), f"could not save screenshot {path}"
        return path

    return save
