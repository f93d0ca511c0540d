"""Training the music Transformer: presets, resumable checkpoints, EMA weights, torchrun/DDP-ready.

Run headless with ``studio train music --data DIR`` or under ``torchrun --nproc_per_node=N -m studio train music``
(each rank draws its own windows; rank 0 evaluates, checkpoints and writes the model). The checkpoint
(``runs/music/NAME/checkpoint.safetensors`` + ``.json`` in Studio's data folder) holds the weights, their EMA and the
AdamW state as tensors, so a run resumes where it stopped without pickles.

Written music-local because the generic helpers (``studio/ml/train/{ema,checkpoints,distributed}.py``) did not
exist when this was written; the three small pieces below are the equivalents.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from studio.core.errors import BadInputError
from studio.ml.checkpoint import save_model
from studio.ml.data.music import MusicData
from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
from studio.ml.music import tokens

ARCH = "music-transformer"
IGNORE = -100


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
    extra_meta: dict[str, Any] = field(default_factory=dict)


# -- music-local equivalents of the generic helpers -------------------------------------------------------------


class Ema:
    """Exponential moving average of a module's floating-point state (kept on the module's device)."""

    def __init__(self, module: nn.Module, decay: float = 0.995) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for key, value in module.state_dict().items():
            if key in self.shadow:
                self.shadow[key].lerp_(value, 1.0 - self.decay)

    def copy_to(self, module: nn.Module) -> None:
        module.load_state_dict({**module.state_dict(), **self.shadow})


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the torchrun process group when launched by torchrun; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def save_checkpoint(path: Path, model: nn.Module, ema: Ema, opt: torch.optim.Optimizer, state: dict) -> None:
    """Weights, EMA and AdamW moments as safetensors; step, RNG and options as JSON; both replaced atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in ema.shadow.items()}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                tensors[f"opt.{names[id(p)]}.{key}"] = torch.as_tensor(value)
    tensors = {k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    side = path.with_suffix(".json")
    side_tmp = side.with_suffix(".json.tmp")
    side_tmp.write_text(json.dumps(state, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    side_tmp.replace(side)


def load_checkpoint(path: Path, model: nn.Module, ema: Ema, opt: torch.optim.Optimizer) -> dict:
    state = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    tensors = load_file(str(path))
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for k in ema.shadow:
        ema.shadow[k] = tensors[f"ema.{k}"].to(device)
    params = dict(model.named_parameters())
    for key, value in tensors.items():
        if key.startswith("opt."):
            name, slot = key[4:].rsplit(".", 1)
            opt.state[params[name]][slot] = value.to(device) if slot != "step" else value
    return state


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
    options: TrainOptions, on_progress: ProgressFn | None = None, cancel: Callable[[], None] | None = None
) -> Path | None:
    """Train (or resume); returns the model file written by rank 0 (None on other ranks)."""
    if options.preset not in PRESETS:
        raise BadInputError(f"unknown preset {options.preset!r}: use {', '.join(PRESETS)}")
    preset = PRESETS[options.preset]
    steps = options.max_steps or preset.steps
    if options.threads:
        torch.set_num_threads(options.threads)
    dist = init_distributed(options.device)
    device = options.device if options.device != "cuda" or dist.world == 1 else f"cuda:{dist.rank}"
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
    ema = Ema(model)
    opt = torch.optim.AdamW(model.parameters(), lr=preset.lr, betas=(0.9, 0.95), weight_decay=0.05)
    run_dir = options.run_dir or Path(options.data) / "runs" / "music" / options.name
    ckpt = run_dir / "checkpoint.safetensors"
    rng = np.random.default_rng([options.seed, dist.rank])
    step, best_val, log = 0, math.inf, []
    wall_before = 0.0
    if options.resume:
        if not ckpt.exists():
            raise BadInputError(f"nothing to resume: {ckpt} does not exist")
        state = load_checkpoint(ckpt, model, ema, opt)
        step, best_val, log = state["step"], state["best_val"], state["log"]
        wall_before = state.get("wall_seconds", 0.0)
        rng.bit_generator.state = state["rng"][min(dist.rank, len(state["rng"]) - 1)]
    net: nn.Module = model
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(model)
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

    model.train()
    while progress() < 1.0 or step == 0:
        if cancel:
            cancel()
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, preset, progress())
        x, y = make_batch([train_set.sample_window(rng, config.block_size + 1) for _ in range(preset.batch)],
                          device)
        loss = sequence_loss(net, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        step += 1
        metrics = {"loss": loss.item(), "lr": opt.param_groups[0]["lr"]}
        metrics["progress"] = progress()
        finished = metrics["progress"] >= 1.0
        if dist.world > 1:  # every rank stops at the same step even when the budget is time
            flag = torch.tensor([float(finished)], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            finished = bool(flag.item())
        if dist.main and (step % preset.eval_every == 0 or finished):
            metrics["val_nll"] = validation_nll(model, quick_val, device)[0]
            best_val = min(best_val, metrics["val_nll"])
            wall = wall_before + time.monotonic() - started
            log.append({"step": step, "wall_s": round(wall, 1), **{k: round(v, 5) for k, v in metrics.items()}})
            save_checkpoint(ckpt, model, ema, opt, {
                "step": step, "steps": steps, "best_val": best_val, "log": log, "wall_seconds": wall,
                "rng": [rng.bit_generator.state], "preset": options.preset, "config": asdict(config),
            })
        if on_progress and dist.main:
            on_progress(step, steps, metrics)
        if finished:
            break
    if not dist.main:
        return None
    return _finish(options, model, ema, config, val_seqs, device, log, wall_before + time.monotonic() - started,
                   step, train_set, val_set)


def _finish(
    options: TrainOptions, model: MusicTransformer, ema: Ema, config: MusicTransformerConfig,
    val_seqs: list[np.ndarray], device: str, log: list, wall: float, steps: int,
    train_set: MusicData, val_set: MusicData,
) -> Path:
    """Keep whichever of the raw and EMA weights scores better on the whole validation split, and save it."""
    raw_nll, count = validation_nll(model, val_seqs, device)
    raw_state = {k: v.clone() for k, v in model.state_dict().items()}
    ema.copy_to(model)
    ema_nll, _ = validation_nll(model, val_seqs, device)
    use_ema = ema_nll <= raw_nll
    if not use_ema:
        model.load_state_dict(raw_state)
    from studio.core.paths import user_models_dir

    out = (options.out_dir or user_models_dir()) / f"{options.name}.safetensors"
    manifest_path = Path(options.data) / "manifest.json"
    data_manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    meta = {
        "name": options.name,
        "modality": "music",
        "family": "transformer",
        "categories": list(tokens.MODES),
        "vocab": tokens.VOCAB_VERSION,
        "metrics": {"val_nll": round(min(raw_nll, ema_nll), 4), "val_tokens": count},
        "training": {
            "preset": options.preset,
            "steps": steps,
            "batch": PRESETS[options.preset].batch,
            "seed": options.seed,
            "device": device,
            "wall_seconds": round(wall),
            "weights": "ema" if use_ema else "raw",
            "train_sequences": len(train_set),
            "val_sequences": len(val_set),
            "data": {k: data_manifest.get(k) for k in ("sources", "excluded", "split", "augmentation")},
            "log": log,
        },
        **options.extra_meta,
    }
    return save_model(model.cpu(), ARCH, config, out, meta)
