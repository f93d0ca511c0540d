"""Turning pieces of images into dataset cells: 32x32 RGBA, hidden colour cleared, empty cells refused.

Rules for a piece that is not 32x32 (documented for the importer and the crawl builder alike):
- an integer multiple or fraction of the cell (16x16, 64x64, 8x8, 96x96: the same factor on both sides) is scaled
  with nearest neighbour, the only scaling that keeps pixel art crisp;
- anything else has its transparent margins trimmed and is centred on a transparent cell if it then fits;
- a piece still larger than the cell is refused (it would have to be cropped or blurred).
"""

from __future__ import annotations

import hashlib

import numpy as np

CELL = 32
SOLID_ALPHA = 128  # a pixel at least this opaque counts as drawn
MIN_SOLID_PIXELS = 24  # fewer drawn pixels than this is a speck, not a sprite
TOO_LARGE = "larger than the cell even after trimming, and not an integer multiple of it"


def clear_hidden_colour(rgba: np.ndarray) -> np.ndarray:
    """Colour under fully transparent pixels is invisible: zero it so equal-looking cells are equal arrays."""
    out = np.array(rgba, dtype=np.uint8, copy=True)
    out[out[..., 3] == 0] = 0
    return out


def trim(rgba: np.ndarray) -> np.ndarray:
    """The piece cut to the bounding box of its non-transparent pixels (empty input stays as it is)."""
    visible = rgba[..., 3] > 0
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    if rows.size == 0:
        return rgba
    return rgba[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def centre(rgba: np.ndarray, size: int = CELL) -> np.ndarray:
    """A transparent ``size`` x ``size`` cell with the piece in the middle (it must fit)."""
    height, width = rgba.shape[:2]
    cell = np.zeros((size, size, 4), dtype=np.uint8)
    top, left = (size - height) // 2, (size - width) // 2
    cell[top : top + height, left : left + width] = rgba
    return cell


def integer_scale(rgba: np.ndarray, size: int = CELL) -> np.ndarray | None:
    """Nearest-neighbour scaled to ``size`` when the piece is square with an integer factor, else None."""
    height, width = rgba.shape[:2]
    if height != width:
        return None
    if height > size and height % size == 0:
        step = height // size
        return rgba[step // 2 :: step, step // 2 :: step]
    if height < size and size % height == 0:
        factor = size // height
        return np.repeat(np.repeat(rgba, factor, axis=0), factor, axis=1)
    return None


def fit_to_cell(rgba: np.ndarray, size: int = CELL) -> tuple[np.ndarray | None, str]:
    """``(cell, "")`` or ``(None, reason)`` for one piece, following the rules in the module docstring."""
    if rgba.shape[:2] == (size, size):
        return clear_hidden_colour(rgba), ""
    scaled = integer_scale(rgba, size)
    if scaled is not None:
        return clear_hidden_colour(scaled), ""
    trimmed = trim(rgba)
    height, width = trimmed.shape[:2]
    if height > size or width > size:
        return None, TOO_LARGE
    return clear_hidden_colour(centre(trimmed, size)), ""


def emptiness(cell: np.ndarray) -> str:
    """Why a cell is unusable as a sprite ("" when it is fine)."""
    solid = int((cell[..., 3] >= SOLID_ALPHA).sum())
    if not cell[..., 3].any():
        return "fully transparent"
    if solid < MIN_SOLID_PIXELS:
        return f"nearly empty (fewer than {MIN_SOLID_PIXELS} opaque pixels)"
    return ""


def cell_hash(cell: np.ndarray) -> str:
    """Identity of a cell's visible content (hidden colour does not count)."""
    return hashlib.sha1(clear_hidden_colour(cell).tobytes()).hexdigest()


def slice_grid(rgba: np.ndarray, grid: int) -> list[tuple[int, int, np.ndarray]]:
    """``(row, column, piece)`` for each ``grid`` x ``grid`` cell of a sheet whose sides are multiples of ``grid``."""
    height, width = rgba.shape[:2]
    return [
        (r, c, rgba[r * grid : (r + 1) * grid, c * grid : (c + 1) * grid])
        for r in range(height // grid)
        for c in range(width // grid)
    ]
