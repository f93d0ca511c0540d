"""Tasks behind the Train workspace: what a data folder holds and an augmentation preview (estimates: estimate.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.formats.png_meta import save_png
from studio.core.jobs import JobSpec
from studio.ml.tasks import task


def data_path(spec: JobSpec) -> Path:
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


def inspect_sprites(path: Path, grid: int) -> dict[str, Any]:
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
    from studio.ml.data.music import read_user_tunes

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    records, rejected = read_user_tunes(files)
    tunes = len(records)
    if not tunes:
        raise BadInputError(f"no usable tunes in {path.name} ({len(rejected)} file(s) rejected)")
    return {"usable": tunes, "counts": {"tunes": tunes}, "rejected": rejected}


@task("data.inspect")
def inspect_data(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    path = data_path(spec)
    modality = spec.params.get("modality", "sprite")
    ctx.progress(0.1, f"reading {path.name}…")
    if modality == "sprite":
        return inspect_sprites(path, int(spec.params.get("grid", 0) or 0))
    if modality == "copy":
        return _inspect_copy(path)
    if modality == "music":
        return _inspect_music(path)
    raise BadInputError(f"unknown modality {modality!r}")


@task("data.augment_preview")
def augment_preview_task(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    from studio.ml.data.augment import augment_preview

    result = import_sprites(data_path(spec), int(spec.params.get("grid", 0) or 0))
    images, labels = result.arrays()
    grid = augment_preview(images, labels, result.categories, seed=spec.seed, per_category=1)
    out = paths.cache_dir() / "previews" / f"augment-{spec.job_id}.png"
    save_png(out, grid, None, write_metadata=False)
    return {"path": str(out)}
