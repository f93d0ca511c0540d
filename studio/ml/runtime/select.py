"""Remembering which runtime was fastest: "auto" measures every option once on this machine and keeps the answer in
the user cache folder (keyed by the weights' sha256, what was measured and the device), so later jobs do not measure
again. :mod:`studio.ml.runtime.loader` decides what is measured."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from studio.core import paths
from studio.core.errors import BadInputError, DiskWriteError
from studio.core.formats.json_file import read_json
from studio.core.safe_write import write_atomic

log = logging.getLogger(__name__)

CHOICES_FILE = "runtime_choices.json"


def _choices_path() -> Path:
    return paths.cache_dir() / CHOICES_FILE


def _read_choices() -> dict[str, str]:
    """Measured choices; a missing or damaged file is no choice yet (they are measured again)."""
    try:
        raw = read_json(_choices_path(), max_bytes=1 << 20)
    except BadInputError:
        return {}
    return {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}


def _remember(key: str, runtime: str) -> None:
    choices = _read_choices()
    choices[key] = runtime
    try:
        write_atomic(_choices_path(), json.dumps(choices, indent=2), "the runtime choices")
    except DiskWriteError as exc:  # only costs a measurement next time
        log.warning("%s", exc)


def fastest(key: str, timings: Callable[[], dict[str, float]], what: str) -> str:
    """The option remembered under ``key``; when this machine has no answer yet, ``timings()`` measures every
    option ({name: seconds}, lower is faster; the first wins a tie) and the fastest is remembered."""
    choice = _read_choices().get(key)
    if choice is None:
        seconds = timings()
        choice = min(seconds, key=seconds.__getitem__)
        log.info("%s: %s -> %s", what, ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in seconds.items()), choice)
        _remember(key, choice)
    return choice
