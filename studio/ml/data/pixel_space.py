"""Distances between sprites in pixel space: what "the same tile" and "a near copy" mean for the whole project.

A sprite is compared as premultiplied RGBA in [0, 1] (colour under transparent pixels does not count) and the
distance is the mean absolute difference over all 32x32x4 values ("pixel L1"). Exact L1 over thousands of tiles is
slow on a CPU, so candidates come from squared distance first, computed with one matrix product: for values in
[0, 1] the mean squared difference never exceeds the mean absolute one, so every pair closer than a threshold in L1
is also closer than it in squared distance and none is missed.
"""

from __future__ import annotations

import numpy as np
import torch

CHUNK = 256


def pixel_vectors(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 4) uint8 -> (N, H*W*4) float32 premultiplied RGBA in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    x = torch.cat([x[..., :3] * x[..., 3:], x[..., 3:]], dim=-1)
    return x.reshape(len(images), -1)


def _mean_squared(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    dim = a.shape[1]
    return ((a * a).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * a @ b.T).clamp_min_(0.0) / dim


def _mean_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean(dim=-1)


def nearest_l1(
    queries: np.ndarray, references: np.ndarray, candidates: int = 32, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-L1 distance to, and index of, the nearest reference for each query.

    The nearest is sought among the ``candidates`` closest references in squared distance, plus, when
    ``threshold`` is given, every reference that could lie within it: ``distance < threshold`` is then exact.
    """
    q, r = pixel_vectors(queries), pixel_vectors(references)
    r_sq = (r * r).sum(1)
    k = min(candidates, len(r))
    best_d = np.empty(len(q), dtype=np.float32)
    best_i = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), CHUNK):
        block = q[start : start + CHUNK]
        squared = _mean_squared(block, r, r_sq)
        top = squared.topk(k, largest=False).indices
        for row in range(len(block)):
            pool = top[row]
            if threshold is not None:
                pool = torch.unique(torch.cat([pool, torch.nonzero(squared[row] < threshold).flatten()]))
            distances = _mean_l1(block[row][None], r[pool])
            j = int(distances.argmin())
            best_d[start + row], best_i[start + row] = float(distances[j]), int(pool[j])
    return best_d, best_i


def pairs_within(images: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """All index pairs ``i < j`` whose pixel-L1 distance is below ``threshold``."""
    x = pixel_vectors(images)
    x_sq = (x * x).sum(1)
    pairs = []
    for start in range(0, len(x), CHUNK):
        block = x[start : start + CHUNK]
        squared = _mean_squared(block, x, x_sq)
        rows, cols = torch.nonzero(squared < threshold, as_tuple=True)
        keep = cols > rows + start
        rows, cols = rows[keep], cols[keep]
        if rows.numel():
            close = _mean_l1(block[rows], x[cols]) < threshold
            pairs.extend(zip((rows[close] + start).tolist(), cols[close].tolist(), strict=True))
    return pairs


def near_duplicate_groups(images: np.ndarray, threshold: float) -> np.ndarray:
    """A group id per image; images linked by a chain of near copies share one (union-find)."""
    parent = list(range(len(images)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs_within(images, threshold):
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(len(images))], dtype=np.int64)
