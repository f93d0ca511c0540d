"""User settings, persisted as JSON in the platform's config folder."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from studio.core import paths

DEVICES = ("auto", "cuda", "cpu")
RUNTIMES = ("auto", "torch", "onnxruntime")


@dataclass
class Settings:
    device: str = "auto"
    runtime: str = "auto"
    output_dir: str = ""
    write_metadata: bool = True
    cpu_threads: int = 0  # 0 = leave one core free for the desktop
    model_memory_budget_mb: int = 4096
    shared_model_dir: str = ""
    soundfont_path: str = ""  # optional General MIDI SoundFont (.sf2/.sf3) for music rendering

    @property
    def model_threads(self) -> int:
        """CPU threads for model work, the app's worker and its training runs alike: the setting, or all cores but
        one (the UI thread and the desktop keep one; two processes that each want every core slow each other
        several-fold on small machines)."""
        return self.cpu_threads or max(1, (os.cpu_count() or 2) - 1)

    @property
    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else paths.default_output_dir()

    def validate(self) -> None:
        if self.device not in DEVICES:
            self.device = "auto"
        if self.runtime not in RUNTIMES:
            self.runtime = "auto"
        self.cpu_threads = max(0, int(self.cpu_threads))


def settings_path() -> Path:
    return paths.config_dir() / "settings.json"


def load_settings() -> Settings:
    """Read settings; a missing or damaged file gives the defaults (the damaged one is kept aside)."""
    path = settings_path()
    if not path.exists():
        return Settings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(Settings)}
        settings = Settings(**{k: v for k, v in raw.items() if k in known})
    except (ValueError, TypeError):
        path.replace(path.with_suffix(".damaged.json"))
        return Settings()
    settings.validate()
    return settings


def save_settings(settings: Settings) -> None:
    path = settings_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    tmp.replace(path)
