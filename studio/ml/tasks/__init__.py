"""Task table: job kind -> function(spec, ctx) -> result. Used by the engine's worker and by the CLI.

Tasks are plain functions; they call ``ctx.progress``/``ctx.partial`` (both cancel points) and return a result.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from studio.core.context import JobContext
from studio.core.jobs import JobSpec

Task = Callable[[JobSpec, JobContext], Any]

_TASKS: dict[str, Task] = {}


def task(kind: str) -> Callable[[Task], Task]:
    """Decorator registering a task under ``kind`` (e.g. ``sprite.generate``)."""

    def wrap(fn: Task) -> Task:
        if kind in _TASKS:
            raise ValueError(f"task {kind!r} is registered twice")
        _TASKS[kind] = fn
        return fn

    return wrap


def all_tasks() -> dict[str, Task]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(_TASKS)
