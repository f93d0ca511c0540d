"""Training the music Transformer: presets, resumable checkpoints, EMA weights, torchrun/DDP-ready.

Run headless with ``studio train music --data DIR`` or under ``torchrun --nproc_per_node=N -m studio train music``
(each rank draws its own windows; rank 0 evaluates, checkpoints and writes the model). Checkpoints (weights, EMA and
AdamW state as safetensors, no pickles; :mod:`studio.ml.train.checkpoints`) go to ``<data>/runs/music/NAME`` and a
run resumes from the newest one. Every step draws its windows from a generator seeded by (seed, rank, step), so a
resumed run sees the same data it would have seen without the interruption.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.cancel import CancelToken, JobCancelled
from studio.core.errors import BadInputError
from studio.core.safe_write import write_atomic
from studio.ml.checkpoint import save_model
from studio.ml.data.music import MusicData, read_manifest
from studio.ml.device import describe_device
from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
from studio.ml.music import tokens
from studio.ml.train import distributed
from studio.ml.train.checkpoints import (
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from studio.ml.train.ema import EMA
from studio.ml.train.music_card import model_card

ARCH = "music-transformer"
IGNORE = -100
EMA_DECAY = 0.995
KEEP_CHECKPOINTS = 2


@dataclass(frozen=True)
class Preset:
    model: dict[str, int]
    steps: int
    batch: int
    lr: float
    warmup: int
    eval_every: int


PRESETS: dict[str, Preset] = {
    # minutes on a laptop CPU; a smoke test of the whole pipeline
    "quick": Preset({"n_layer": 2, "n_head": 4, "n_embd": 128, "block_size": 256}, 300, 16, 1e-3, 50, 100),
    # the bundled model: trained for a fixed 35 minutes on a shared 2-core CPU (--max-minutes 35)
    "balanced": Preset({"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 256}, 2000, 16, 1.5e-3, 100, 100),
    # a GPU run
    "best": Preset({"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 768}, 20000, 32, 4e-4, 500, 1000),
}


@dataclass
class TrainOptions:
    data: Path
    preset: str = "balanced"
    max_steps: int | None = None
    max_minutes: float | None = None  # a time budget: the schedule then follows elapsed time, not steps
    name: str = "music-transformer"
    resume: bool = False
    out_dir: Path | None = None  # where the model file goes (default: the user's model folder)
    run_dir: Path | None = None  # checkpoints and log (default: <data dir>/runs/music/<name>)
    seed: int = 0
    device: str = "cpu"
    init_from: Path | None = None  # fine-tune: start from this model file's weights
    val_limit: int = 256  # validation sequences used for the periodic check (all of them at the end)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. a tiny network for tests
    threads: int = 0  # CPU threads for torch (0: torch's default)
    lr_scale: float = 1.0  # e.g. lower for fine-tuning
    licence: str = ""  # the licence of the training data, written into the model's card
    command: str = ""  # the command line, for the card


# -- the loop ---------------------------------------------------------------------------------------------------


def make_batch(seqs: list[np.ndarray], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs and targets; header tokens and padding are not predicted."""
    length = max(len(s) for s in seqs) - 1
    x = np.full((len(seqs), length), tokens.PAD, dtype=np.int64)
    y = np.full((len(seqs), length), IGNORE, dtype=np.int64)
    for row, seq in enumerate(seqs):
        x[row, : len(seq) - 1] = seq[:-1]
        y[row, : len(seq) - 1] = seq[1:]
        y[row, : tokens.HEADER_LEN - 1] = IGNORE
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def sequence_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits, _ = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)


@torch.no_grad()
def validation_nll(model: nn.Module, seqs: list[np.ndarray], device: str, batch: int = 16) -> tuple[float, int]:
    """Mean negative log-likelihood (nats per predicted token, header excluded) and the token count."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    ordered = sorted(seqs, key=len)
    for i in range(0, len(ordered), batch):
        x, y = make_batch(ordered[i : i + batch], device)
        logits, _ = model(x)
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE,
                                 reduction="sum")
        total += float(losses)
        count += int((y != IGNORE).sum())
    model.train(was_training)
    return total / max(count, 1), count


def learning_rate(step: int, preset: Preset, progress: float) -> float:
    """Linear warm-up over ``preset.warmup`` steps, then cosine decay to 10 % as ``progress`` goes 0 -> 1."""
    if step < preset.warmup:
        return preset.lr * (step + 1) / preset.warmup
    return preset.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress)))))


ProgressFn = Callable[[int, int, dict[str, float]], None]


def train(
    options: TrainOptions, on_progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> Path | None:
    """Train (or resume); returns the model file written by rank 0 (None on other ranks).

    A cancelled ``cancel`` token saves a checkpoint at the next step and raises JobCancelled (a pause: resume
    later with ``resume=True``). The model's card is written beside it (``NAME.md``).
    """
    if options.preset not in PRESETS:
        raise BadInputError(f"unknown preset {options.preset!r}: use {', '.join(PRESETS)}")
    if options.threads:
        torch.set_num_threads(options.threads)
    info, device = distributed.setup(options.device)
    try:
        return _train(options, info, device, on_progress, cancel)
    finally:
        distributed.teardown(info)


def _train(
    options: TrainOptions, info: distributed.DistInfo, device: str, on_progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> Path | None:
    preset = PRESETS[options.preset]
    steps = options.max_steps or preset.steps
    train_set = MusicData.load(options.data, "train")
    val_set = MusicData.load(options.data, "val")
    if options.init_from:
        from studio.ml.checkpoint import load_model

        model, config, _ = load_model(Path(options.init_from), expect_arch=ARCH, device=device)
        model.train()
    else:
        config = MusicTransformerConfig(**(preset.model | options.model_overrides))
        torch.manual_seed(options.seed)
        model = MusicTransformer(config).to(device)
    ema = EMA(model, EMA_DECAY)
    opt = torch.optim.AdamW(model.parameters(), lr=preset.lr, betas=(0.9, 0.95), weight_decay=0.05)
    run_dir = options.run_dir or Path(options.data) / "runs" / "music" / options.name
    step, best_val, log, wall_before = 0, math.inf, [], 0.0
    if not options.resume and latest_checkpoint(run_dir) is not None:  # a fresh run would mix with its checkpoints
        raise BadInputError(f"{options.name} already holds a run ({run_dir}): resume it, or pick another name")
    if options.resume:
        latest = latest_checkpoint(run_dir)
        if latest is None:
            raise BadInputError(f"nothing to resume: {run_dir} holds no checkpoint")
        saved = load_checkpoint(latest, device)
        model.load_state_dict(saved.groups["model"])
        ema.load_state_dict(saved.groups["ema"])
        opt.load_state_dict(saved.optimizers["adamw"])
        step = saved.step
        best_val, log, wall_before = saved.extra["best_val"], saved.extra["log"], saved.extra["wall_seconds"]
    net = distributed.wrap(model, info, device)
    val_seqs = val_set.validation_sequences(config.block_size)
    quick_val = val_seqs[: options.val_limit]
    started = time.monotonic()
    budget = options.max_minutes * 60 if options.max_minutes else None

    def progress() -> float:
        """Fraction of the run done: by steps, or by time when there is a budget (whichever is further)."""
        by_steps = step / steps
        if budget is None:
            return by_steps
        return max(by_steps, (wall_before + time.monotonic() - started) / budget)

    def checkpoint() -> None:
        extra = {"best_val": best_val, "log": log, "wall_seconds": wall_before + time.monotonic() - started,
                 "preset": options.preset, "config": asdict(config)}
        groups = {"model": model.state_dict(), "ema": ema.state_dict()}
        save_checkpoint(run_dir, Checkpoint(step, groups, {"adamw": opt.state_dict()}, extra))
        prune_checkpoints(run_dir, KEEP_CHECKPOINTS)

    model.train()
    while progress() < 1.0 or step == 0:
        if distributed.any_rank(cancel is not None and cancel.cancelled, info, device):
            if info.is_main and step:
                checkpoint()
            raise JobCancelled()
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, preset, progress()) * options.lr_scale
        rng = np.random.default_rng([options.seed, info.rank, step])
        x, y = make_batch([train_set.sample_window(rng, config.block_size + 1) for _ in range(preset.batch)],
                          device)
        loss = sequence_loss(net, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model, step)
        step += 1
        metrics = {"loss": loss.item(), "lr": opt.param_groups[0]["lr"], "progress": progress()}
        finished = distributed.any_rank(metrics["progress"] >= 1.0, info, device)  # all ranks stop together
        if info.is_main and (step % preset.eval_every == 0 or finished):
            metrics["val_nll"] = validation_nll(model, quick_val, device)[0]
            best_val = min(best_val, metrics["val_nll"])
            wall = wall_before + time.monotonic() - started
            log.append({"step": step, "wall_s": round(wall, 1), **{k: round(v, 5) for k, v in metrics.items()}})
            checkpoint()
        if on_progress and info.is_main:
            on_progress(step, steps, metrics)
        if finished:
            break
    if not info.is_main:
        return None
    return _finish(options, model, ema, config, val_seqs, device, log, wall_before + time.monotonic() - started,
                   step, train_set, val_set)


def _finish(
    options: TrainOptions, model: MusicTransformer, ema: EMA, config: MusicTransformerConfig,
    val_seqs: list[np.ndarray], device: str, log: list, wall: float, steps: int,
    train_set: MusicData, val_set: MusicData,
) -> Path:
    """Keep whichever of the raw and EMA weights scores better on the whole validation split, and save it."""
    raw_nll, count = validation_nll(model, val_seqs, device)
    ema_nll, _ = validation_nll(ema.module, val_seqs, device)
    use_ema = ema_nll <= raw_nll
    if use_ema:
        model.load_state_dict(ema.state_dict())
    from studio.core.paths import user_models_dir

    out = (options.out_dir or user_models_dir()) / f"{options.name}.safetensors"
    data_manifest = read_manifest(options.data)
    meta = {
        "name": options.name,
        "modality": "music",
        "family": "transformer",
        "categories": list(tokens.MODES),
        "vocab": tokens.VOCAB_VERSION,
        "licence": options.licence,
        "metrics": {"val_nll": round(min(raw_nll, ema_nll), 4), "val_tokens": count},
        "training": {
            "preset": options.preset,
            "steps": steps,
            "batch": PRESETS[options.preset].batch,
            "seed": options.seed,
            "device": device,
            "hardware": describe_device(device),
            "command": options.command,
            "commit": git_commit(),
            "init_from": str(options.init_from or ""),
            "wall_seconds": round(wall),
            "weights": "ema" if use_ema else "raw",
            "train_sequences": len(train_set),
            "val_sequences": len(val_set),
            "data": {k: data_manifest.get(k) for k in ("sources", "excluded", "split", "augmentation")},
            "log": log,
        },
    }
    path = save_model(model.cpu(), ARCH, config, out, meta, retry="resume")
    card = model_card({"arch": ARCH, "config": asdict(config), **meta}, data=data_manifest)
    write_atomic(path.with_suffix(".md"), card, f"the card of {options.name}")
    return path


def git_commit() -> str:
    """The source's commit (short hash), or "" outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, text=True,
                              capture_output=True, timeout=10, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
