"""Tasks behind the Train workspace: what a data folder holds, an augmentation preview, a time/memory estimate."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.formats.png_meta import save_png
from studio.core.jobs import JobSpec
from studio.ml.tasks import task

MUSIC_SUFFIXES = (".mid", ".midi", ".abc")
ESTIMATE_STEPS = 3


def _data_path(spec: JobSpec) -> Path:
    raw = str(spec.params.get("path", "")).strip()
    if not raw:
        raise BadInputError("choose a data folder or file first")
    path = Path(raw).expanduser()
    if not path.exists():
        raise BadInputError(f"{path} does not exist")
    return path


def import_sprites(path: Path, grid: int) -> Any:
    """The user's sprites as an ImportResult: a sheet (with a grid), a folder of PNGs, or a built data set."""
    from studio.ml.data.sprite_import import ImportResult, import_folder, import_sheet
    from studio.ml.data.sprites import load_sprite_dataset

    if path.is_file():
        if not grid:
            raise BadInputError(f"{path.name} is a single image: set the sheet grid size to slice it into sprites")
        return import_sheet(path, grid)
    if (path / "manifest.json").exists() and (path / "train.npz").exists():
        dataset = load_sprite_dataset(path)
        result = ImportResult(categories=list(dataset.categories))
        result.images = list(dataset.train_images)
        result.labels = [int(v) for v in dataset.train_labels]
        return result
    return import_folder(path)


def _inspect_sprites(path: Path, grid: int) -> dict[str, Any]:
    result = import_sprites(path, grid)
    counts = Counter(result.categories[i] for i in result.labels)
    return {"usable": len(result.images), "counts": dict(counts), "rejected": result.rejected}


def _inspect_copy(path: Path) -> dict[str, Any]:
    from studio.ml.data.copy_text import read_training_lines

    text = read_training_lines(path)
    rejected = []
    if text.skipped:
        rejected.append({"file": path.name, "reason": f"{text.skipped} empty, duplicate or over-long line(s) skipped"})
    if text.sampled:
        rejected.append({"file": path.name, "reason": f"large file: {len(text.lines)} of {text.total} lines sampled"})
    return {"usable": len(text.lines), "counts": {"examples": len(text.lines)}, "rejected": rejected}


def _inspect_music(path: Path) -> dict[str, Any]:
    from studio.ml.data.music import read_user_records

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    tunes, rejected = 0, []
    for file in files:
        if file.suffix.lower() not in MUSIC_SUFFIXES:
            rejected.append({"file": file.name, "reason": "not a MIDI or ABC file"})
            continue
        try:
            records = read_user_records(file)
        except BadInputError as exc:
            rejected.append({"file": file.name, "reason": str(exc)})
            continue
        if not records:
            rejected.append({"file": file.name, "reason": "no notes in a supported meter"})
        tunes += len(records)
    if not tunes:
        raise BadInputError(f"no usable tunes in {path.name} ({len(rejected)} file(s) rejected)")
    return {"usable": tunes, "counts": {"tunes": tunes}, "rejected": rejected}


@task("data.inspect")
def inspect_data(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    path = _data_path(spec)
    modality = spec.params.get("modality", "sprite")
    ctx.progress(0.1, f"reading {path.name}…")
    if modality == "sprite":
        return _inspect_sprites(path, int(spec.params.get("grid", 0) or 0))
    if modality == "copy":
        return _inspect_copy(path)
    if modality == "music":
        return _inspect_music(path)
    raise BadInputError(f"unknown modality {modality!r}")


@task("data.augment_preview")
def augment_preview_task(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    from studio.ml.data.augment import augment_preview

    result = import_sprites(_data_path(spec), int(spec.params.get("grid", 0) or 0))
    images, labels = result.arrays()
    grid = augment_preview(images, labels, result.categories, seed=spec.seed, per_category=1)
    out = paths.cache_dir() / "previews" / f"augment-{spec.job_id}.png"
    save_png(out, grid, None, write_metadata=False)
    return {"path": str(out)}


def _sprite_step_seconds(family: str, preset: str, categories: int, device: str) -> tuple[float, int, float]:
    """(seconds per training step, steps, estimated MB) measured with the preset's real model and batch."""
    import torch

    from studio.ml import registry
    from studio.ml.checkpoint import config_from_dict
    from studio.ml.train.sprite import ARCHS, SpriteTrainConfig, make_plan
    from studio.ml.train.sprite_objectives import OBJECTIVES, Hyper

    plan = make_plan(SpriteTrainConfig(family=family, data=Path("."), preset=preset), [f"c{i}" for i in
                                                                                       range(categories)])
    arch = registry.get(ARCHS[family])
    model = arch.build(config_from_dict(arch.config_cls, plan.model)).to(device).train()
    objective = OBJECTIVES[family](model, Hyper(**plan.hyper), lambda m: m)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(plan.batch_size, 4, 32, 32, generator=gen, device=device) * 2 - 1
    labels = torch.randint(0, categories, (plan.batch_size,), generator=gen, device=device)
    objective.train_step(x, labels, gen)  # warm-up
    start = time.perf_counter()
    for _ in range(ESTIMATE_STEPS):
        objective.train_step(x, labels, gen)
    seconds = (time.perf_counter() - start) / ESTIMATE_STEPS
    params = sum(p.numel() for p in model.parameters())
    activations = plan.batch_size * 4 * 32 * 32 * 4 * 64  # a generous bound for these small conv nets
    memory_mb = (params * 4 * 4 + activations) / 2**20  # weights, gradients, two Adam moments
    return seconds, plan.steps, memory_mb


@task("train.estimate")
def estimate_training(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    """Time and memory for a preset on this machine, from a few real training steps."""
    modality = spec.params.get("modality", "sprite")
    preset = str(spec.params.get("preset", "quick"))
    if modality != "sprite":
        raise BadInputError("estimates are measured for sprite training; copy and music show progress and ETA live")
    family = str(spec.params.get("family", "gan"))
    categories = 1
    if spec.params.get("path"):
        try:
            categories = max(1, len(_inspect_sprites(_data_path(spec), int(spec.params.get("grid", 0) or 0))["counts"]))
        except BadInputError:
            categories = 1
    ctx.progress(0.2, "timing a few training steps…")
    seconds, steps, memory_mb = _sprite_step_seconds(family, preset, categories, ctx.device)
    return {"seconds": float(seconds * steps), "steps": steps, "memory_mb": float(memory_mb),
            "device": ctx.device, "step_ms": float(seconds * 1e3)}
