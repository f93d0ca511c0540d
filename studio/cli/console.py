"""Running a task from the terminal: the same task table as the app, a progress bar with ETA on stderr."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from studio.core.cancel import CancelToken, JobCancelled
from studio.core.context import JobContext
from studio.core.errors import StudioError
from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.core.settings import load_settings


def _format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class ConsoleSink:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._last_draw = 0.0

    def __call__(self, event: JobEvent) -> None:
        if self.quiet or event.type is not EventType.PROGRESS:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and event.fraction < 1.0:
            return
        self._last_draw = now
        width = 30
        filled = int(event.fraction * width)
        bar = "#" * filled + "-" * (width - filled)
        line = f"\r[{bar}] {event.fraction * 100:5.1f}% ETA {_format_eta(event.eta_s)} {event.message[:60]:<60}"
        sys.stderr.write(line)
        if event.fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()


def make_resources(device: str | None = None) -> Any:
    from studio.ml.resources import Resources

    settings = load_settings()
    if device:
        settings.device = device
    return Resources.from_settings(settings)


def run_in_console(spec: JobSpec, device: str | None = None, quiet: bool = False, resources: Any = None) -> Any:
    """Run one job in this process; Ctrl+C cancels it at the next step."""
    from studio.ml.tasks import all_tasks
    from studio.ml.tasks.runner import run_task

    tasks = all_tasks()
    if spec.kind not in tasks:
        raise StudioError(f"unknown job kind {spec.kind!r}")
    resources = resources or make_resources(device)
    token = CancelToken()
    sink = ConsoleSink(quiet)
    ctx = JobContext(spec, sink, token, resources.device, resources)
    previous = signal.signal(signal.SIGINT, lambda *_: token.cancel())
    try:
        result = run_task(tasks[spec.kind], spec, ctx)
    except JobCancelled:
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGINT, previous)
        if not quiet:
            sys.stderr.write("\n")
    return result
