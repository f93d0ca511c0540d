"""Tiny sprite data sets and tiny saved sprite models for the sprite tests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from studio.core.sprite_tags import TagVocabulary, tags_from_path
from studio.ml import registry
from studio.ml.checkpoint import save_model
from studio.ml.data.sprites import tag_matrix

CATEGORIES = ["squares", "discs", "bars"]
ARCHS = {"gan": "sprite-gan", "vae": "sprite-vae", "diffusion": "sprite-diffusion"}
TINY_TAGS = ("red", "green", "blue", "large", "small")  # a tiny model's vocabulary (its config has five tags)


def synthetic_sprites(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(count, 32, 32, 4) uint8 shapes on transparent backgrounds, one shape kind per category."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 32, 32, 4), dtype=np.uint8)
    labels = rng.integers(0, len(CATEGORIES), count).astype(np.int64)
    yy, xx = np.mgrid[:32, :32]
    for image, label in zip(images, labels, strict=True):
        cx, cy, r = rng.integers(10, 22), rng.integers(10, 22), rng.integers(4, 9)
        if label == 0:
            mask = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
        elif label == 1:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        else:
            mask = abs(yy - cy) <= r // 3
        image[mask] = [*rng.integers(0, 256, 3), 255]
    return images, labels


def sprite_names(images: np.ndarray, labels: np.ndarray) -> list[str]:
    """Names whose words describe each synthetic sprite: its shape kind, its main colour and its size."""
    names = []
    for image, label in zip(images, labels, strict=True):
        rgb = image[image[..., 3] > 0, :3].mean(axis=0)
        colour = ("red", "green", "blue")[int(rgb.argmax())]
        size = "large" if (image[..., 3] > 0).sum() > 120 else "small"
        names.append(f"{CATEGORIES[label]}/{colour}_{size}.png")
    return names


def make_dataset(folder: Path, train: int = 48, val: int = 16, tags: bool = True) -> Path:
    """A folder shaped like the output of `studio data sprites` (with names and tags unless ``tags`` is False)."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = {split: synthetic_sprites(count, seed) for split, count, seed in (("train", train, 0), ("val", val, 1))}
    names = {split: sprite_names(*data) for split, data in splits.items()}
    vocabulary = TagVocabulary.build([tags_from_path(n) for n in names["train"]],
                                     [CATEGORIES[i] for i in splits["train"][1]], min_count=2)
    for split, (images, labels) in splits.items():
        extra = {"names": np.array(names[split]), "tags": tag_matrix(names[split], vocabulary)} if tags else {}
        np.savez(folder / f"{split}.npz", images=images, labels=labels, **extra)
    manifest = {"categories": CATEGORIES, "counts": {"train": train, "val": val}, "licence": "synthetic"}
    if tags:
        manifest["tags"] = vocabulary.to_dict()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def tiny_overrides(family: str) -> dict:
    """The tiny config of the family, minus the class count (the trainer takes it from the data)."""
    config = registry.get(ARCHS[family]).tiny_config()
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "num_classes"}


def save_tiny_model(family: str, folder: Path, name: str, seed: int = 0) -> Path:
    """An untrained tiny sprite model file (with categories) under ``folder``."""
    arch = registry.get(ARCHS[family])
    config = dataclasses.replace(arch.tiny_config(), num_classes=len(CATEGORIES))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = arch.build(config)
    if family == "diffusion":  # zero-initialised output layer would make every sample identical noise-free
        torch.nn.init.normal_(model.conv_out.weight, std=0.05)
    words = list(TINY_TAGS[: config.num_tags])
    meta = {"name": name, "modality": "sprite", "family": family, "categories": CATEGORIES,
            "tags": {"words": words, "category_counts": {w: {CATEGORIES[i % 3]: 5} for i, w in enumerate(words)}}}
    return save_model(model, arch.name, config, folder / f"{name}.safetensors", meta)
