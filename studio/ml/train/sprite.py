"""Training the sprite models (GAN, VAE, diffusion): one reusable loop for the CLI, the app and ``torchrun``.

``train_sprite(config, on_event, cancel)`` reports ``{"step", "total", "loss", "eta_s", "sample_grid"}`` dicts,
writes into its run folder a checkpoint every N steps (safetensors, no pickle), an 8x8 sample grid PNG every N steps
and finally the EMA model, and resumes from the newest checkpoint of the folder: the per-step random generator is
seeded from (seed, step, rank), so a resumed run repeats the same batches and noise and the same loss curve.
"""

from __future__ import annotations

import collections
import contextlib
import json
import multiprocessing
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from studio.core import paths
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.errors import BadInputError, StudioError
from studio.core.formats.json_file import expect_object, read_json
from studio.core.formats.png_meta import save_png
from studio.core.safe_write import write_atomic
from studio.core.sprite_tags import TagVocabulary
from studio.ml import registry
from studio.ml.checkpoint import config_from_dict, read_sidecar, save_model, write_with_sidecar
from studio.ml.data.augment import augment_batch
from studio.ml.data.sprites import load_sprite_dataset
from studio.ml.device import describe_device, resolve_device
from studio.ml.models.sprite_common import sample_grid, tensor_to_images, uint8_to_float
from studio.ml.sampling.sprites import generate, seeded_generators
from studio.ml.train import distributed
from studio.ml.train.checkpoints import (
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from studio.ml.train.ema import EMA
from studio.ml.train.sprite_objectives import OBJECTIVES, Hyper, Objective
from studio.ml.train.warm_start import BaseModel, closest_base_categories, load_base_weights, read_base_model

ARCHS = {"gan": "sprite-gan", "vae": "sprite-vae", "diffusion": "sprite-diffusion"}
DATA_KEYS = ("name", "source", "categories", "counts", "sha256", "recipe")  # from the data set's manifest
GRID_SIZE = 64  # an 8x8 grid, one category per row
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Fine-tuning starts from learnt weights: half the preset's learning rate moves them without wiping them out.
FINE_TUNE_LR_SCALE = 0.5

EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Preset:
    steps: int
    batch_size: int
    hyper: Hyper
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the architecture's config defaults
    ema_decay: float = 0.999
    sample_every: int = 500
    checkpoint_every: int = 500
    sample_steps: int = 10  # diffusion sampling steps for the grids


PRESETS: dict[str, dict[str, Preset]] = {
    "gan": {
        "quick": Preset(600, 16, Hyper(lr=2e-4), {"g_width": 32, "d_width": 16}, 0.99, 200, 200),
        "balanced": Preset(3000, 16, Hyper(lr=2e-4), {}),
        "best": Preset(30000, 64, Hyper(lr=2e-4), {"g_width": 96, "d_width": 48}, 0.9995, 2000, 2000),
        # A GPU's minutes: a wider pair, bigger batches, differentiable augmentation for the small data set.
        "gpu": Preset(40000, 128, Hyper(lr=2e-4, diff_augment=True), {"g_width": 96, "d_width": 48}, 0.999, 2000,
                      2000),
    },
    "vae": {
        "quick": Preset(600, 32, Hyper(lr=1e-3, warmup_steps=50), {"width": 16}, 0.99, 200, 200),
        "balanced": Preset(4000, 64, Hyper(lr=1e-3, warmup_steps=100), {}),
        "best": Preset(30000, 64, Hyper(lr=5e-4, warmup_steps=500), {"width": 48}, 0.9995, 2000, 2000),
        "gpu": Preset(40000, 256, Hyper(lr=1e-3, warmup_steps=500), {"width": 48}, 0.999, 2000, 2000),
    },
    "diffusion": {
        "quick": Preset(600, 32, Hyper(lr=1e-3, warmup_steps=50), {"width": 32}, 0.99, 200, 200),
        "balanced": Preset(3000, 32, Hyper(lr=5e-4, warmup_steps=100), {}),
        "best": Preset(40000, 64, Hyper(lr=2e-4, warmup_steps=1000), {}, 0.9995, 2000, 2000, 20),
        "gpu": Preset(40000, 256, Hyper(lr=4e-4, warmup_steps=1000), {"width": 64, "blocks": 2, "attention_8": True},
                      0.999, 2000, 2000),
    },
}


@dataclass
class SpriteTrainConfig:
    """What to train; ``None`` fields take the preset's value."""

    family: str  # "gan" | "vae" | "diffusion"
    data: Path  # a folder made by `studio data sprites` (train.npz, val.npz, manifest.json)
    run_dir: Path | None = None  # default: <data dir>/runs/<name or sprite-family>
    preset: str = "balanced"
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    name: str | None = None  # also register the result as a user model under this name
    device: str = "auto"
    sample_every: int | None = None
    checkpoint_every: int | None = None
    keep_checkpoints: int = 3
    augment: bool = True  # flips, shifts and colour jitter per category (studio.ml.data.augment)
    resume: bool = False  # continue from the newest checkpoint of run_dir (else a run_dir with one is refused)
    model: dict[str, Any] = field(default_factory=dict)  # architecture config overrides
    init_from: Path | None = None  # fine-tune: start from this trained model's weights (see warm_start)
    threads: int = 0  # CPU threads for torch; 0 = leave torch's default
    command: str = ""  # the command line, recorded in the model's sidecar
    max_minutes: float | None = None  # stop (and save the model) after this much training time
    workers: int = 0  # processes preparing augmented batches ahead of the loop (0: in the loop itself)


@dataclass
class TrainResult:
    model_path: Path
    registered_path: Path | None
    steps: int
    wall_s: float
    metrics: dict[str, float]


@dataclass
class _Data:
    """Training sprites stay in host memory as uint8 (augmented per batch); validation sprites go to the device."""

    train_images: np.ndarray  # (N, 32, 32, 4) uint8
    train_labels: np.ndarray  # (N,) int64
    val_images: torch.Tensor  # (M, 4, 32, 32) uint8
    val_labels: torch.Tensor  # (M,) int64
    categories: list[str]
    manifest: dict[str, Any]
    train_tags: np.ndarray  # (N, T) uint8, T = 0 for a data set without names
    val_tags: torch.Tensor  # (M, T) float
    vocabulary: TagVocabulary

    def tags_for(self, index: np.ndarray, device: str) -> torch.Tensor | None:
        if not len(self.vocabulary):
            return None
        return torch.from_numpy(self.train_tags[index].astype(np.float32)).to(device)


def load_data(folder: Path, device: str) -> _Data:
    dataset = load_sprite_dataset(folder)
    if len(dataset.train_labels) == 0:
        raise BadInputError(f"{folder}: the training set is empty")
    val = torch.from_numpy(np.ascontiguousarray(dataset.val_images)).permute(0, 3, 1, 2).contiguous()
    return _Data(
        dataset.train_images, dataset.train_labels, val.to(device), torch.from_numpy(dataset.val_labels).to(device),
        dataset.categories, dataset.manifest, dataset.train_tags,
        torch.from_numpy(dataset.val_tags.astype(np.float32)).to(device), dataset.vocabulary,
    )


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of one step on one rank: a pure function of (seed, step, rank), hence exact resumes."""
    return ((seed * 1_000_003 + step) * 1009 + rank) % 2**63


def _host_batch(data: _Data, size: int, seed: int, augment: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random sprites (drawn with replacement), augmented per their category's policy: (images, labels, indices)."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(data.train_labels), size)
    images, labels = data.train_images[index], data.train_labels[index]
    if augment:
        images = augment_batch(images, labels, data.categories, rng)
    return np.ascontiguousarray(images), labels, index


def _to_device(
    data: _Data, host: tuple[np.ndarray, np.ndarray, np.ndarray], device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    images, labels, index = host
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).to(device)
    return uint8_to_float(batch), torch.from_numpy(labels).to(device), data.tags_for(index, device)


_WORKER_DATA: _Data | None = None  # a prefetch worker's copy of the data (set once per worker process)
PREFETCH_PER_WORKER = 4


def _worker_init(data: _Data) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data


def _worker_batch(job: tuple[int, int, bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size, seed, augment = job
    assert _WORKER_DATA is not None
    return _host_batch(_WORKER_DATA, size, seed, augment)


@contextlib.contextmanager
def batches(
    data: _Data, plan: _Plan, start: int, size: int, rank: int, workers: int
) -> Iterator[Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The host batches of steps ``start``.. in order; ``workers`` > 0 prepares them in that many processes, at
    most :data:`PREFETCH_PER_WORKER` per worker ahead of the loop (augmentation is per-sprite Python work that would
    otherwise leave a GPU waiting; an unbounded queue would fill the memory). Each batch is a pure function of its
    step's seed, so the batches are the same with or without workers."""
    jobs = ((size, step_seed(plan.seed, step, rank), plan.augment) for step in range(start, plan.steps))
    if workers <= 0:
        yield (_host_batch(data, *job) for job in jobs)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(workers, initializer=_worker_init, initargs=(_host_only(data),)) as pool:
        yield _bounded(pool, jobs, workers * PREFETCH_PER_WORKER)


def _host_only(data: _Data) -> _Data:
    """The data without its device tensors: worker processes never touch the GPU."""
    return replace(data, val_images=torch.empty(0), val_labels=torch.empty(0), val_tags=torch.empty(0))


def _bounded(pool: Any, jobs: Iterator[tuple[int, int, bool]], ahead: int) -> Iterator[Any]:
    pending: collections.deque = collections.deque()
    for job in jobs:
        pending.append(pool.apply_async(_worker_batch, (job,)))
        if len(pending) >= ahead:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _git_commit() -> str:
    """The source tree's commit; ``STUDIO_COMMIT`` names it for a copy whose git history is absent or stale (the
    GPU machine's copy carried the session's first commit)."""
    if os.environ.get("STUDIO_COMMIT"):
        return os.environ["STUDIO_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=paths.repo_root(), capture_output=True, text=True,
            timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _hardware(device: str, world_size: int) -> str:
    cpu = platform.processor() or platform.machine()
    return f"{describe_device(device.split(':')[0])}; {cpu}; world size {world_size}"


@dataclass
class _Plan:
    """Everything that fixes the run; stored as run.json so that a resume can be checked against it."""

    family: str
    arch: str
    preset: str
    steps: int
    batch_size: int
    seed: int
    hyper: dict[str, Any]
    model: dict[str, Any]
    ema_decay: float
    sample_every: int
    checkpoint_every: int
    sample_steps: int
    augment: bool
    categories: list[str]
    init_from: dict[str, Any] | None = None  # the base model's path, sha256, arch and categories
    tags: list[str] = field(default_factory=list)  # the vocabulary the model is conditioned on


def make_plan(
    config: SpriteTrainConfig, categories: list[str], base: BaseModel | None = None, tags: list[str] | None = None
) -> _Plan:
    if config.family not in PRESETS:
        raise BadInputError(f"unknown sprite model family {config.family!r}: use gan, vae or diffusion")
    presets = PRESETS[config.family]
    if config.preset not in presets:
        raise BadInputError(f"unknown preset {config.preset!r}: use {', '.join(presets)}")
    preset = presets[config.preset]
    arch = registry.get(ARCHS[config.family])
    if base is not None and config.model:
        raise BadInputError(f"{base.path.name} fixes the model's size: --set cannot change a model you fine-tune")
    # A fine-tuned model keeps its base's size, whatever the preset would build from scratch.
    sizes = {**base.config} if base is not None else {**preset.model, **config.model}
    try:
        model_config = config_from_dict(
            arch.config_cls, {**sizes, "num_classes": len(categories), "num_tags": len(tags or [])}
        )
    except (TypeError, StudioError) as exc:
        raise BadInputError(f"model settings do not fit {arch.name}: {exc}") from None
    hyper = preset.hyper if base is None else replace(preset.hyper, lr=preset.hyper.lr * FINE_TUNE_LR_SCALE)
    hyper = hyper if config.lr is None else replace(hyper, lr=config.lr)
    steps = config.max_steps if config.max_steps is not None else preset.steps
    batch = config.batch_size or preset.batch_size
    if steps < 1 or batch < 1:
        raise BadInputError("the number of steps and the batch size must be at least 1")
    return _Plan(
        family=config.family,
        arch=arch.name,
        preset=config.preset,
        steps=steps,
        batch_size=batch,
        seed=config.seed,
        hyper=asdict(hyper),
        model=asdict(model_config),
        ema_decay=preset.ema_decay,
        sample_every=config.sample_every or preset.sample_every,
        checkpoint_every=config.checkpoint_every or preset.checkpoint_every,
        sample_steps=preset.sample_steps,
        augment=config.augment,
        categories=categories,
        init_from=base.describe() if base is not None else None,
        tags=list(tags or []),
    )


def _check_resume(run_dir: Path, plan: _Plan) -> None:
    """A run folder belongs to one recipe; only the number of steps may change (to train longer)."""
    path = run_dir / "run.json"
    if not path.exists():
        return
    try:
        stored = expect_object(read_json(path), path.name)
    except BadInputError as exc:
        raise BadInputError(f"{run_dir}: the run record is damaged ({exc}); delete {path.name} to resume with "
                            "the settings given now") from None
    stored.setdefault("tags", [])  # runs from before tags had none
    mine = {k: v for k, v in asdict(plan).items() if k != "steps"}
    theirs = {k: v for k, v in stored.items() if k != "steps"}
    changed = sorted(k for k in mine if json.dumps(mine[k]) != json.dumps(theirs.get(k)))
    if changed and latest_checkpoint(run_dir / "checkpoints") is not None:
        raise BadInputError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}): pick another run folder "
            "or keep the settings to resume it"
        )


def _export_model(objective: Objective, ema: EMA, arch: registry.Architecture, config: Any) -> nn.Module:
    """A fresh copy of the model carrying the EMA weights where the EMA applies."""
    state = objective.model.state_dict()
    state.update({objective.ema_prefix + k: v for k, v in ema.state_dict().items()})
    module = arch.build(config)
    module.load_state_dict(state)
    return module.to(next(objective.model.parameters()).device).eval()


def _grid(model: nn.Module, plan: _Plan) -> np.ndarray:
    rows = GRID_SIZE // 8
    labels = torch.tensor([(i // 8) % len(plan.categories) for i in range(rows * 8)])
    images = generate(model, labels, seeded_generators(plan.seed, len(labels)), steps=plan.sample_steps)
    return sample_grid(tensor_to_images(images), columns=8)


def _validate(objective: Objective, model: nn.Module, data: _Data, plan: _Plan) -> dict[str, float]:
    """Validation losses of ``model`` (the exported, EMA-weighted model) on up to 512 held-out sprites."""
    count = min(len(data.val_labels), 512)
    if count == 0:
        return {}
    gen = torch.Generator().manual_seed(plan.seed)
    totals: dict[str, float] = {}
    for start in range(0, count, plan.batch_size):
        stop = min(count, start + plan.batch_size)
        x = uint8_to_float(data.val_images[start:stop])
        tags = data.val_tags[start:stop] if len(data.vocabulary) else None
        for key, value in objective.validate(model, x, data.val_labels[start:stop], gen, tags).items():
            totals[key] = totals.get(key, 0.0) + value * (stop - start)
    return {f"val_{k}": v / count for k, v in totals.items()}


def _measure(objective: Objective, model: nn.Module, data: _Data, plan: _Plan, smooth: dict) -> dict[str, float]:
    return {**{f"train_{k}": v for k, v in smooth.items()}, **_validate(objective, model, data, plan)}


def _register(source: Path, name: str) -> Path:
    """Copy the finished model into the user's model folder under ``name``."""
    target = paths.user_models_dir() / f"{name}.safetensors"
    meta = {**read_sidecar(source), "name": name}
    return write_with_sidecar(target, load_file(str(source)), meta, f"the model {name}", retry="resume")


def train_sprite(
    config: SpriteTrainConfig, on_event: EventCallback, cancel: CancelToken | None = None
) -> TrainResult:
    """Train (or resume) a sprite model; see the module docstring. Cancelling saves a checkpoint first."""
    cancel = cancel or CancelToken()
    if config.name is not None and not _NAME.fullmatch(config.name):
        raise BadInputError(f"model name {config.name!r}: use letters, digits, '.', '_' or '-' (up to 64)")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    info, device = distributed.setup(resolve_device(config.device))
    if device.startswith("cuda"):  # small convolutions: let cuDNN pick kernels, TF32 for the products
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        return _train(config, on_event, cancel, info, device)
    finally:
        distributed.teardown(info)


def _train(
    config: SpriteTrainConfig,
    on_event: EventCallback,
    cancel: CancelToken,
    info: distributed.DistInfo,
    device: str,
) -> TrainResult:
    commit = _git_commit()  # the code this run starts with (a long run can outlive several commits)
    data = load_data(config.data, device)
    base = read_base_model(config.init_from, ARCHS[config.family]) if config.init_from else None
    plan = make_plan(config, data.categories, base, list(data.vocabulary.words))
    run_dir = Path(config.run_dir or paths.data_dir() / "runs" / (config.name or f"sprite-{config.family}"))
    ckpt_dir = run_dir / "checkpoints"
    _check_resume(run_dir, plan)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / "run.json", json.dumps(asdict(plan), indent=2), "the run record")

    arch = registry.get(plan.arch)
    model_config = config_from_dict(arch.config_cls, plan.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(plan.seed)  # initial weights; the global generator is restored afterwards
        model = arch.build(model_config)
    model.to(device).train()

    latest = latest_checkpoint(ckpt_dir)
    if latest and not config.resume:
        raise BadInputError(
            f"{run_dir} already holds a run (checkpoint {latest.stem}): resume it (--resume) or pick another folder"
        )
    checkpoint = load_checkpoint(latest, device) if latest else None
    if checkpoint:
        model.load_state_dict(checkpoint.groups["model"])
    elif base is not None:
        closest = closest_base_categories(data.train_images, data.train_labels, data.categories, base, device)
        origin = load_base_weights(model, base, data.categories, closest, plan.tags)
        if info.is_main:
            starts = ", ".join(f"{c} from {o}" if o != "mean" else f"{c} new" for c, o in origin.items())
            on_event({"event": "info", "message": f"fine-tuning {base.path.stem} ({starts})"})
    objective = OBJECTIVES[plan.family](
        model, Hyper(**plan.hyper), lambda m: distributed.wrap(m, info, device)
    )
    ema = EMA(objective.ema_target(), plan.ema_decay)
    start, wall_before, smooth = 0, 0.0, {}
    if checkpoint:
        ema.load_state_dict(checkpoint.groups["ema"])
        for name, optimizer in objective.optimizers.items():
            optimizer.load_state_dict(checkpoint.optimizers[name])
        start = checkpoint.step
        wall_before = float(checkpoint.extra.get("wall_s", 0.0))
        smooth = dict(checkpoint.extra.get("smooth", {}))

    def checkpoint_now(step: int, wall: float) -> None:
        if info.is_main:
            state = Checkpoint(
                step,
                {"model": model.state_dict(), "ema": ema.state_dict()},
                {n: o.state_dict() for n, o in objective.optimizers.items()},
                {"wall_s": wall, "smooth": smooth},
            )
            save_checkpoint(ckpt_dir, state)
            prune_checkpoints(ckpt_dir, config.keep_checkpoints)

    per_rank = max(1, plan.batch_size // info.world_size)
    began = time.monotonic()
    deadline = began + 60.0 * config.max_minutes if config.max_minutes else None
    last = plan.steps
    metrics: dict[str, float] = {}
    with batches(data, plan, start, per_rank, info.rank, config.workers) as host_batches:
        for step, host in zip(range(start, plan.steps), host_batches, strict=False):
            if distributed.any_rank(cancel.cancelled, info, device):
                checkpoint_now(step, wall_before + time.monotonic() - began)
                raise JobCancelled()
            if deadline is not None and distributed.any_rank(time.monotonic() > deadline, info, device):
                last = step  # out of time: this step becomes the last one (the model is measured and saved)
                break
            seed = step_seed(plan.seed, step, info.rank)
            gen = torch.Generator().manual_seed(seed)
            x, labels, tags = _to_device(data, host, device)
            objective.set_step(step)
            losses = objective.train_step(x, labels, gen, tags)
            ema.update(objective.ema_target(), step)
            losses = distributed.mean_across_ranks(losses, info, device)
            if not all(np.isfinite(v) for v in losses.values()):
                raise StudioError(
                    f"training diverged at step {step + 1} (loss {losses}); try a lower learning rate (--lr)"
                )
            smooth = {k: v if k not in smooth else 0.98 * smooth[k] + 0.02 * v for k, v in losses.items()}
            done = step + 1
            grid = None
            if info.is_main and (done % plan.sample_every == 0 or done == plan.steps):
                exported = _export_model(objective, ema, arch, model_config)
                grid = _grid(exported, plan)
                save_png(run_dir / "samples" / f"step-{done:08d}.png", grid, None, write_metadata=False)
                metrics = _measure(objective, exported, data, plan, smooth)
                losses = {**losses, **{k: v for k, v in metrics.items() if k.startswith("val_")}}
            wall = wall_before + time.monotonic() - began
            if done % plan.checkpoint_every == 0 or done == plan.steps:
                checkpoint_now(done, wall)
            if info.is_main:
                rate = (time.monotonic() - began) / (done - start)
                on_event(
                    {"step": done, "total": plan.steps, "loss": losses, "eta_s": rate * (plan.steps - done),
                     "sample_grid": grid}
                )

    distributed.barrier(info)
    wall = wall_before + time.monotonic() - began
    if last < plan.steps:
        plan = replace(plan, steps=last)
        checkpoint_now(last, wall)
        metrics = {}
    model_path = run_dir / "model.safetensors"
    registered = None
    if info.is_main:
        exported = _export_model(objective, ema, arch, model_config)
        if not metrics:  # resumed at or past the last step, or stopped by the clock: nothing measured yet
            metrics = _measure(objective, exported, data, plan, smooth)
            save_png(run_dir / "samples" / f"step-{last:08d}.png", _grid(exported, plan), None, write_metadata=False)
        meta = _model_meta(config, plan, data, metrics, wall, _hardware(device, info.world_size), commit)
        save_model(exported, arch.name, model_config, model_path, meta, retry="resume")
        if config.name:
            registered = _register(model_path, config.name)
    return TrainResult(model_path, registered, plan.steps, wall, metrics)


def _model_meta(
    config: SpriteTrainConfig, plan: _Plan, data: _Data, metrics: dict[str, float], wall: float, hardware: str,
    commit: str,
) -> dict[str, Any]:
    """The sidecar of the finished model: what it is, what it learnt from, and how it was trained."""
    return {
        "name": config.name or plan.arch,
        "modality": "sprite",
        "family": plan.family,
        "categories": plan.categories,
        **({"tags": data.vocabulary.to_dict()} if plan.tags else {}),
        "metrics": metrics,
        "training": {
            "command": config.command,
            "data": {"folder": str(config.data), **{k: data.manifest[k] for k in DATA_KEYS if k in data.manifest}},
            "commit": commit,
            "hardware": hardware,
            "wall_time_s": round(wall, 1),
            "steps": plan.steps,
            "batch_size": plan.batch_size,
            "preset": plan.preset,
            "seed": plan.seed,
            "augment": plan.augment,
            "hyper": plan.hyper,
            "ema_decay": plan.ema_decay,
            **({"init_from": plan.init_from} if plan.init_from else {}),
        },
    }
