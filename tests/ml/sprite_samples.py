"""Synthetic sprites and small data sets for the sprite data and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.ml.data.sprites import SpriteDataset, write_sprite_dataset


def blob(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An opaque patterned shape (a ragged ellipse with up to two lumps) with a dark outline."""
    yy, xx = np.mgrid[:height, :width]
    inside = ((yy - (height - 1) / 2) / (height / 2)) ** 2 + ((xx - (width - 1) / 2) / (width / 2)) ** 2 <= 1.0
    for _ in range(int(rng.integers(0, 3))):  # lumps that stay inside the box, as drawn sprites do
        ry, rx = rng.uniform(1.5, max(1.5, height / 3)), rng.uniform(1.5, max(1.5, width / 3))
        cy = rng.uniform(ry - 0.5, max(ry - 0.5, height - ry - 0.5))
        cx = rng.uniform(rx - 0.5, max(rx - 0.5, width - rx - 0.5))
        inside |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    padded = np.pad(inside, 1)
    border = inside & ~(padded[2:, 1:-1] & padded[:-2, 1:-1] & padded[1:-1, 2:] & padded[1:-1, :-2])
    inside &= ~(border & (rng.random(inside.shape) < 0.5))  # a ragged silhouette, as hand-drawn sprites have
    palette = rng.integers(40, 256, size=(3, 3))
    pattern = palette[rng.integers(0, 3, size=(height, width))]
    sprite = np.zeros((height, width, 4), dtype=np.uint8)
    sprite[inside, :3] = pattern[inside]
    sprite[inside, 3] = 255
    padded = np.pad(inside, 1)
    edge = inside & ~(padded[2:, 1:-1] & padded[:-2, 1:-1] & padded[1:-1, 2:] & padded[1:-1, :-2])
    sprite[edge, :3] = 20
    return sprite


def distinct_sprites(count: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """``count`` random 32x32 sprites, each a centred blob of random size and colours."""
    rng = np.random.default_rng(seed)
    out = np.zeros((count, size, size, 4), dtype=np.uint8)
    for i in range(count):
        h, w = (int(v) for v in rng.integers(12, size + 1, size=2))
        top, left = (size - h) // 2, (size - w) // 2
        out[i, top : top + h, left : left + w] = blob(rng, h, w)
    return out


def save_rgba(path: Path, rgba: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def small_dataset(folder: Path, per_category: int = 12, categories: tuple[str, ...] = ("a", "b", "c"),
                  seed: int = 0, val_fraction: float = 0.25) -> SpriteDataset:
    """A written data set of distinct blobs; category c's blobs are tinted so a classifier can tell them apart."""
    images = distinct_sprites(per_category * len(categories), seed)
    labels = np.repeat(np.arange(len(categories)), per_category)
    for c in range(len(categories)):
        chosen = images[labels == c]
        chosen[..., c % 3] = np.where(chosen[..., 3] > 0, 255, 0)
        images[labels == c] = chosen
    return write_sprite_dataset(
        folder, images, labels, list(categories), name="synthetic", source="tests", licence="CC0",
        recipe={"command": "tests", "seed": seed, "val_fraction": val_fraction, "grid": 32}, rejected=[],
    )
