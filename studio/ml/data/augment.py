"""Seeded augmentations for 32x32 RGBA sprites, chosen per category so that augmented tiles stay plausible.

- flips and 90-degree turns only where the category has no up or no handedness: floor textures may turn any way;
  walls are lit from above (horizontal flips only); items, characters and features stand on the ground with their
  shadow below (horizontal flips only); GUI icons hold arrows, digits and letters (no flips);
- small shifts: textures roll (they tile seamlessly); other sprites move only inside their transparent margin,
  so nothing is ever cut off;
- colour: hue rotation, saturation and brightness jitter in YIQ space, which moves the whole palette together (a
  sprite keeps its number of colours); alpha is never changed except by the geometric moves.

No pixel noise: pixel art is flat colours, and models trained on noised tiles learnt to draw the noise (hundreds of
colours per sprite, speckle).

Everything draws from the ``numpy.random.Generator`` passed in: the same seed gives the same batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


@dataclass(frozen=True)
class AugmentPolicy:
    hflip: bool = True
    vflip: bool = False
    rot90: bool = False
    shift: int = 2  # at most this many pixels each way
    wrap: bool = False  # shift by rolling (seamless textures) instead of inside the transparent margin
    hue: float = 0.06  # at most this fraction of the colour circle
    saturation: float = 0.15  # relative jitter
    brightness: float = 0.1  # relative jitter


POLICIES: dict[str, AugmentPolicy] = {
    "floor": AugmentPolicy(vflip=True, rot90=True, wrap=True),
    "wall": AugmentPolicy(wrap=True),
    "items": AugmentPolicy(),
    "characters": AugmentPolicy(),
    "features": AugmentPolicy(),
    "gui": AugmentPolicy(hflip=False, shift=0),
}
DEFAULT_POLICY = AugmentPolicy()  # for the user's own categories: nothing that could make a sprite implausible


def tile_categories() -> set[str]:
    """Categories whose sprites repeat as tiles (trained with wrap-around shifts): they can be asked to tile."""
    return {name for name, policy in POLICIES.items() if policy.wrap}


def policy_for(category: str, policies: Mapping[str, AugmentPolicy] | None = None) -> AugmentPolicy:
    return (policies or POLICIES).get(category, DEFAULT_POLICY)


def _shift(image: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator) -> np.ndarray:
    if policy.shift <= 0:
        return image
    if policy.wrap:
        dy, dx = rng.integers(-policy.shift, policy.shift + 1, size=2)
        return np.roll(image, (int(dy), int(dx)), axis=(0, 1))
    visible = image[..., 3] > 0
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    if rows.size == 0:
        return image
    height, width = visible.shape
    dy = int(rng.integers(max(-policy.shift, -rows[0]), min(policy.shift, height - 1 - rows[-1]) + 1))
    dx = int(rng.integers(max(-policy.shift, -cols[0]), min(policy.shift, width - 1 - cols[-1]) + 1))
    return np.roll(image, (dy, dx), axis=(0, 1))  # only transparent pixels wrap around


def _recolour(image: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(-policy.hue, policy.hue) * 2.0 * np.pi
    saturation = 1.0 + rng.uniform(-policy.saturation, policy.saturation)
    brightness = 1.0 + rng.uniform(-policy.brightness, policy.brightness)
    cos, sin = np.cos(angle) * saturation, np.sin(angle) * saturation
    turn = np.array([[brightness, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    transform = _YIQ_TO_RGB @ turn @ _RGB_TO_YIQ
    rgb = image[..., :3].astype(np.float64) @ transform.T
    out = image.copy()
    out[..., :3] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    out[out[..., 3] == 0] = 0
    return out


def augment_one(image: np.ndarray, policy: AugmentPolicy, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of a (32, 32, 4) uint8 sprite."""
    out = image
    if policy.hflip and rng.random() < 0.5:
        out = out[:, ::-1]
    if policy.vflip and rng.random() < 0.5:
        out = out[::-1]
    if policy.rot90:
        out = np.rot90(out, int(rng.integers(0, 4)))
    out = _shift(np.ascontiguousarray(out), policy, rng)
    return _recolour(out, policy, rng)


def augment_batch(
    images: np.ndarray,
    labels: np.ndarray,
    categories: Sequence[str],
    rng: np.random.Generator,
    policies: Mapping[str, AugmentPolicy] | None = None,
) -> np.ndarray:
    """Augmented copies of a (N, 32, 32, 4) batch, each with its category's policy."""
    chosen = [policy_for(name, policies) for name in categories]
    return np.stack([augment_one(image, chosen[int(label)], rng) for image, label in zip(images, labels, strict=True)])


def checkerboard(height: int, width: int, square: int = 8) -> np.ndarray:
    """The usual light/dark grey checks behind transparent pixels, as opaque RGBA."""
    ys, xs = np.indices((height, width))
    light = ((ys // square + xs // square) % 2 == 0)[..., None]
    board = np.where(light, np.array([204, 204, 204, 255], np.uint8), np.array([153, 153, 153, 255], np.uint8))
    return board.astype(np.uint8)


def _over_checks(cell: np.ndarray, scale: int) -> np.ndarray:
    big = np.repeat(np.repeat(cell, scale, axis=0), scale, axis=1).astype(np.float64)
    board = checkerboard(*big.shape[:2], square=4 * scale).astype(np.float64)
    alpha = big[..., 3:] / 255.0
    out = board.copy()
    out[..., :3] = big[..., :3] * alpha + board[..., :3] * (1.0 - alpha)
    return np.rint(out).astype(np.uint8)


def augment_preview(
    images: np.ndarray,
    labels: np.ndarray,
    categories: Sequence[str],
    seed: int = 0,
    per_category: int = 2,
    variants: int = 7,
    scale: int = 3,
) -> np.ndarray:
    """A grid: per category ``per_category`` rows of (original | ``variants`` augmented copies), on checks."""
    rng = np.random.default_rng(seed)
    cell = 32 * scale
    gap = 2 * scale
    rows = []
    for index, name in enumerate(categories):
        members = np.flatnonzero(labels == index)
        for member in rng.choice(members, size=min(per_category, len(members)), replace=False):
            policy = policy_for(name)
            copies = [images[member]] + [augment_one(images[member], policy, rng) for _ in range(variants)]
            rows.append([_over_checks(c, scale) for c in copies])
    if not rows:
        raise ValueError("no images to preview")
    width = (variants + 1) * (cell + gap) + gap * 2
    canvas = np.full((len(rows) * (cell + gap) + gap, width, 4), (48, 48, 48, 255), dtype=np.uint8)
    for r, row in enumerate(rows):
        top = gap + r * (cell + gap)
        for c, tile in enumerate(row):
            left = gap + c * (cell + gap) + (gap * 2 if c else 0)  # a wider gap after the original
            canvas[top : top + cell, left : left + cell] = tile
    return canvas
