"""The sprite modality's preflight: reading the user's sprites, an augmentation preview, the estimate of a
preset, and the sprite fields of a model list (see :mod:`studio.core.modalities.sprite`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch

from studio.core import paths
from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.formats.png_meta import save_png
from studio.core.jobs import JobSpec
from studio.ml import registry
from studio.ml.checkpoint import config_from_dict
from studio.ml.data.augment import augment_preview, tile_categories
from studio.ml.data.prepare import is_dataset
from studio.ml.data.sprite_import import ImportResult, import_folder, import_sheet
from studio.ml.data.sprites import load_sprite_dataset
from studio.ml.train.preflight import MB, Estimate, data_path, estimate_result, timed_steps
from studio.ml.train.sprite import ARCHS, SpriteTrainConfig, make_plan
from studio.ml.train.sprite_objectives import OBJECTIVES, Hyper
from studio.ml.train.warm_start import read_base_model


def import_sprites(path: Path, grid: int) -> ImportResult:
    """The user's sprites: a sheet (with a grid), a folder of PNGs, or a built data set."""
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


def inspect(path: Path, grid: int) -> dict[str, Any]:
    result = import_sprites(path, grid)
    counts = Counter(result.categories[i] for i in result.labels)
    return {"usable": len(result.images), "counts": dict(counts), "rejected": result.rejected}


def preview(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    result = import_sprites(data_path(spec), int(spec.params.get("grid", 0) or 0))
    images, labels = result.arrays()
    grid = augment_preview(images, labels, result.categories, seed=spec.seed, per_category=1)
    out = paths.cache_dir() / "previews" / f"augment-{spec.job_id}.png"
    save_png(out, grid, None, write_metadata=False)
    return {"path": str(out)}


def describe(meta: dict[str, Any]) -> dict[str, Any]:
    """A sprite model's list fields beyond the common ones: which of its categories tile."""
    return {"tile_categories": sorted(tile_categories() & set(meta.get("categories", [])))}


def estimate(spec: JobSpec, ctx: JobContext, preset: str, max_steps: int) -> Estimate:
    family = str(spec.params.get("family") or "gan")
    categories, users_data = 1, False
    if spec.params.get("path"):
        users_data = not is_dataset(Path(str(spec.params["path"])).expanduser())
        try:
            found = inspect(data_path(spec), int(spec.params.get("grid", 0) or 0))
            categories = max(1, len(found["counts"]))
        except BadInputError:
            categories = 1
    name = spec.params.get("base", ARCHS[family] if users_data else "")
    base = read_base_model(ctx.resources.store.verified_weights(str(name)), ARCHS[family]) if name else None
    config = SpriteTrainConfig(family=family, data=Path("."), preset=preset, max_steps=max_steps or None)
    plan = make_plan(config, [f"c{i}" for i in range(categories)], base)
    arch = registry.get(ARCHS[family])
    device = ctx.device
    model = arch.build(config_from_dict(arch.config_cls, plan.model)).to(device).train()
    objective = OBJECTIVES[family](model, Hyper(**plan.hyper), lambda m: m)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(plan.batch_size, 4, 32, 32, generator=gen, device=device) * 2 - 1
    labels = torch.randint(0, categories, (plan.batch_size,), generator=gen, device=device)
    step_s, peak = timed_steps(lambda: objective.train_step(x, labels, gen), device)
    params = sum(p.numel() for p in model.parameters())
    activations = plan.batch_size * 4 * 32 * 32 * 4 * 64  # a generous bound for these small conv nets
    memory = peak if peak is not None else (params * 4 * 4 + activations) / MB  # weights, grads, two Adam moments
    start = f"fine-tuning {name}" if base is not None else f"a new {family}"
    detail = f"{start}, {plan.batch_size} a batch"
    return estimate_result(step_s * plan.steps, step_s, plan.steps, memory, device, detail)
