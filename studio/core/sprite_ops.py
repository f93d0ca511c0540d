"""Sprite post-processing on HxWx4 uint8 arrays: palettes, quantisation, outline, background removal, fills.

Pure numpy; every function returns a new array and leaves its input untouched.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

import numpy as np

from studio.core.errors import BadInputError
from studio.core.formats.palette import MAX_COLORS, auto_palette, bundled_palettes, load_palette, nearest_index
from studio.core.pixel_art import srgb_to_oklab

AUTO_PALETTE = re.compile(r"auto-(\d+)")
MAX_UPSCALE = 64


def check_rgba(rgba: np.ndarray) -> np.ndarray:
    """The array as HxWx4 uint8, or BadInputError saying what it is instead."""
    array = np.asarray(rgba)
    if array.ndim != 3 or array.shape[2] != 4 or array.dtype != np.uint8 or 0 in array.shape:
        raise BadInputError(f"expected an RGBA image (HxWx4 uint8), got {array.dtype} array of shape {array.shape}")
    return array


def resolve_palette(spec: str, rgba: np.ndarray | None = None) -> np.ndarray | None:
    """``"none"`` -> None; ``"auto-N"`` -> N colours from ``rgba``; a bundled palette name or a .hex/.gpl path."""
    spec = (spec or "none").strip()
    if spec.lower() == "none":
        return None
    match = AUTO_PALETTE.fullmatch(spec.lower())
    if match:
        n = int(match.group(1))
        if not 2 <= n <= MAX_COLORS:
            raise BadInputError(f"palette {spec!r}: automatic palettes have 2 to {MAX_COLORS} colours")
        if rgba is None:
            raise BadInputError(f"palette {spec!r} needs an image to take its colours from")
        return auto_palette(check_rgba(rgba), n)
    bundled = bundled_palettes()
    if spec in bundled:
        return load_palette(bundled[spec])
    path = Path(spec).expanduser()
    if path.suffix.lower() not in (".hex", ".gpl"):
        known = ", ".join(["none", "auto-N", *bundled]) or "none, auto-N"
        raise BadInputError(f"unknown palette {spec!r}: use one of {known}, or a .hex/.gpl file")
    return load_palette(path)


def quantize(rgba: np.ndarray, palette: np.ndarray, alpha_threshold: int = 128) -> np.ndarray:
    """Every opaque pixel becomes its nearest palette colour (in OKLab); alpha becomes 0 or 255."""
    rgba = check_rgba(rgba)
    colors = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    out = snap_alpha(rgba, alpha_threshold)
    opaque = out[..., 3] == 255
    if not opaque.any():
        return out
    if len(colors) == 0:
        raise BadInputError("the palette is empty")
    unique, inverse = np.unique(out[opaque][:, :3], axis=0, return_inverse=True)
    nearest = nearest_index(srgb_to_oklab(unique), srgb_to_oklab(colors))
    out[opaque, :3] = colors[nearest][inverse.reshape(-1)]
    return out


def snap_alpha(rgba: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Pixel-grid snap: alpha >= threshold becomes 255, the rest fully transparent (RGB cleared too)."""
    out = check_rgba(rgba).copy()
    keep = out[..., 3] >= threshold
    out[..., 3] = np.where(keep, 255, 0)
    out[~keep] = 0
    return out


def _neighbours4(mask: np.ndarray) -> np.ndarray:
    """Pixels with at least one 4-neighbour set in ``mask`` (image edges count as unset)."""
    grown = np.zeros_like(mask)
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def outline(rgba: np.ndarray, color: tuple[int, int, int, int] = (0, 0, 0, 255)) -> np.ndarray:
    """A 1-px outline outside the shape: transparent pixels touching an opaque one (4-neighbour) get ``color``."""
    rgba = check_rgba(rgba)
    solid = rgba[..., 3] > 0
    ring = _neighbours4(solid) & ~solid
    out = rgba.copy()
    out[ring] = np.asarray(color, dtype=np.uint8)
    return out


def flood_mask(similar: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Pixels of ``similar`` 4-connected to a seed (both HxW bool); a seed outside ``similar`` grows nothing."""
    height, width = similar.shape
    reached = np.zeros_like(similar, dtype=bool)
    flat_similar = similar.reshape(-1)
    flat_reached = reached.reshape(-1)
    start = np.flatnonzero((seeds & similar).reshape(-1))
    flat_reached[start] = True
    queue = deque(start.tolist())
    while queue:
        i = queue.popleft()
        y, x = divmod(i, width)
        for j, ok in ((i - width, y > 0), (i + width, y < height - 1), (i - 1, x > 0), (i + 1, x < width - 1)):
            if ok and flat_similar[j] and not flat_reached[j]:
                flat_reached[j] = True
                queue.append(j)
    return reached


def _close_to(rgba: np.ndarray, color: np.ndarray, tolerance: int) -> np.ndarray:
    difference = np.abs(rgba.astype(np.int16) - color.astype(np.int16)).max(axis=2)
    return difference <= tolerance


def fill_region(rgba: np.ndarray, x: int, y: int) -> np.ndarray:
    """The HxW mask a bucket fill at (x, y) covers: same exact RGBA, 4-connected."""
    rgba = check_rgba(rgba)
    height, width = rgba.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        raise BadInputError(f"({x}, {y}) is outside the {width}x{height} image")
    seeds = np.zeros((height, width), dtype=bool)
    seeds[y, x] = True
    return flood_mask(_close_to(rgba, rgba[y, x], 0), seeds)


def remove_background(rgba: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Clear the background: the most common border colour, flooded inwards from the border within ``tolerance``."""
    rgba = check_rgba(rgba)
    if not 0 <= tolerance <= 255:
        raise BadInputError(f"tolerance must be 0-255, not {tolerance}")
    border = np.zeros(rgba.shape[:2], dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    edge_colors, counts = np.unique(rgba[border], axis=0, return_counts=True)
    background = edge_colors[int(np.argmax(counts))]
    out = rgba.copy()
    if background[3] == 0:
        return out
    region = flood_mask(_close_to(rgba, background, tolerance), border)
    out[region] = 0
    return out


def upscale(rgba: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor (pixel art is never resampled smoothly)."""
    rgba = check_rgba(rgba)
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or not 1 <= factor <= MAX_UPSCALE:
        raise BadInputError(f"scale factor must be a whole number from 1 to {MAX_UPSCALE}, not {factor!r}")
    return np.repeat(np.repeat(rgba, factor, axis=0), factor, axis=1)
