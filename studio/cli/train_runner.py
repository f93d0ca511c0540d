"""Glue between a trainer and the terminal or the app.

A trainer is ``train(on_event, cancel) -> result dict``; it calls ``on_event`` with
``{"step", "total", "loss": {...}, "eta_s", "sample_grid": HxWx4 uint8 | None, ...}`` and, when ``cancel`` is set,
saves a checkpoint and raises JobCancelled. With ``--events`` every event is one JSON line on stdout (sample grids
are written to PNG files and sent as paths) — that is how the app's TrainingProcess follows a run.
SIGTERM means "pause": checkpoint and exit with PAUSED_EXIT_CODE.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from studio.cli.console import _format_eta
from studio.core import paths
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.errors import StudioError
from studio.core.formats.png_meta import save_png

PAUSED_EXIT_CODE = 75  # the same value as studio.engine.training_process.PAUSED_EXIT_CODE

Trainer = Callable[[Callable[[dict[str, Any]], None], CancelToken], dict[str, Any]]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


class EventWriter:
    """Writes trainer events as JSON lines (``events=True``) or as a progress line on stderr."""

    def __init__(self, events: bool) -> None:
        self.events = events
        self._preview_dir = paths.cache_dir() / "training-previews"
        self._last_draw = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        event = dict(event)
        grid = event.pop("sample_grid", None)
        if isinstance(grid, np.ndarray):
            path = self._preview_dir / f"{os.getpid()}-{event.get('step', 0)}.png"
            save_png(path, grid, None, write_metadata=False)
            event["sample_path"] = str(path)
        event.setdefault("event", "progress")
        if self.events:
            sys.stdout.write(json.dumps(_jsonable(event)) + "\n")
            sys.stdout.flush()
        else:
            self._draw(event)

    def _draw(self, event: dict[str, Any]) -> None:
        if event["event"] != "progress":
            if event["event"] != "finished":
                sys.stderr.write(f"\n{event['event']}: {event.get('message', '')}\n")
            return
        now = time.monotonic()
        step, total = int(event.get("step", 0)), int(event.get("total", 0)) or 1
        if now - self._last_draw < 0.2 and step < total:
            return
        self._last_draw = now
        losses = " ".join(f"{k}={float(v):.4f}" for k, v in event.get("loss", {}).items())
        sys.stderr.write(f"\rstep {step}/{total} ({100 * step / total:5.1f}%) ETA {_format_eta(event.get('eta_s'))} "
                         f"{losses:<50}")
        sys.stderr.flush()


def run_trainer(train: Trainer, events: bool) -> int:
    """Run ``train`` with SIGTERM/SIGINT as pause requests; returns the process exit code."""
    token = CancelToken()
    writer = EventWriter(events)
    previous = {sig: signal.signal(sig, lambda *_: token.cancel()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        result = train(writer, token)
    except JobCancelled as exc:
        writer({"event": "paused", "message": str(exc) or "checkpoint saved; run again with --resume to continue"})
        return PAUSED_EXIT_CODE
    except StudioError as exc:
        writer({"event": "error", "message": str(exc)})
        if not events:
            raise
        return 1
    except MemoryError:
        writer({"event": "error", "message": "out of memory: pick a smaller preset or fewer images"})
        return 1
    except OSError as exc:  # a read or write the trainer did not guard itself: still a sentence, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        writer({"event": "error", "message": f"training stopped: {exc.strerror or exc}{where}; resume when fixed"})
        if not events:
            raise
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    writer({"event": "finished", **(result or {})})
    if not events:
        sys.stderr.write("\n")
    return 0
