"""The sprite data-set format every sprite model trains on, and the build from Dungeon Crawl's tiles.

A data set is a folder with

- ``train.npz`` and ``val.npz``: ``images`` (N, 32, 32, 4) uint8 RGBA, ``labels`` (N,) int64, ``names`` (N,)
  str (each sprite's path or file name, "" when unknown) and ``tags`` (N, T) uint8, 1 where the sprite carries tag
  t of the vocabulary;
- ``manifest.json``: ``{"name", "source", "licence", "categories": [names in label order],
  "counts": {"train": {category: n}, "val": {...}}, "sha256": {file: hash},
  "recipe": {"command", "seed", "val_fraction", "grid", "near_copy_l1"}, "rejected": [{"file", "reason", "count"}],
  "tags": {"words": [...], "category_counts": {tag: {category: n}}}}`` (the vocabulary: words of the names with
  at least :data:`~studio.core.sprite_tags.MIN_TAG_COUNT` training sprites; imports add ``"notes"``: conversions
  made on the way, such as a colour key). Sets written before names were kept load with empty names and no tags.

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
from studio.core.sprite_tags import TagVocabulary, tags_from_path
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
    train_names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    val_names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    train_tags: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.uint8))
    val_tags: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.uint8))

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")

    @property
    def vocabulary(self) -> TagVocabulary:
        return TagVocabulary.from_dict(self.manifest.get("tags"))


def default_dataset_dir(name: str = CRAWL_NAME) -> Path:
    return paths.data_dir() / "datasets" / name


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def first_of_duplicates(images: np.ndarray) -> np.ndarray:
    """Indices of the first of each group of identical cells (whatever their category)."""
    seen: set[str] = set()
    keep = []
    for i, cell in enumerate(images):
        digest = cell_hash(cell)
        if digest not in seen:
            seen.add(digest)
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def tag_matrix(names: list[str], vocabulary: TagVocabulary) -> np.ndarray:
    """(N, T) uint8: 1 where sprite i's name carries tag t."""
    matrix = np.zeros((len(names), len(vocabulary)), dtype=np.uint8)
    column = {word: i for i, word in enumerate(vocabulary.words)}
    for row, name in enumerate(names):
        for tag in tags_from_path(name):
            if tag in column:
                matrix[row, column[tag]] = 1
    return matrix


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
    names: list[str] | None = None,
) -> SpriteDataset:
    """Deduplicate, split and write a data set atomically; returns it as loaded back.

    ``names`` (one per sprite: a path or file name) are kept, and their words become the tags; the vocabulary is
    counted on the training split only, so validation never decides which words exist.
    """
    if len(images) == 0:
        raise BadInputError("no usable sprites to write")
    names = list(names) if names is not None else [""] * len(images)
    if len(names) != len(images):
        raise ValueError("one name per sprite")
    keep = first_of_duplicates(images)
    duplicates = len(images) - len(keep)
    images, labels, names = images[keep], labels[keep], [names[i] for i in keep]
    if duplicates:
        rejected = [*rejected, {"file": "*", "reason": "exact duplicate of another cell", "count": duplicates}]
    groups = near_copy_groups(images, NEAR_COPY_L1)
    train, val = split_by_groups(labels, groups, float(recipe["val_fraction"]), int(recipe["seed"]))
    vocabulary = TagVocabulary.build(
        [tags_from_path(names[i]) for i in train], [categories[labels[i]] for i in train]
    )
    tags = tag_matrix(names, vocabulary)
    name_array = np.array(names, dtype=str)
    out = Path(out)
    with staged_folder(out, f"the data set '{out.name}'") as staging:  # replaces an earlier set only when complete
        hashes, counts = {}, {}
        for split, index in zip(SPLITS, (train, val), strict=True):
            buffer = io.BytesIO()
            np.savez_compressed(buffer, images=images[index], labels=labels[index].astype(np.int64),
                                names=name_array[index], tags=tags[index])
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
            "tags": vocabulary.to_dict(),
        }
        if notes:
            manifest["notes"] = notes
        write_atomic(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n", f"the data set '{out.name}'")
    return load_sprite_dataset(out)


def _load_split(
    folder: Path, split: str, categories: list[str], expected_hash: str | None, tag_count: int
) -> tuple[np.ndarray, ...]:
    path = folder / f"{split}.npz"
    if not path.is_file():
        raise BadInputError(f"{folder}: {path.name} is missing; rebuild the data set with `studio data sprites`")
    if expected_hash and _sha256(path) != expected_hash:
        raise BadInputError(f"{path} does not match the sha256 in its manifest: the file was changed or damaged")
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels = data["images"], data["labels"]
            names = data["names"] if "names" in data else np.full(len(labels), "", dtype=str)
            tags = data["tags"] if "tags" in data else np.zeros((len(labels), 0), dtype=np.uint8)
    except (OSError, ValueError, KeyError) as exc:
        raise BadInputError(f"{path} is not a readable sprite split ({exc})") from None
    if names.shape != labels.shape or tags.shape != (len(labels), tag_count):
        raise BadInputError(f"{path}: names and tags must match the sprites and the manifest's vocabulary")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (CELL, CELL, 4):
        raise BadInputError(f"{path}: images must be (N, {CELL}, {CELL}, 4) uint8, found {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise BadInputError(f"{path}: labels must be one integer per image")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(categories)):
        raise BadInputError(f"{path}: a label is outside the {len(categories)} categories of the manifest")
    return images, labels.astype(np.int64), names.astype(str), tags.astype(np.uint8)


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
    tag_count = len(TagVocabulary.from_dict(manifest.get("tags")))
    train = _load_split(folder, "train", categories, hashes.get("train.npz"), tag_count)
    val = _load_split(folder, "val", categories, hashes.get("val.npz"), tag_count)
    return SpriteDataset(folder, train[0], train[1], val[0], val[1], categories, manifest,
                         train[2], val[2], train[3], val[3])


def build_crawl_dataset(
    out: Path | None = None, seed: int = 0, val_fraction: float = 0.1, crawl_dir: Path | None = None
) -> SpriteDataset:
    """``studio data sprites``: fetch (or reuse) Dungeon Crawl's named tiles and write the sprite data set.

    ``crawl_dir``: a folder holding the source package's files (downloaded by hand), used instead of apt.
    """
    from studio.ml.data import crawl_tiles

    if not 0.0 <= val_fraction < 1.0:
        raise BadInputError(f"--val-fraction must be at least 0 and below 1, got {val_fraction}")
    if crawl_dir is not None and not Path(crawl_dir).is_dir():
        raise BadInputError(f"--crawl-dir {crawl_dir} is not a folder")
    root = crawl_tiles.ensure_crawl_source(downloaded=crawl_dir)
    tiles, rejected = crawl_tiles.crawl_tiles(root)
    if not tiles:
        raise BadInputError(f"{root} holds no usable tiles")
    categories = list(crawl_tiles.CATEGORIES)
    command = f"studio data sprites --seed {seed} --val-fraction {val_fraction}"
    return write_sprite_dataset(
        out or default_dataset_dir(),
        np.stack([tile.cell for tile in tiles]),
        np.array([categories.index(tile.category) for tile in tiles], dtype=np.int64),
        categories,
        names=[tile.path for tile in tiles],
        name=CRAWL_NAME,
        source=crawl_tiles.describe_source(root),
        licence=crawl_tiles.licence_text(root),
        recipe={"command": command, "seed": seed, "val_fraction": val_fraction, "grid": CELL},
        rejected=rejected,
    )
