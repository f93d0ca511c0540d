"""What a pixel artist sees in a sprite, measured: colours, speckle, shapes, fragments, outline and seams.

Every measure takes (N, H, W, 4) uint8 sprites and returns one value per sprite, so a set can be summarised by
median or mean and compared with real tiles of the same category. Definitions (also in the model cards):

- **opaque**: alpha of at least 128 (what a game engine would draw with alpha snapped).
- **colours**: distinct RGB values among the opaque pixels.
- **speckle**: the share of opaque pixels (with at least one opaque 8-neighbour) whose colour is unlike *every*
  opaque 8-neighbour: further than :data:`UNLIKE` apart in OKLab, about three times a just-noticeable difference.
  Hand-drawn pixel art has some (single highlight pixels, dithering); noise has many.
- **shapes**: 8-connected groups of opaque pixels; **fragments**: shapes of fewer than :data:`FRAGMENT_PIXELS`
  pixels (stray specks around a sprite).
- **outline**: the share of silhouette pixels (opaque, next to a transparent pixel or the border, 4-neighbourhood)
  that are clearly darker than the sprite's median opaque colour (OKLab lightness lower by :data:`OUTLINE_DARKER`);
  NaN for a sprite without a transparent edge (floor and wall textures).
- **seam**: for textures meant to tile, the mean OKLab step across the wrap-around edges (right column to left
  column, bottom row to top row) over the mean step between neighbouring columns and rows inside; about 1 for a
  tile that repeats seamlessly, well above 1 when the edges do not meet.
"""

from __future__ import annotations

import numpy as np

OPAQUE = 128
UNLIKE = 0.06
FRAGMENT_PIXELS = 4
OUTLINE_DARKER = 0.12
_NEIGHBOURS_8 = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
_NEIGHBOURS_4 = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """sRGB values in 0..255 (any leading shape, last axis 3) to OKLab (L in 0..1)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lms = linear @ np.array(
        [[0.4122214708, 0.2119034982, 0.0883024619],
         [0.5363325363, 0.6806995451, 0.2817188376],
         [0.0514459929, 0.1073969566, 0.6299787005]]
    )
    return np.cbrt(lms) @ np.array(
        [[0.2104542553, 1.9779984951, 0.0259040371],
         [0.7936177850, -2.4285922050, 0.7827717662],
         [-0.0040720468, 0.4505937099, -0.8086757660]]
    )


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """OKLab back to sRGB 0..255 (float, clipped to the gamut)."""
    lab = np.asarray(lab, dtype=np.float64)
    lms_root = lab @ np.linalg.inv(np.array(
        [[0.2104542553, 1.9779984951, 0.0259040371],
         [0.7936177850, -2.4285922050, 0.7827717662],
         [-0.0040720468, 0.4505937099, -0.8086757660]]
    ))
    linear = (lms_root**3) @ np.linalg.inv(np.array(
        [[0.4122214708, 0.2119034982, 0.0883024619],
         [0.5363325363, 0.6806995451, 0.2817188376],
         [0.0514459929, 0.1073969566, 0.6299787005]]
    ))
    linear = np.clip(linear, 0.0, 1.0)
    c = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(c * 255.0, 0.0, 255.0)


def _batch(sprites: np.ndarray) -> np.ndarray:
    array = np.asarray(sprites)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 4 or array.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 4) uint8 sprites, got {array.dtype} {array.shape}")
    return array


def _shifted(values: np.ndarray, dy: int, dx: int, fill: float | bool, wrap: bool) -> np.ndarray:
    """``values`` (N, H, W, ...) moved so that out[y, x] = values[y + dy, x + dx] (``fill`` outside, or wrapped)."""
    if wrap:
        return np.roll(values, (-dy, -dx), axis=(1, 2))
    out = np.full_like(values, fill)
    h, w = values.shape[1:3]
    ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
    xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
    out[:, yd, xd] = values[:, ys, xs]
    return out


def opaque_mask(sprites: np.ndarray) -> np.ndarray:
    return _batch(sprites)[..., 3] >= OPAQUE


def colour_counts(sprites: np.ndarray) -> np.ndarray:
    """Distinct RGB colours among each sprite's opaque pixels."""
    sprites = _batch(sprites)
    mask = opaque_mask(sprites)
    packed = (sprites[..., 0].astype(np.int64) << 16) | (sprites[..., 1].astype(np.int64) << 8) | sprites[..., 2]
    return np.array([len(np.unique(p[m])) for p, m in zip(packed, mask, strict=True)])


def speckle(sprites: np.ndarray, wrap: bool = False) -> np.ndarray:
    """Share of opaque pixels unlike every opaque 8-neighbour (NaN for a sprite with no such neighbours)."""
    sprites = _batch(sprites)
    mask = opaque_mask(sprites)
    lab = srgb_to_oklab(sprites[..., :3])
    has_neighbour = np.zeros_like(mask)
    like_one = np.zeros_like(mask)
    for dy, dx in _NEIGHBOURS_8:
        other = _shifted(mask, dy, dx, False, wrap)
        near = np.linalg.norm(lab - _shifted(lab, dy, dx, 0.0, wrap), axis=-1) <= UNLIKE
        has_neighbour |= other
        like_one |= other & near
    counted = mask & has_neighbour
    lonely = counted & ~like_one
    total = counted.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, lonely.sum(axis=(1, 2)) / total, np.nan)


def label_shapes(mask: np.ndarray, wrap: bool = False) -> np.ndarray:
    """8-connected labels of ``mask`` (N, H, W) bool: 0 for background, shapes numbered from 1 per sprite.

    Union by hooking and pointer jumping on the flattened pixels (a handful of vectorised rounds for any shape)."""
    n, h, w = mask.shape
    flat = mask.reshape(-1)
    index = np.arange(flat.size).reshape(n, h, w)
    sources, targets = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each neighbouring pair once
        other = _shifted(index, dy, dx, -1, wrap)
        valid = mask & (other >= 0)
        valid[valid] &= flat[other[valid]]
        sources.append(index[valid])
        targets.append(other[valid])
    a, b = np.concatenate(sources), np.concatenate(targets)
    parent = np.arange(flat.size)
    while True:
        low = np.minimum(parent[a], parent[b])
        changed = False
        for side in (a, b):
            roots = parent[side]
            hook = low < roots
            if hook.any():
                np.minimum.at(parent, roots[hook], low[hook])
                changed = True
        while True:  # pointer jumping: every pixel points at its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        if not changed:
            break
    roots = parent.reshape(n, h, w)
    out = np.zeros((n, h, w), dtype=np.int32)
    for i in range(n):
        values = roots[i][mask[i]]
        if values.size:
            _, dense = np.unique(values, return_inverse=True)
            out[i][mask[i]] = dense + 1
    return out


def shape_sizes(sprites: np.ndarray, wrap: bool = False) -> list[np.ndarray]:
    """For each sprite, the pixel count of each of its opaque shapes."""
    labels = label_shapes(opaque_mask(sprites), wrap)
    return [np.bincount(row[row > 0].ravel())[1:] for row in labels]


def shape_counts(sprites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shapes, fragments) per sprite: all opaque shapes, and those under FRAGMENT_PIXELS pixels."""
    sizes = shape_sizes(sprites)
    return np.array([len(s) for s in sizes]), np.array([int((s < FRAGMENT_PIXELS).sum()) for s in sizes])


def outline_share(sprites: np.ndarray) -> np.ndarray:
    """Share of silhouette pixels clearly darker than the sprite's median opaque colour (NaN: no silhouette)."""
    sprites = _batch(sprites)
    mask = opaque_mask(sprites)
    lightness = srgb_to_oklab(sprites[..., :3])[..., 0]
    transparent_edge = np.zeros_like(mask)
    for dy, dx in _NEIGHBOURS_4:
        shifted = _shifted(mask, dy, dx, True, wrap=False)  # the border counts as opaque here
        transparent_edge |= ~shifted
    silhouette = mask & transparent_edge
    out = np.full(len(sprites), np.nan)
    for i in range(len(sprites)):
        if silhouette[i].any() and mask[i].sum() > silhouette[i].sum():
            median = np.median(lightness[i][mask[i]])
            out[i] = float((lightness[i][silhouette[i]] < median - OUTLINE_DARKER).mean())
    return out


def seam_ratio(sprites: np.ndarray) -> np.ndarray:
    """Wrap-around step over inner step, per sprite (see the module docstring); NaN for a flat sprite and for one
    with transparent pixels (a sprite that stands alone, not a tile)."""
    sprites = _batch(sprites)
    lab = srgb_to_oklab(sprites[..., :3])
    inner_x = np.linalg.norm(lab[:, :, 1:] - lab[:, :, :-1], axis=-1).mean(axis=(1, 2))
    inner_y = np.linalg.norm(lab[:, 1:] - lab[:, :-1], axis=-1).mean(axis=(1, 2))
    seam_x = np.linalg.norm(lab[:, :, 0] - lab[:, :, -1], axis=-1).mean(axis=1)
    seam_y = np.linalg.norm(lab[:, 0] - lab[:, -1], axis=-1).mean(axis=1)
    inner = (inner_x + inner_y) / 2
    tile = opaque_mask(sprites).all(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((inner > 1e-9) & tile, (seam_x + seam_y) / 2 / inner, np.nan)


def pixel_art_measures(sprites: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-sprite measure at once (the evaluation's artist columns)."""
    shapes, fragments = shape_counts(sprites)
    return {
        "colours": colour_counts(sprites),
        "speckle": speckle(sprites),
        "shapes": shapes,
        "fragments": fragments,
        "outline": outline_share(sprites),
        "seam": seam_ratio(sprites),
    }
