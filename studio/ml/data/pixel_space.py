"""Distances between sprites in pixel space: what "the same tile" and "a near copy" mean for the whole project.

Sprites are compared as premultiplied RGBA in [0, 1], so colour under transparent pixels does not count. The
*pixel L1 distance* is the sum of absolute differences divided by the number of values in the union of the two
sprites' visible (alpha > 0) pixels: the mean difference per visible value, whatever the sprite's size. (Dividing
by the whole 32x32 cell would make any two small sprites look alike.)

A *near copy* is a pair closer than :data:`NEAR_COPY_L1` = 0.02, calibrated on the crawl tiles: pairs below it are
the same picture with a few pixels changed (and adding Gaussian noise of 8/255 to every colour of a tile gives
0.015 at the median, 0.019 at the 99th percentile); above 0.025 pairs are deliberate variants (recolours, added
details). 19% of the crawl tiles have a near copy elsewhere in the set; they are kept on one side of the
train/validation split.

Exact L1 over thousands of tiles is slow on a CPU, so candidates come from squared differences first (one matrix
product). For values in [0, 1] the squared difference never exceeds the absolute one, so every pair within a
threshold in L1 is within it in squared terms too: the candidate filter misses none.
"""

from __future__ import annotations

import numpy as np
import torch

NEAR_COPY_L1 = 0.02
CHUNK = 256
PAIR_CHUNK = 8192
BLOCK = 4
CHANNELS = 4


class PixelSpace:
    """Sprites prepared for distance queries: premultiplied values, visibility masks, block sums, norms."""

    def __init__(self, images: np.ndarray) -> None:
        array = np.ascontiguousarray(images)
        count, height, width = array.shape[:3]
        x = torch.from_numpy(array).float() / 255.0
        x = torch.cat([x[..., :3] * x[..., 3:], x[..., 3:]], dim=-1)
        self.values = x.reshape(count, -1)
        self.visible = torch.from_numpy(array[..., 3] > 0).reshape(count, -1).float()
        self.squared_norm = (self.values * self.values).sum(1)
        self.area = self.visible.sum(1)
        blocks = x.reshape(count, height // BLOCK, BLOCK, width // BLOCK, BLOCK, CHANNELS).sum(dim=(2, 4))
        self.blocks = blocks.reshape(count, -1)

    def __len__(self) -> int:
        return len(self.values)

    def tail(self, start: int) -> PixelSpace:
        """The sprites from index ``start`` on (views, no copies)."""
        part = object.__new__(PixelSpace)
        for name in ("values", "visible", "squared_norm", "area", "blocks"):
            setattr(part, name, getattr(self, name)[start:])
        return part

    def squared(self, rows: torch.Tensor, other: PixelSpace) -> torch.Tensor:
        """Summed squared differences of ``self[rows]`` against every sprite of ``other``."""
        dot = self.values[rows] @ other.values.T
        return (self.squared_norm[rows][:, None] + other.squared_norm[None, :] - 2.0 * dot).clamp_min_(0.0)

    def budget(self, rows: torch.Tensor, other: PixelSpace, cols: torch.Tensor, threshold: float) -> torch.Tensor:
        """An upper bound of ``threshold`` x union size: pairs whose summed L1 exceeds it are not within."""
        return threshold * CHANNELS * (self.area[rows] + other.area[cols])

    def l1(self, rows: torch.Tensor, other: PixelSpace, cols: torch.Tensor) -> torch.Tensor:
        """Exact pixel L1 distance of pairs ``(self[rows[i]], other[cols[i]])`` (any matching shapes)."""
        total = (self.values[rows] - other.values[cols]).abs().sum(-1)
        union = self.area[rows] + other.area[cols] - (self.visible[rows] * other.visible[cols]).sum(-1)
        return total / (union.clamp_min(1.0) * CHANNELS)

    def within(self, rows: torch.Tensor, other: PixelSpace, cols: torch.Tensor, threshold: float) -> torch.Tensor:
        """Which candidate pairs are closer than ``threshold``: cheap lower bounds first, exact L1 on the rest."""
        budget = self.budget(rows, other, cols, threshold)
        # summing differences over 4x4 blocks can only shrink them: a lower bound of the summed L1
        bound = (self.blocks[rows] - other.blocks[cols]).abs().sum(-1)
        keep = torch.nonzero(bound < budget).flatten()
        result = torch.zeros(len(rows), dtype=torch.bool)
        for start in range(0, len(keep), PAIR_CHUNK):
            part = keep[start : start + PAIR_CHUNK]
            result[part] = self.l1(rows[part], other, cols[part]) < threshold
        return result


def pixel_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel L1 distance between matching sprites of two equally long batches."""
    left, right = PixelSpace(a), PixelSpace(b)
    index = torch.arange(len(left))
    return left.l1(index, right, index).numpy()


def detail_l1(images: np.ndarray) -> np.ndarray:
    """How much each sprite differs from itself painted flat in its mean colour (same alpha), in pixel L1.

    A near-black floor tile has almost no detail: any dark smooth output lies within :data:`NEAR_COPY_L1` of it
    without copying anything. Copying means reproducing a tile's detail, so memorisation checks compare against it.
    """
    space = PixelSpace(images)
    count = len(space)
    values = space.values.reshape(count, -1, CHANNELS)
    visible = space.visible[..., None]
    mean = (values * visible).sum(1, keepdim=True) / visible.sum(1, keepdim=True).clamp_min(1.0)
    flat = torch.where(visible > 0, mean.expand_as(values), values)
    flat[..., 3] = values[..., 3]
    total = (values - flat).abs().sum(dim=(1, 2))
    return (total / (space.area.clamp_min(1.0) * CHANNELS)).numpy()


def nearest_l1(
    queries: np.ndarray, references: np.ndarray, candidates: int = 32, threshold: float = NEAR_COPY_L1
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-L1 distance to, and index of, the nearest reference for each query.

    The nearest is sought among the ``candidates`` references closest in squared terms plus every reference that
    could lie within ``threshold``, so ``distance < threshold`` is exact; larger distances may be overestimates.
    """
    q, r = PixelSpace(queries), PixelSpace(references)
    k = min(candidates, len(r))
    best_d = np.empty(len(q), dtype=np.float32)
    best_i = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), CHUNK):
        rows = torch.arange(start, min(start + CHUNK, len(q)))
        squared = q.squared(rows, r)
        spread = q.area[rows][:, None] + r.area[None, :]
        top = (squared / spread.clamp_min(1.0)).topk(k, largest=False).indices
        distances = q.l1(rows[:, None], r, top)
        nearest = distances.argmin(dim=1, keepdim=True)
        best_d[rows.numpy()] = distances.gather(1, nearest).squeeze(1).numpy()
        best_i[rows.numpy()] = top.gather(1, nearest).squeeze(1).numpy()
        possible = squared < threshold * CHANNELS * spread
        for row in torch.nonzero(possible.sum(dim=1) > k).flatten().tolist():
            pool = torch.nonzero(possible[row]).flatten()
            distances = q.l1(rows[row].expand(len(pool)), r, pool)
            j = int(distances.argmin())
            if float(distances[j]) < best_d[start + row]:
                best_d[start + row], best_i[start + row] = float(distances[j]), int(pool[j])
    return best_d, best_i


def pairs_within(images: np.ndarray, threshold: float = NEAR_COPY_L1) -> list[tuple[int, int]]:
    """All index pairs ``i < j`` whose pixel L1 distance is below ``threshold``."""
    space = PixelSpace(images)
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(space), CHUNK):
        rows = torch.arange(start, min(start + CHUNK, len(space)))
        upper = space.tail(start)  # pairs i < j only: columns from this chunk's first row on
        squared = space.squared(rows, upper)
        budget = space.budget(rows[:, None], upper, torch.arange(len(upper)), threshold)
        local, cols = torch.nonzero(squared < budget, as_tuple=True)
        cols = cols + start
        keep = cols > rows[local]
        pair_rows, pair_cols = rows[local[keep]], cols[keep]
        if pair_rows.numel():
            close = space.within(pair_rows, space, pair_cols, threshold)
            pairs.extend(zip(pair_rows[close].tolist(), pair_cols[close].tolist(), strict=True))
    return pairs


def near_copy_groups(images: np.ndarray, threshold: float = NEAR_COPY_L1) -> np.ndarray:
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
