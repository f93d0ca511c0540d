"""Setting up sprite evaluation: the encoder from the model store, training features, the validation baseline."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core import paths
from studio.core.errors import DiskWriteError, ModelFileError
from studio.core.safe_write import write_atomic
from studio.core.sprite_tags import TagVocabulary
from studio.ml.checkpoint import load_model, sha256_file
from studio.ml.data.sprites import SpriteDataset
from studio.ml.eval.sprite_metrics import Embed, SpriteReference, evaluate_sprites
from studio.ml.models.sprite_common import images_to_tensor
from studio.ml.store import ModelStore

ENCODER = "sprite-encoder"
BATCH = 512


def load_encoder(name: str = ENCODER, store: ModelStore | None = None, device: str = "cpu") -> tuple[Any, dict]:
    """The encoder module (eval mode) and its sidecar, found and verified through the model store."""
    store = store or ModelStore()
    entry = store.find(name)
    if entry.arch != ENCODER:
        raise ModelFileError(f"{name!r} is a {entry.arch} model, not a sprite encoder")
    store.verify(entry)
    module, _, meta = load_model(entry.weights, expect_arch=ENCODER, device=device)
    return module, {**meta, "sha256": sha256_file(entry.weights)}


def make_embed(module: torch.nn.Module, encoder_categories: list[str], categories: list[str], device: str) -> Embed:
    """images -> (logits over ``categories``, features); a category the encoder lacks gets -inf logits."""
    order = [encoder_categories.index(c) if c in encoder_categories else -1 for c in categories]

    @torch.no_grad()
    def embed(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = [], []
        for start in range(0, len(images), BATCH):
            out, feat = module(images_to_tensor(images[start : start + BATCH]).to(device))
            logits.append(out.float().cpu().numpy())
            features.append(feat.float().cpu().numpy())
        raw = np.concatenate(logits)
        mapped = np.full((len(raw), len(order)), -np.inf, dtype=np.float32)
        for i, j in enumerate(order):
            if j >= 0:
                mapped[:, i] = raw[:, j]
        return mapped, np.concatenate(features)

    return embed


def make_tag_logits(module: torch.nn.Module, device: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """images -> the encoder's word logits (None for an encoder trained without words)."""
    if getattr(module, "tag_head", None) is None:
        return None

    @torch.no_grad()
    def tag_logits(images: np.ndarray) -> np.ndarray:
        out = [module.tag_logits(module.features(images_to_tensor(images[i : i + BATCH]).to(device))).float().cpu()
               for i in range(0, len(images), BATCH)]
        return torch.cat(out).numpy() if out else np.zeros((0, module.config.num_tags), np.float32)

    return tag_logits


def _features_cache(dataset: SpriteDataset, encoder_sha: str) -> Path:
    key = hashlib.sha256((dataset.manifest.get("sha256", {}).get("train.npz", "") + encoder_sha).encode())
    return paths.cache_dir() / "sprite-eval" / f"train-features-{key.hexdigest()[:16]}.npy"


def build_reference(
    dataset: SpriteDataset, encoder: str = ENCODER, store: ModelStore | None = None, device: str = "cpu"
) -> SpriteReference:
    """Encoder + training-split features (cached per data set and encoder file)."""
    module, meta = load_encoder(encoder, store, device)
    # A data set with other categories (the user's own) is still measured in the encoder's feature space; only the
    # category accuracy of its categories is left out (see evaluate_sprites).
    encoder_categories = [str(c) for c in meta.get("categories", [])]
    embed = make_embed(module, encoder_categories, dataset.categories, device)
    cache = _features_cache(dataset, meta["sha256"])
    features = _cached_features(cache)
    if features is None:
        features = embed(dataset.train_images)[1]
        buffer = io.BytesIO()
        np.save(buffer, features, allow_pickle=False)
        with suppress(DiskWriteError):  # a cache: without it the next run computes the features again
            write_atomic(cache, buffer.getbuffer(), "the feature cache")
    words = list(TagVocabulary.from_dict(meta.get("tags")).words)
    return SpriteReference(dataset.categories, dataset.train_images, features, embed,
                           tag_logits=make_tag_logits(module, device), tag_words=words)


def _cached_features(cache: Path) -> np.ndarray | None:
    try:
        return np.load(cache, allow_pickle=False) if cache.is_file() else None
    except (OSError, ValueError, EOFError):  # damaged: computed again
        return None


def category_shares(dataset: SpriteDataset, count: int) -> dict[str, int]:
    """How many of ``count`` samples each category gets: in proportion to the training split."""
    totals = np.bincount(dataset.train_labels, minlength=len(dataset.categories)).astype(np.float64)
    exact = totals / totals.sum() * count
    shares = np.floor(exact).astype(int)
    for i in np.argsort(exact - shares)[::-1][: count - shares.sum()]:
        shares[i] += 1
    return {name: int(n) for name, n in zip(dataset.categories, shares, strict=True) if n > 0}


def validation_subset(dataset: SpriteDataset, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` validation sprites drawn in the same category proportions as the samples of a model."""
    rng = np.random.default_rng(seed)
    chosen = []
    for name, n in category_shares(dataset, count).items():
        members = np.flatnonzero(dataset.val_labels == dataset.categories.index(name))
        chosen.extend(rng.choice(members, size=min(n, len(members)), replace=False).tolist())
    index = np.sort(np.array(chosen, dtype=np.int64))
    return dataset.val_images[index], dataset.val_labels[index]


def validation_baseline(dataset: SpriteDataset, reference: SpriteReference, count: int, seed: int) -> dict:
    """The same metrics for held-out real tiles: what a perfect generator would score at this count."""
    images, labels = validation_subset(dataset, count, seed)
    return evaluate_sprites(images, labels, reference)
