"""Pause and resume for LoRA training: the adapter, AdamW, the best adapter so far, the data order and the dropout
random generator in one checkpoint (safetensors + JSON, no pickle), so a resumed run takes the same steps it would
have taken without the pause."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import BadInputError
from studio.ml.train.checkpoints import (
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)

KEEP = 2


@dataclass
class LoopState:
    """Where the loop is: steps taken, the shuffle state at the start of the current epoch and how many of that
    epoch's batches are done, the losses so far, held-out perplexity before training and the best validation
    score; ``done`` once the loop has ended (only the adapter file is left to write)."""

    step: int = 0
    epoch_rng: list[Any] = field(default_factory=list)
    batch_index: int = 0
    losses: list[float] = field(default_factory=list)
    before: float = 0.0
    best_score: float = float("inf")
    done: bool = False


def recipe_of(items: Any, settings: Any, base_sha256: str) -> str:
    """A fingerprint of what fixes the run (data, settings except the step limit, base model)."""
    fixed = {k: v for k, v in asdict(settings).items() if k != "max_steps"}
    text = json.dumps({"items": items, "settings": fixed, "base": base_sha256}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rng_state(order: random.Random) -> list[Any]:
    version, values, gauss = order.getstate()
    return [version, list(values), gauss]


def set_rng_state(order: random.Random, state: list[Any]) -> None:
    order.setstate((state[0], tuple(state[1]), state[2]))


def save_state(folder: Path, state: LoopState, adapter: dict[str, torch.Tensor], best: dict[str, torch.Tensor],
               optimiser: torch.optim.Optimizer, recipe: str) -> None:
    groups = {"adapter": adapter, "best": best, "rng": {"torch": torch.get_rng_state()}}
    extra = {"loop": asdict(state), "recipe": recipe}
    save_checkpoint(folder, Checkpoint(state.step, groups, {"adamw": optimiser.state_dict()}, extra))
    prune_checkpoints(folder, KEEP)


def load_state(folder: Path, recipe: str) -> tuple[LoopState, Checkpoint] | None:
    """The newest saved state of the run in ``folder`` (None when there is none); refuses another recipe's."""
    latest = latest_checkpoint(folder)
    if latest is None:
        return None
    saved = load_checkpoint(latest)
    if saved.extra.get("recipe") != recipe:
        raise BadInputError(
            f"{folder.parent.name} was started with other lines, settings or base model: keep them to resume, "
            "or pick another name to start afresh"
        )
    return LoopState(**saved.extra["loop"]), saved


def has_state(folder: Path | None) -> bool:
    return folder is not None and latest_checkpoint(folder) is not None
