"""Recovering the sprites of a *packed* atlas, where trimmed sprites sit edge to edge without a grid.

Dungeon Crawl's tile sheets (``main.png``, ``player.png``, ``feat.png``, ``gui.png``) are written by its
``rltiles`` packer: every tile is cut to its bounding box, then placed in shelves (bands) left to right, with short
tiles stacked in columns inside a band. Slicing such a sheet on a 32 px grid cuts most sprites in two.

The packer leaves a trace in the alpha channel. Two neighbouring tiles both reach the line they share (each
touches its own bounding box), but few of their pixels touch each other across it; inside a sprite, neighbouring
lines are mostly connected. So a cut is scored by the share of opaque pixels that touch the other side
(8-connectivity): low between tiles, near 1 through a sprite. Where no cut scores low that way, a second score
looks three lines further on each side: two sprites that meet at a point widen away from the cut on both sides,
while a thin part of one sprite (a blade, a chain) stays thin on one side. A fully transparent line is never a
boundary (the packer leaves no gaps), only a gap inside one sprite.

The sheet is cut into bands, bands into columns, columns into stacked tiles, each time at the best-scored cut
within one grid step of the last (within two when there is none: tall tiles exist). Pieces that still hold two
sprites are split once more at a very clean cut, or, when larger than the grid, at their weakest one unless it
goes through a sprite (then it is a sprite larger than the grid).

Runs of fully opaque tiles (framed GUI icons) carry no alpha trace; there the tile width is estimated from the
repetition of the colours along the run (starting from the boundary found before it), else the grid size.

The result is good, not perfect: on the crawl sheets a few percent of sprites lose a sliver or come out as two
sprites in one cell (visible in the sheets' mosaics), far fewer than the majority a grid slicer would cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOUNDARY_RATIO = 0.35  # above this share of touching pixels a cut goes through a sprite, not between two
PERIODIC_RATIO = 0.85  # an opaque run repeats when shifting it by the pitch changes it this much less than usual
FORCED_RATIO = 0.6  # an oversized piece is split only where fewer than this share of pixels touch across
SPLIT_RATIO = 0.15  # a piece within the grid is split again only at a cut this clean
MIN_PART_PIXELS = 24  # ... and only when both parts hold at least this many pixels
MIN_SPAN = 3  # no tile is thinner than this
REACH = 3  # lines on each side of a cut that show whether both sides widen away from it


@dataclass(frozen=True)
class Rect:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class CutProfile:
    """For every cut position i (between lines i - 1 and i) along axis 0 of a mask; index 0 is never a cut.

    Scores are ``inf`` where a facing line is empty. ``touch``: touching pairs over the fuller facing line.
    ``valley``: touching pairs over the widest line of the narrower side within :data:`REACH` lines.
    """

    touch: np.ndarray
    valley: np.ndarray
    opaque: np.ndarray  # opaque pixels per line


def cut_profile(mask: np.ndarray) -> CutProfile:
    """Score every cut of ``mask`` along axis 0 (see the module docstring)."""
    upper, lower = mask[:-1], mask[1:]
    padded = np.pad(lower, ((0, 0), (1, 1)))
    touching = padded[:, :-2] | padded[:, 1:-1] | padded[:, 2:]
    contacts = (upper & touching).sum(axis=1)
    opaque = mask.sum(axis=1)
    widest = np.lib.stride_tricks.sliding_window_view(np.pad(opaque, REACH), REACH).max(axis=1)
    before = widest[1 : len(opaque)]  # the REACH lines before each cut
    after = widest[REACH + 1 : REACH + len(opaque)]  # the REACH lines after it
    both = (opaque[:-1] > 0) & (opaque[1:] > 0)

    def scored(scale: np.ndarray) -> np.ndarray:
        return np.concatenate(([np.inf], np.where(both, contacts / np.maximum(scale, 1), np.inf)))

    return CutProfile(scored(np.maximum(opaque[:-1], opaque[1:])), scored(np.minimum(before, after)), opaque)


def opaque_run_pitch(lines: np.ndarray, grid: int) -> int | None:
    """The tile width of a run of opaque tiles (``lines``: L x K x C along the run), if it repeats.

    The pitch is the shift that changes the run least; it counts only when that change is clearly below the
    typical one (framed icons repeat their frames and backgrounds, however different their pictures).
    """
    lines = lines[: 8 * grid].astype(np.float32)
    if len(lines) < 2 * grid:
        return None
    pitches = range(max(MIN_SPAN, grid // 2), grid + 1)
    diffs = np.array([np.abs(lines[p:] - lines[:-p]).mean() for p in pitches])
    best = int(np.argmin(diffs))
    return pitches[best] if diffs[best] <= PERIODIC_RATIO * float(np.median(diffs)) else None


def _next_cut(profile: CutProfile, pos: int, end: int, grid: int) -> int | None:
    """The best boundary after ``pos``: within one grid step, else within two; None inside an opaque run.

    The touching share decides first; only where it finds no boundary does the valley score, which also parts
    sprites that meet at a point but would cut thin links inside a sprite more often.
    """
    for lo, hi in ((pos + MIN_SPAN, pos + grid), (pos + grid + 1, pos + 2 * grid)):
        hi = min(hi, end - 1)
        for scores in (profile.touch, profile.valley) if hi >= lo else ():
            cut = lo + int(np.argmin(scores[lo : hi + 1]))
            if scores[cut] <= BOUNDARY_RATIO:
                return cut
        if end - pos <= grid:
            return end
    return None


def split_axis(mask: np.ndarray, colours: np.ndarray, grid: int) -> list[tuple[int, int]]:
    """Spans ``[start, stop)`` along axis 0 holding one packed tile (or shelf) each; empty lines trimmed."""
    opaque = mask.any(axis=1)
    filled = np.flatnonzero(opaque)
    if filled.size == 0:
        return []
    profile = cut_profile(mask)
    pos, end = int(filled[0]), int(filled[-1]) + 1
    spans = []
    pitch = None  # of the opaque run being cut, once measured
    while pos < end:
        cut = _next_cut(profile, pos, end, grid)
        if cut is None:
            pitch = opaque_run_pitch(colours[pos:end], grid) or pitch
            cut = min(end, pos + (pitch or grid))
        else:
            pitch = None
        spans.append((pos, cut))
        pos = cut
        while pos < end and not opaque[pos]:
            pos += 1
    return spans


def _trim(mask: np.ndarray, rect: Rect) -> Rect | None:
    piece = mask[rect.y0 : rect.y1, rect.x0 : rect.x1]
    rows, cols = np.flatnonzero(piece.any(axis=1)), np.flatnonzero(piece.any(axis=0))
    if rows.size == 0:
        return None
    return Rect(rect.x0 + int(cols[0]), rect.y0 + int(rows[0]), rect.x0 + int(cols[-1]) + 1,
                rect.y0 + int(rows[-1]) + 1)


def _halves(rect: Rect, across: bool, cut: int) -> tuple[Rect, Rect]:
    if across:
        return Rect(rect.x0, rect.y0, rect.x0 + cut, rect.y1), Rect(rect.x0 + cut, rect.y0, rect.x1, rect.y1)
    return Rect(rect.x0, rect.y0, rect.x1, rect.y0 + cut), Rect(rect.x0, rect.y0 + cut, rect.x1, rect.y1)


def _weakest_cut(piece: np.ndarray, lo: int, hi: int, min_part: int) -> tuple[float, int]:
    """The lowest-scored cut in ``[lo, hi]`` leaving at least ``min_part`` opaque pixels on each side."""
    profile = cut_profile(piece)
    before = np.cumsum(profile.opaque)
    best, where = np.inf, -1
    for cut in range(max(lo, 1), min(hi, len(profile.opaque) - 1) + 1):
        sides_ok = before[cut - 1] >= min_part and before[-1] - before[cut - 1] >= min_part
        if sides_ok and profile.touch[cut] < best:
            best, where = float(profile.touch[cut]), cut
    return best, where


def _refine(mask: np.ndarray, rect: Rect, grid: int) -> list[Rect]:
    """Split a piece that still holds two sprites: one larger than the grid at its weakest cut (unless that
    cuts through a sprite: then it is one big sprite), one within the grid only at a clear boundary."""
    piece = mask[rect.y0 : rect.y1, rect.x0 : rect.x1]
    oversized = rect.width > grid or rect.height > grid
    options = []
    for across in (True, False):
        length = rect.width if across else rect.height
        lines = piece.T if across else piece
        if oversized and length > grid:
            score, cut = _weakest_cut(lines, MIN_SPAN, grid, 1)
            if score <= FORCED_RATIO:
                options.append((score, across, cut))
        elif not oversized:
            score, cut = _weakest_cut(lines, MIN_SPAN, length - MIN_SPAN, MIN_PART_PIXELS)
            if score <= SPLIT_RATIO:
                options.append((score, across, cut))
    if not options:
        return [rect]
    _, across, cut = min(options)
    return [part for half in _halves(rect, across, cut) if (t := _trim(mask, half)) for part in _refine(mask, t, grid)]


def segment_packed_sheet(rgba: np.ndarray, grid: int = 32) -> list[Rect]:
    """Bounding boxes of the sprites of a packed RGBA sheet, in packing order (shelf, column, stack).

    Boxes larger than ``grid`` remain where a sprite really is larger; the caller decides what to do with them.
    """
    mask = rgba[..., 3] > 0
    rects = []
    for y0, y1 in split_axis(mask, rgba, grid):
        band, band_rgba = mask[y0:y1], rgba[y0:y1]
        for x0, x1 in split_axis(band.T, band_rgba.transpose(1, 0, 2), grid):
            column, column_rgba = band[:, x0:x1], band_rgba[:, x0:x1]
            for s0, s1 in split_axis(column, column_rgba, grid):
                piece = _trim(mask, Rect(x0, y0 + s0, x1, y0 + s1))
                if piece is not None:
                    rects.extend(_refine(mask, piece, grid))
    return rects
