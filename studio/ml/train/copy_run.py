"""A brand-voice LoRA run from the user's own lines: presets, a pausable run folder, the adapter file and its card.

``train_copy(lm, config, on_event, cancel)`` is the trainer behind ``studio train copy`` and so behind the app's
Train workspace (which runs that command in a child process): it reports ``{"step", "total", "loss", "eta_s"}``
events, checkpoints into ``<data>/runs/NAME/checkpoints`` (every epoch and on pause), resumes from there, and
finally writes ``NAME.safetensors`` + ``.json`` (the adapter) and ``NAME.md`` (its model card) to the user models.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.cancel import CancelToken
from studio.core.errors import BadInputError
from studio.ml.device import describe_device
from studio.ml.train.lora import LoRAConfig, RunFolder, TrainSettings, save_adapter, train_lora
from studio.ml.train.model_card import write_model_card
from studio.ml.train.music import git_commit

EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CopyPreset:
    epochs: int  # at most: training stops early when the validation lines stop improving
    rank: int
    lr: float


PRESETS: dict[str, CopyPreset] = {
    "quick": CopyPreset(epochs=2, rank=4, lr=5e-4),
    "balanced": CopyPreset(epochs=8, rank=8, lr=3e-4),
    "best": CopyPreset(epochs=16, rank=16, lr=2e-4),
}


@dataclass
class CopyTrainConfig:
    """What to train on and how; ``None`` fields take the preset's value."""

    name: str
    data: Path | None = None  # the user's lines: TXT (one a line) or CSV (one a row)
    debian: Path | None = None  # or the Debian product-blurb corpus of `studio data copy`
    preset: str = "balanced"
    max_steps: int = 0  # 0: the preset's epochs decide
    epochs: int | None = None
    rank: int | None = None
    lr: float | None = None
    lines_per_example: int = 4
    held_out: float = 0.2  # share of the user's lines kept aside to measure
    samples: int = 2000  # --debian: blurbs to train on
    held_out_count: int = 200  # --debian: blurbs kept aside
    seed: int = 0
    licence: str = ""
    command: str = ""
    out: Path | None = None  # adapter path (default: the user models folder)
    resume: bool = False


def settings_for(config: CopyTrainConfig) -> TrainSettings:
    if config.preset not in PRESETS:
        raise BadInputError(f"unknown preset {config.preset!r}: use {', '.join(PRESETS)}")
    preset = PRESETS[config.preset]
    rank = config.rank or preset.rank
    return TrainSettings(epochs=config.epochs or preset.epochs, max_steps=config.max_steps, seed=config.seed,
                         lr=config.lr or preset.lr, lora=LoRAConfig(rank=rank, alpha=2.0 * rank))


def training_items(config: CopyTrainConfig, lm: Any) -> tuple[list, list, dict[str, Any], str]:
    """(train items, held-out items, data description for the sidecar, a sentence about what was read)."""
    from studio.ml.data.copy_text import debian_items, read_debian_corpus, read_training_lines, split_held_out
    from studio.ml.train.lora import brand_voice_request, items_from_lines

    if config.data is not None:
        text = read_training_lines(config.data, seed=config.seed)
        train_lines, held_lines = split_held_out(text.lines, config.held_out, config.seed)
        request = brand_voice_request()
        meta = {"data": config.data.name, "source_lines": len(text.lines), "sampled": text.sampled,
                "kind": "brand voice"}
        return (items_from_lines(train_lines, request, config.lines_per_example, config.seed),
                items_from_lines(held_lines, request, 1, config.seed), meta, text.message)
    if config.debian is None:
        raise BadInputError("give the lines to train on (a TXT or CSV file)")
    records = read_debian_corpus(config.debian)
    train, held = debian_items(records, config.samples, config.held_out_count, config.seed)
    meta = {"data": config.debian.name, "records": len(records), "kind": "Debian product blurbs"}
    return train, held, meta, f"{len(train)} product blurbs to train on, {len(held)} held out"


def run_folder(name: str) -> Path:
    return paths.data_dir() / "runs" / name


def train_copy(lm: Any, config: CopyTrainConfig, on_event: EventCallback, cancel: CancelToken | None = None
               ) -> dict[str, Any]:
    """Train (or resume) the adapter ``config.name`` on the torch language model ``lm``; returns the outcome
    (model, model_path, card, metrics). A cancelled token saves a checkpoint and raises JobCancelled."""
    if lm.source.get("base_model"):
        raise BadInputError(f"{lm.name!r} is an adapter: train on a base language model")
    cancel = cancel or CancelToken()
    settings = settings_for(config)
    train_items, held_items, data_meta, message = training_items(config, lm)
    on_event({"event": "info", "message": message})
    began = time.monotonic()
    started_after: list[int] = []  # the step this process started after (> 0 when resumed)

    def on_step(step: int, total: int, losses: dict[str, float]) -> None:
        if not started_after:
            started_after.append(step - 1)
        eta = (time.monotonic() - began) / max(1, step - started_after[0]) * (total - step)
        on_event({"step": step, "total": total, "loss": losses, "eta_s": eta})

    run = RunFolder(run_folder(config.name) / "checkpoints", config.resume)
    result = train_lora(lm, train_items, held_items, settings, on_step=on_step, cancel=cancel.check, run=run)
    metrics = {"perplexity_before": result.perplexity_before, "perplexity_after": result.perplexity_after,
               "train_lines": result.train_lines, "validation_lines": result.validation_lines,
               "validation_perplexity": result.validation_perplexity, "held_out_lines": result.held_out_lines,
               "final_loss": result.losses[-1] if result.losses else None}
    training = {"steps": result.steps, "seconds": round(result.seconds, 1), "seed": settings.seed,
                "lr": settings.lr, "batch": settings.batch, "device": str(lm.device), "preset": config.preset,
                "hardware": describe_device(lm.device.type), "commit": git_commit(), "command": config.command,
                **data_meta}
    out = config.out or paths.user_models_dir() / f"{config.name}.safetensors"
    path = save_adapter(out, result.model, settings.lora, {
        "name": config.name, "base_model": lm.name, "base_sha256": lm.sha256, "rank": settings.lora.rank,
        "targets": list(settings.lora.targets), "metrics": metrics, "training": training,
        "settings": {k: v for k, v in asdict(settings).items() if k != "lora"},
    })
    card = write_model_card(path, config.licence)
    return {"model": config.name, "model_path": str(path), "card": str(card), "metrics": metrics}
