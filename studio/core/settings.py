"""User settings, persisted as JSON in the platform's config folder."""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import BadInputError
from studio.core.formats.json_file import expect_object, read_json
from studio.core.safe_write import write_atomic

DEVICES = ("auto", "cuda", "cpu")
RUNTIMES = ("auto", "torch", "onnxruntime")
MAX_SETTINGS_BYTES = 1 << 20
MAX_THREADS = 1024
MIN_BUDGET_MB, MAX_BUDGET_MB = 256, 1 << 20


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
        self.cpu_threads = min(MAX_THREADS, max(0, int(self.cpu_threads)))
        self.model_memory_budget_mb = min(MAX_BUDGET_MB, max(MIN_BUDGET_MB, int(self.model_memory_budget_mb)))


def settings_path() -> Path:
    return paths.config_dir() / "settings.json"


def _same_kind(value: Any, default: Any) -> bool:
    return isinstance(value, type(default)) and isinstance(value, bool) == isinstance(default, bool)


def load_settings() -> Settings:
    """Read settings; a missing or damaged file gives the defaults (the damaged one is kept aside), and a field of
    the wrong type keeps its default while the others are kept."""
    path = settings_path()
    if not path.exists():
        return Settings()
    try:
        raw = expect_object(read_json(path, max_bytes=MAX_SETTINGS_BYTES), path.name)
    except BadInputError:
        with suppress(OSError):
            path.replace(path.with_suffix(".damaged.json"))
        return Settings()
    defaults = Settings()
    settings = Settings(**{f.name: raw[f.name] for f in fields(Settings)
                           if f.name in raw and _same_kind(raw[f.name], getattr(defaults, f.name))})
    settings.validate()
    return settings


def save_settings(settings: Settings) -> None:
    """Crash-safe; a full disk or a read-only folder is a DiskWriteError and keeps the previous settings file."""
    write_atomic(settings_path(), json.dumps(asdict(settings), indent=2), "the settings")
