"""What a training run says while it runs: one typed event per JSON line of ``studio train --events`` (the app's
training process reads them; the trainers write plain dicts, which :func:`event_from_dict` checks and types)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainingProgress:
    step: int
    total: int
    loss: Mapping[str, float] = field(default_factory=dict)  # named losses (and "lr", "progress")
    eta_s: float | None = None
    sample_path: str = ""  # a PNG of samples, when the run drew some at this step


@dataclass(frozen=True)
class TrainingInfo:
    message: str


@dataclass(frozen=True)
class TrainingPaused:
    message: str


@dataclass(frozen=True)
class TrainingError:
    message: str


@dataclass(frozen=True)
class TrainingFinished:
    model: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    card: str = ""
    evaluation: Mapping[str, Any] = field(default_factory=dict)  # sprites: FID and near copies against the data
    details: Mapping[str, Any] = field(default_factory=dict)  # anything else the trainer reported


TrainingEvent = TrainingProgress | TrainingInfo | TrainingPaused | TrainingError | TrainingFinished
KINDS: dict[str, type] = {"progress": TrainingProgress, "info": TrainingInfo, "paused": TrainingPaused,
                          "error": TrainingError, "finished": TrainingFinished}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def event_from_dict(data: Mapping[str, Any]) -> TrainingEvent:
    """A trainer's event dict (``{"event": kind, ...}``, kind "progress" when absent) as a typed event; fields of
    the wrong type are dropped rather than trusted (the line comes from another process)."""
    kind = str(data.get("event", "progress"))
    if kind == "progress":
        raw = data.get("loss") if isinstance(data.get("loss"), Mapping) else {}
        numbers = {str(k): _number(v) for k, v in raw.items()}
        return TrainingProgress(
            step=int(_number(data.get("step")) or 0), total=int(_number(data.get("total")) or 0),
            loss={k: v for k, v in numbers.items() if v is not None},
            eta_s=_number(data.get("eta_s")), sample_path=str(data.get("sample_path") or ""))
    if kind == "finished":
        known = {"event", "model", "metrics", "card", "evaluation"}

        def mapping(key: str) -> Mapping[str, Any]:
            return dict(data[key]) if isinstance(data.get(key), Mapping) else {}

        return TrainingFinished(model=str(data.get("model") or ""), metrics=mapping("metrics"),
                                card=str(data.get("card") or ""), evaluation=mapping("evaluation"),
                                details={k: v for k, v in data.items() if k not in known})
    message = str(data.get("message", ""))
    return KINDS.get(kind, TrainingInfo)(message)


def event_to_dict(event: TrainingEvent) -> dict[str, Any]:
    """The JSON-line form of an event (what :func:`event_from_dict` reads back)."""
    kind = next(name for name, cls in KINDS.items() if isinstance(event, cls))
    data = asdict(event)
    if isinstance(event, TrainingFinished):
        data.update(data.pop("details"))
    return {"event": kind, **data}
