"""Damaging pixel art on purpose: blur, noise and stray specks, as generators get it wrong.

Used twice: the sprite encoder learns to tell each damage from clean art (so its features, the evaluation space,
see what an artist sees), and the evaluation checks that its own numbers move when real tiles are damaged this way.
Every function takes (N, 32, 32, 4) uint8 sprites and a numpy Generator and returns new uint8 sprites.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _box3(values: np.ndarray) -> np.ndarray:
    """3x3 mean over the two image axes of (N, H, W, C), edges replicated."""
    padded = np.pad(values, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = values.shape[1:3]
    return sum(padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0


def blur(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft focus: colour and alpha mixed with their 3x3 neighbourhood (premultiplied), by a random amount."""
    x = images.astype(np.float64)
    alpha = x[..., 3:] / 255.0
    premultiplied = np.concatenate([x[..., :3] * alpha, x[..., 3:]], axis=-1)
    strength = rng.uniform(0.5, 1.0, size=(len(images), 1, 1, 1))
    mixed = (1 - strength) * premultiplied + strength * _box3(premultiplied)
    out_alpha = mixed[..., 3:] / 255.0
    colour = np.where(out_alpha > 1e-6, mixed[..., :3] / np.maximum(out_alpha, 1e-6), 0.0)
    out = np.concatenate([colour, mixed[..., 3:]], axis=-1)
    return _finish(out)


def noise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise on the visible colour (standard deviation 6 to 24 of 255)."""
    x = images.astype(np.float64)
    sigma = rng.uniform(6.0, 24.0, size=(len(images), 1, 1, 1))
    x[..., :3] += rng.normal(size=x[..., :3].shape) * sigma
    return _finish(x)


def specks(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Isolated wrong pixels: 3-10% of the visible ones recoloured at random, and a few stray opaque specks."""
    out = images.copy()
    n, h, w, _ = images.shape
    visible = images[..., 3] >= 128
    share = rng.uniform(0.03, 0.10, size=(n, 1, 1))
    wrong = visible & (rng.random((n, h, w)) < share)
    out[wrong, :3] = rng.integers(0, 256, size=(int(wrong.sum()), 3))
    for i in range(n):
        for _ in range(int(rng.integers(2, 7))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            if not visible[i, y, x]:
                out[i, y, x] = (*rng.integers(0, 256, size=3), 255)
    return out


def _finish(values: np.ndarray) -> np.ndarray:
    out = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    out[out[..., 3] == 0] = 0
    return out


DAMAGES: dict[str, Degrade] = {"blurred": blur, "noisy": noise, "specked": specks}
