"""Job specifications and events exchanged between the UI, the engine and the CLI.

Everything here is plain, immutable data so it can cross threads (and processes) safely.
"""

from __future__ import annotations

import enum
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_job_ids = itertools.count(1)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Turn a frozen params structure back into plain dicts and lists (e.g. for JSON)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class JobSpec:
    """What to run: a task kind (e.g. ``sprite.generate``), its parameters, a seed and a model name."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    model: str = ""
    job_id: int = field(default_factory=lambda: next(_job_ids))

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _freeze(dict(self.params)))

    def recipe(self) -> dict[str, Any]:
        """The reproducible recipe of this job, as JSON-ready data."""
        return {"kind": self.kind, "model": self.model, "seed": self.seed, "params": thaw(self.params)}

    def recipe_json(self) -> str:
        return json.dumps(self.recipe(), sort_keys=True)


class EventType(enum.Enum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    PARTIAL = "partial"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (EventType.FINISHED, EventType.FAILED, EventType.CANCELLED)


@dataclass(frozen=True)
class JobEvent:
    """One thing that happened to a job. ``payload`` is plain data (numpy arrays, str, dataclasses)."""

    job_id: int
    kind: str
    type: EventType
    fraction: float = 0.0
    message: str = ""
    eta_s: float | None = None
    payload: Any = None
    preview: Any = None
