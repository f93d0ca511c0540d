"""The sprite data-set format every sprite model trains on, and the build from Dungeon Crawl's tiles.

A data set is a folder with

- ``train.npz`` and ``val.npz``: ``images`` (N, 32, 32, 4) uint8 RGBA and ``labels`` (N,) int64;
- ``manifest.json``: ``{"name", "source", "licence", "categories": [names in label order],
  "counts": {"train": {category: n}, "val": {...}}, "sha256": {file: hash},
  "recipe": {"command", "seed", "val_fraction", "grid", "near_copy_l1"}, "rejected": [{"file", "reason", "count"}]}``
  (imports add ``"notes"``: conversions made on the way, such as a colour key).

Exact duplicates are dropped, then near copies (:data:`~studio.ml.data.pixel_space.NEAR_COPY_L1`) are grouped and
each group goes wholly to train or to validation, so validation never scores a model on a copy of a training tile.
The split is stratified by category and seeded. A folder is written next to its destination and renamed into
place at the end: an interrupted build leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import paths
from studio.core.errors import BadInputError
from studio.core.formats.json_file import expect_object, read_json
from studio.core.safe_write import staged_folder, write_atomic
from studio.ml.data.pixel_space import NEAR_COPY_L1, near_copy_groups
from studio.ml.data.sprite_cells import CELL, cell_hash

SPLITS = ("train", "val")
MANIFEST = "manifest.json"
CRAWL_NAME = "crawl-tiles"


@dataclass
class SpriteDataset:
    """A loaded data set: arrays per split, category names in label order, the manifest as written."""

    folder: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    categories: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")


def default_dataset_dir(name: str = CRAWL_NAME) -> Path:
    return paths.data_dir() / "datasets" / name


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drop_exact_duplicates(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Keep the first of identical cells (whatever their category); returns the count dropped."""
    seen: set[str] = set()
    keep = []
    for i, cell in enumerate(images):
        digest = cell_hash(cell)
        if digest not in seen:
            seen.add(digest)
            keep.append(i)
    return images[keep], labels[keep], len(images) - len(keep)


def split_by_groups(
    labels: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of train and validation: whole near-copy groups, about ``val_fraction`` of each category.

    A group counts towards the category most of its members have; it moves as a whole, so a near copy never sits
    on the other side of the split, even across categories.
    """
    rng = np.random.default_rng(seed)
    group_ids, group_of = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(group_of == g) for g in range(len(group_ids))]
    majority = np.array([np.bincount(labels[m]).argmax() for m in members])
    is_val = np.zeros(len(labels), dtype=bool)
    for category in np.unique(majority):
        candidates = np.flatnonzero(majority == category)
        size = sum(len(members[g]) for g in candidates)
        target = round(val_fraction * size)
        taken = 0
        for g in rng.permutation(candidates):
            if taken >= target:
                break
            if taken + len(members[g]) > target + max(1, target // 10):
                continue  # a big group would overshoot the share: it stays in train
            is_val[members[g]] = True
            taken += len(members[g])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _counts(labels: np.ndarray, categories: list[str]) -> dict[str, int]:
    tally = Counter(labels.tolist())
    return {name: int(tally.get(i, 0)) for i, name in enumerate(categories)}


def write_sprite_dataset(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    categories: list[str],
    *,
    name: str,
    source: str,
    licence: str,
    recipe: dict[str, Any],
    rejected: list[dict[str, Any]],
    notes: list[dict[str, Any]] | None = None,
) -> SpriteDataset:
    """Deduplicate, split and write a data set atomically; returns it as loaded back."""
    if len(images) == 0:
        raise BadInputError("no usable sprites to write")
    images, labels, duplicates = drop_exact_duplicates(images, labels)
    if duplicates:
        rejected = [*rejected, {"file": "*", "reason": "exact duplicate of another cell", "count": duplicates}]
    groups = near_copy_groups(images, NEAR_COPY_L1)
    train, val = split_by_groups(labels, groups, float(recipe["val_fraction"]), int(recipe["seed"]))
    out = Path(out)
    with staged_folder(out, f"the data set '{out.name}'") as staging:  # replaces an earlier set only when complete
        hashes, counts = {}, {}
        for split, index in zip(SPLITS, (train, val), strict=True):
            buffer = io.BytesIO()
            np.savez_compressed(buffer, images=images[index], labels=labels[index].astype(np.int64))
            path = write_atomic(staging / f"{split}.npz", buffer.getbuffer(), f"the data set '{out.name}'")
            hashes[path.name] = _sha256(path)
            counts[split] = _counts(labels[index], categories)
        manifest = {
            "name": name,
            "source": source,
            "licence": licence,
            "categories": list(categories),
            "counts": counts,
            "sha256": hashes,
            "recipe": {**recipe, "grid": int(recipe.get("grid", CELL)), "near_copy_l1": NEAR_COPY_L1},
            "rejected": rejected,
        }
        if notes:
            manifest["notes"] = notes
        write_atomic(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n", f"the data set '{out.name}'")
    return load_sprite_dataset(out)


def _load_split(folder: Path, split: str, categories: list[str], expected_hash: str | None) -> tuple[np.ndarray, ...]:
    path = folder / f"{split}.npz"
    if not path.is_file():
        raise BadInputError(f"{folder}: {path.name} is missing; rebuild the data set with `studio data sprites`")
    if expected_hash and _sha256(path) != expected_hash:
        raise BadInputError(f"{path} does not match the sha256 in its manifest: the file was changed or damaged")
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels = data["images"], data["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise BadInputError(f"{path} is not a readable sprite split ({exc})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (CELL, CELL, 4):
        raise BadInputError(f"{path}: images must be (N, {CELL}, {CELL}, 4) uint8, found {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise BadInputError(f"{path}: labels must be one integer per image")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(categories)):
        raise BadInputError(f"{path}: a label is outside the {len(categories)} categories of the manifest")
    return images, labels.astype(np.int64)


def load_sprite_dataset(folder: Path) -> SpriteDataset:
    """Read a data-set folder, checking hashes, shapes and labels; BadInputError says what is wrong."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        raise BadInputError(f"no sprite data set at {folder}: build one with `studio data sprites`")
    if not manifest_path.is_file():
        raise BadInputError(f"{folder} has no {MANIFEST}: it is not a sprite data set")
    try:
        manifest = expect_object(read_json(manifest_path, str(manifest_path)), str(manifest_path))
    except BadInputError as exc:
        raise BadInputError(f"{manifest_path} is damaged ({exc})") from None
    try:
        categories = [str(c) for c in manifest["categories"]]
        hashes = dict(manifest.get("sha256", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"{manifest_path} is damaged ({exc.__class__.__name__}: {exc})") from None
    if not categories:
        raise BadInputError(f"{manifest_path} lists no categories")
    train = _load_split(folder, "train", categories, hashes.get("train.npz"))
    val = _load_split(folder, "val", categories, hashes.get("val.npz"))
    return SpriteDataset(folder, train[0], train[1], val[0], val[1], categories, manifest)


def build_crawl_dataset(
    out: Path | None = None, seed: int = 0, val_fraction: float = 0.1, crawl_dir: Path | None = None
) -> SpriteDataset:
    """``studio data sprites``: fetch (or reuse) Dungeon Crawl's tiles and write the sprite data set."""
    from studio.ml.data import crawl_tiles

    if not 0.0 <= val_fraction < 1.0:
        raise BadInputError(f"--val-fraction must be at least 0 and below 1, got {val_fraction}")
    root = crawl_dir if crawl_dir is not None else crawl_tiles.ensure_crawl_tiles()
    if not crawl_tiles.is_extracted(root):
        raise BadInputError(f"{root} does not hold the unpacked crawl-tiles-data and crawl-common packages")
    images, labels, rejected = crawl_tiles.crawl_cells(root)
    command = f"studio data sprites --seed {seed} --val-fraction {val_fraction}"
    return write_sprite_dataset(
        out or default_dataset_dir(),
        images,
        labels,
        list(crawl_tiles.CATEGORIES),
        name=CRAWL_NAME,
        source=crawl_tiles.describe_source(root),
        licence=crawl_tiles.licence_text(root),
        recipe={"command": command, "seed": seed, "val_fraction": val_fraction, "grid": CELL},
        rejected=rejected,
    )
