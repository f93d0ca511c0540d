"""Sprite evaluation: realism, category accuracy, diversity and memorisation, in one call.

- Realism: Fréchet distance (FID-style) and kernel distance (KID-style: unbiased MMD² with the cubic polynomial
  kernel, averaged over random subsets) between sample and training features of the project's sprite encoder.
  Both are biased by the number of samples in some way; compare a model only with the validation baseline
  computed at the same count.
- Category accuracy: how often the encoder's classifier assigns a sample to the category it was asked for.
- Diversity: mean pairwise distance between samples, in pixel space (pixel L1) and encoder space (1 - cosine).
- Precision and recall (Kynkäänniemi et al. 2019, k = 3) in encoder space: the share of samples inside the real
  tiles' manifold (realism) and the share of real tiles inside the samples' manifold (coverage), measured apart.
- What an artist sees, per category (:mod:`studio.core.pixel_art`): colours, speckle, shapes, stray fragments,
  outline and, for tiles, seams.
- Memorisation: each sample's nearest training tile in pixel space and in encoder space. A sample is a near copy
  when it lies within :data:`~studio.ml.data.pixel_space.NEAR_COPY_L1` of that tile in pixel L1 *and* within
  :data:`COPY_DETAIL_SHARE` of the tile's own detail (its distance to itself painted flat): otherwise any dark,
  smooth output would "copy" the near-black floor tiles, which have almost no detail to copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from studio.core.pixel_art import pixel_art_measures
from studio.ml.data.pixel_space import NEAR_COPY_L1, PAIR_CHUNK, PixelSpace, detail_l1, nearest_l1

Embed = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # images -> (logits, features)
PR_NEIGHBOURS = 3  # k of the k-nearest-neighbour manifolds of precision and recall
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
FLAGGED_LISTED = 20
COPY_DETAIL_SHARE = 0.5  # a copy is closer to the tile than half of the tile's own detail


@dataclass
class SpriteReference:
    """What samples are measured against: the training split, its encoder features, and the encoder."""

    categories: list[str]
    train_images: np.ndarray
    train_features: np.ndarray
    embed: Embed
    near_copy_l1: float = NEAR_COPY_L1
    tag_logits: Callable[[np.ndarray], np.ndarray] | None = None  # the encoder's tag classifier, if it has one
    tag_words: list[str] = field(default_factory=list)
    train_detail: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.train_detail = detail_l1(self.train_images)


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||² + Tr(S_a + S_b - 2 (S_a^½ S_b S_a^½)^½) between two feature sets (rows = samples)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least two samples on each side")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)).sum())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


def kernel_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, seed: int = 0
) -> tuple[float, float]:
    """Unbiased MMD² with k(x, y) = (x·y / d + 1)³, mean and standard deviation over random subsets."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = min(len(a), len(b), subset_size)
    if m < 2:
        raise ValueError("the kernel distance needs at least two samples on each side")
    rng = np.random.default_rng(seed)
    dim = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / dim + 1.0) ** 3
        kyy = (y @ y.T / dim + 1.0) ** 3
        kxy = (x @ y.T / dim + 1.0) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2.0 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _cosine(features: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(features, np.float32))
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def mean_pairwise_pixel_l1(images: np.ndarray) -> float:
    """Mean pixel L1 distance over all pairs of distinct samples."""
    space = PixelSpace(images)
    rows, cols = torch.triu_indices(len(space), len(space), offset=1)
    if rows.numel() == 0:
        return 0.0
    total = 0.0
    for start in range(0, rows.numel(), PAIR_CHUNK):
        total += float(space.l1(rows[start : start + PAIR_CHUNK], space, cols[start : start + PAIR_CHUNK]).sum())
    return total / rows.numel()


def mean_pairwise_cosine_distance(features: np.ndarray) -> float:
    """Mean of 1 - cosine similarity over all pairs of distinct samples."""
    x = _cosine(features)
    n = len(x)
    if n < 2:
        return 0.0
    similarity = x @ x.T
    return float((n * n - similarity.sum()) / (n * (n - 1)))


def nearest_cosine(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Highest cosine similarity to, and index of, the closest reference feature for each query."""
    similarity = _cosine(queries) @ _cosine(references).T
    best = similarity.max(dim=1)
    return best.values.numpy(), best.indices.numpy()


def _knn_radius(features: torch.Tensor, k: int) -> torch.Tensor:
    distances = torch.cdist(features, features)
    return distances.kthvalue(k + 1, dim=1).values  # the 0th neighbour is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR_NEIGHBOURS, seed: int = 0) -> tuple[float, float]:
    """Improved precision and recall: (share of ``fake`` within some real point's k-NN radius, share of ``real``
    within some fake point's k-NN radius); the larger set is subsampled to the smaller's size first."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake))
    if n <= k:
        raise ValueError(f"precision and recall need more than {k} samples on each side")
    real_t = torch.from_numpy(np.asarray(real, np.float32)[rng.choice(len(real), n, replace=False)])
    fake_t = torch.from_numpy(np.asarray(fake, np.float32)[rng.choice(len(fake), n, replace=False)])
    between = torch.cdist(fake_t, real_t)  # (fake, real)
    precision = (between <= _knn_radius(real_t, k)[None, :]).any(dim=1).float().mean()
    recall = (_knn_radius(fake_t, k)[None, :] >= between.T).any(dim=1).float().mean()
    return float(precision), float(recall)


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else None


def artist_summary(samples: np.ndarray, labels: np.ndarray, categories: list[str]) -> dict[str, dict[str, Any]]:
    """Per category: median colours (with quartiles), median speckle, mean shapes and fragments per sprite, median
    outline share and median seam ratio (the last only where it is defined)."""
    measures = pixel_art_measures(samples)
    out: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(categories):
        chosen = labels == index
        if not chosen.any():
            continue
        colours = measures["colours"][chosen]
        out[name] = {
            "count": int(chosen.sum()),
            "colours": float(np.median(colours)),
            "colours_q1_q3": [float(np.percentile(colours, 25)), float(np.percentile(colours, 75))],
            "speckle": _median(measures["speckle"][chosen]),
            "shapes": float(measures["shapes"][chosen].mean()),
            "fragments": float(measures["fragments"][chosen].mean()),
            "outline": _median(measures["outline"][chosen]),
            "seam": _median(measures["seam"][chosen]),
        }
    return out


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"min": float(values.min()), "median": float(np.median(values)), "mean": float(values.mean())}


def memorisation(
    samples: np.ndarray, features: np.ndarray, reference: SpriteReference
) -> dict[str, Any]:
    """Nearest training tile of each sample (pixel and encoder space) and the near copies among them."""
    pixel, pixel_index = nearest_l1(samples, reference.train_images, threshold=reference.near_copy_l1)
    cosine, cosine_index = nearest_cosine(features, reference.train_features)
    detail = reference.train_detail[pixel_index]
    flagged = np.flatnonzero((pixel < reference.near_copy_l1) & (pixel < COPY_DETAIL_SHARE * detail))
    return {
        "near_copy_threshold_l1": reference.near_copy_l1,
        "near_copy_detail_share": COPY_DETAIL_SHARE,
        "near_copies": len(flagged),
        "near_copy_fraction": float(len(flagged) / len(samples)),
        "nearest_pixel_l1": _summary(pixel),
        "nearest_feature_cosine": _summary(cosine),
        "flagged": [
            {"sample": int(i), "train_index": int(pixel_index[i]), "pixel_l1": float(pixel[i]),
             "train_detail_l1": float(detail[i])}
            for i in flagged[:FLAGGED_LISTED]
        ],
        "nearest_train_index": pixel_index.tolist(),
        "nearest_feature_train_index": cosine_index.tolist(),
    }


def evaluate_sprites(samples: np.ndarray, labels: np.ndarray, reference: SpriteReference) -> dict[str, Any]:
    """All sprite metrics for ``samples`` (N, 32, 32, 4) uint8 asked for categories ``labels`` (N,)."""
    samples = np.asarray(samples)
    labels = np.asarray(labels, dtype=np.int64)
    if samples.ndim != 4 or samples.shape[1:] != (32, 32, 4) or samples.dtype != np.uint8:
        raise ValueError(f"samples must be (N, 32, 32, 4) uint8, got {samples.dtype} {samples.shape}")
    if len(samples) != len(labels) or len(samples) < 2:
        raise ValueError("need at least two samples and one label per sample")
    logits, features = reference.embed(samples)
    correct = logits.argmax(axis=1) == labels
    # Only categories the encoder was trained on can be judged (a user's own ones get -inf logits).
    judged = np.isfinite(logits[np.arange(len(labels)), labels])
    kid_mean, kid_std = kernel_distance(features, reference.train_features)
    enough = min(len(features), len(reference.train_features)) > PR_NEIGHBOURS
    precision, recall = precision_recall(reference.train_features, features) if enough else (None, None)
    per_category = {}
    for index, name in enumerate(reference.categories):
        chosen = labels == index
        if chosen.any():
            accuracy = float(correct[chosen].mean()) if judged[chosen].all() else None
            per_category[name] = {"count": int(chosen.sum()), "accuracy": accuracy}
    return {
        "count": len(samples),
        "fid": frechet_distance(features, reference.train_features),
        "kid": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "category_accuracy": float(correct[judged].mean()) if judged.any() else None,
        "diversity_pixel_l1": mean_pairwise_pixel_l1(samples),
        "diversity_feature_cosine": mean_pairwise_cosine_distance(features),
        "memorisation": memorisation(samples, features, reference),
        "per_category": per_category,
        "artist": artist_summary(samples, labels, reference.categories),
    }
