"""Colour palettes: ``.hex`` (one RRGGBB a line) and GIMP ``.gpl`` files, bundled palettes, automatic palettes.

A palette is an (N, 3) uint8 array, 1 <= N <= 256.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from studio.core import paths
from studio.core.errors import BadInputError
from studio.core.formats.text import read_text
from studio.core.pixel_art import oklab_to_srgb, srgb_to_oklab
from studio.core.safe_write import write_atomic

MAX_COLORS = 256
MAX_PALETTE_BYTES = 1 << 20
SUFFIXES = (".hex", ".gpl")

_HEX_LINE = re.compile(r"#?([0-9a-fA-F]{6})")
_GPL_HEADER = re.compile(r"(Name|Columns)\s*:", re.IGNORECASE)


def load_palette(path: Path) -> np.ndarray:
    """Read a ``.hex`` or ``.gpl`` palette; a bad line raises BadInputError naming the file and the line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInputError(f"{path.name}: palettes must be .hex (one RRGGBB a line) or GIMP .gpl files")
    lines = read_text(path, max_bytes=MAX_PALETTE_BYTES).splitlines()
    colors = _parse_hex(path.name, lines) if suffix == ".hex" else _parse_gpl(path.name, lines)
    if not colors:
        raise BadInputError(f"{path.name} contains no colours")
    if len(colors) > MAX_COLORS:
        raise BadInputError(f"{path.name} has {len(colors)} colours; palettes are limited to {MAX_COLORS}")
    return np.array(colors, dtype=np.uint8).reshape(-1, 3)


def _parse_hex(name: str, lines: list[str]) -> list[tuple[int, int, int]]:
    colors = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        match = _HEX_LINE.fullmatch(line)
        if match is None:
            raise BadInputError(f"{name}, line {number}: {line[:40]!r} is not a colour (expected RRGGBB)")
        value = int(match.group(1), 16)
        colors.append((value >> 16, (value >> 8) & 0xFF, value & 0xFF))
    return colors


def _parse_gpl(name: str, lines: list[str]) -> list[tuple[int, int, int]]:
    if not lines or lines[0].strip() != "GIMP Palette":
        raise BadInputError(f"{name}, line 1: a .gpl palette must start with 'GIMP Palette'")
    colors = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#") or _GPL_HEADER.match(line):
            continue
        parts = line.split(None, 3)
        try:
            rgb = tuple(int(p) for p in parts[:3])
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
            raise BadInputError(f"{name}, line {number}: {line[:40]!r} is not 'R G B [name]' with values 0-255")
        colors.append(rgb)
    return colors


def save_palette(path: Path, colors: np.ndarray, name: str | None = None) -> Path:
    """Write ``colors`` as ``.hex`` or ``.gpl`` (by extension), atomically."""
    path = Path(path)
    colors = _checked_colors(colors)
    suffix = path.suffix.lower()
    if suffix == ".hex":
        text = "".join(f"{r:02x}{g:02x}{b:02x}\n" for r, g, b in colors.tolist())
    elif suffix == ".gpl":
        rows = "".join(f"{r:3d} {g:3d} {b:3d}\t#{r:02x}{g:02x}{b:02x}\n" for r, g, b in colors.tolist())
        text = f"GIMP Palette\nName: {name or path.stem}\nColumns: 8\n#\n{rows}"
    else:
        raise BadInputError(f"{path.name}: save palettes as .hex or .gpl")
    return write_atomic(path, text, f"the palette {path.name}")


def _checked_colors(colors: np.ndarray) -> np.ndarray:
    array = np.asarray(colors)
    if array.ndim != 2 or array.shape[1] not in (3, 4) or not 1 <= len(array) <= MAX_COLORS:
        raise BadInputError(f"a palette is 1 to {MAX_COLORS} RGB colours, got an array of shape {array.shape}")
    return np.clip(array[:, :3], 0, 255).astype(np.uint8)


def bundled_palettes() -> dict[str, Path]:
    """Palettes shipped in ``resources/palettes`` by name (file stem), sorted."""
    folder = paths.resources_dir() / "palettes"
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES}


def auto_palette(rgba: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` colours that summarise the opaque pixels: median cut refined by weighted k-means, both in OKLab
    (a perceptual space: a dark red and a dark brown stay apart where RGB distance would merge them).

    Deterministic; returns fewer than ``n`` colours when the image has fewer distinct ones, and an empty
    (0, 3) array when it has no opaque pixel at all. Sorted dark to light.
    """
    if not 1 <= n <= MAX_COLORS:
        raise BadInputError(f"an automatic palette has 1 to {MAX_COLORS} colours, not {n}")
    pixels = np.asarray(rgba, dtype=np.uint8).reshape(-1, 4)
    opaque = pixels[pixels[:, 3] >= 128, :3]
    if len(opaque) == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    unique, counts = np.unique(opaque, axis=0, return_counts=True)
    if len(unique) <= n:
        return _sorted_by_luma(unique)
    values = srgb_to_oklab(unique)
    weights = counts.astype(np.float64)
    centers = median_cut(values, weights, n)
    for _ in range(6):
        labels = nearest_index(values, centers)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, values * weights[:, None])
        totals = np.bincount(labels, weights=weights, minlength=len(centers))
        used = totals > 0
        centers[used] = sums[used] / totals[used, None]
    palette = np.unique(np.rint(oklab_to_srgb(centers)).astype(np.uint8), axis=0)
    return _sorted_by_luma(palette)


def median_cut(values: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Variance-driven median cut: split the box with the largest squared error at its weighted mean (each box's
    error is computed once, when it is made)."""
    boxes = [np.arange(len(values))]
    errors = [_box_error(values, weights)]
    while len(boxes) < n:
        pick = int(np.argmax([e.sum() for e in errors]))
        if errors[pick].sum() <= 0:
            break
        box, error = boxes.pop(pick), errors.pop(pick)
        column = values[box, int(np.argmax(error))]
        low = column <= np.dot(column, weights[box]) / weights[box].sum()
        halves = [box[low], box[~low]]
        boxes[pick:pick] = halves
        errors[pick:pick] = [_box_error(values[h], weights[h]) for h in halves]
    return np.array([np.dot(weights[b], values[b]) / weights[b].sum() for b in boxes])


def _box_error(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted squared error per channel of one box."""
    mean = weights @ values / weights.sum()
    return weights @ (values - mean) ** 2


def nearest_index(values: np.ndarray, centers: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean) for each row of ``values``, in bounded memory."""
    values = np.asarray(values, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    out = np.empty(len(values), dtype=np.int64)
    center_norms = (centers**2).sum(axis=1)
    for start in range(0, len(values), chunk):
        block = values[start : start + chunk]
        distances = center_norms[None, :] - 2.0 * block @ centers.T
        out[start : start + chunk] = np.argmin(distances, axis=1)
    return out


def _sorted_by_luma(colors: np.ndarray) -> np.ndarray:
    luma = colors.astype(np.int64) @ np.array([299, 587, 114])
    order = np.lexsort((colors[:, 2], colors[:, 1], colors[:, 0], luma))
    return np.ascontiguousarray(colors[order])
