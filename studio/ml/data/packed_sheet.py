"""Recovering the sprites of a *packed* atlas, where trimmed sprites sit edge to edge without a grid.

Dungeon Crawl's tile sheets (``main.png``, ``player.png``, ``feat.png``, ``gui.png``) are written by its
``rltiles`` packer: every tile is cut to its bounding box, then placed in shelves (bands) left to right, with short
tiles stacked in columns inside a band. Slicing such a sheet on a 32 px grid cuts most sprites in two.

The packer leaves a trace we can read from the alpha channel alone. Between two neighbouring tiles both facing
lines hold opaque pixels (each tile touches its own bounding box), but few of those pixels touch each other; inside
a sprite, neighbouring lines are mostly connected. So a cut is scored by the share of opaque pixels that touch the
other side (8-connectivity): low at tile boundaries, near 1 inside a sprite. A fully transparent line is never a
boundary (the packer leaves no gaps), only a gap inside one sprite. The sheet is cut into bands, bands into
columns, columns into stacked tiles, always taking the best-scored cut within one grid step (or, if a much better
one lies within two, that one: tall sprites and shelves exist).

Runs of fully opaque tiles (framed GUI icons) carry no alpha trace; there the tile pitch is estimated from the
repetition of the colours along the run, falling back to the grid size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOUNDARY_RATIO = 0.35  # above this share of touching pixels a cut goes through a sprite, not between two
FAR_CUT_ADVANTAGE = 0.5  # a cut beyond one grid step must score at most this fraction of the best near one
PERIODIC_RATIO = 0.85  # an opaque run repeats when shifting it by the pitch changes it this much less than usual
FORCED_RATIO = 0.6  # an oversized piece is split only where fewer than this share of pixels touch across
MIN_SPAN = 3  # no tile is thinner than this
CONTEXT = 3  # lines on each side of a cut that set the scale of its score


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


def cut_scores(mask: np.ndarray, reach: int = CONTEXT) -> np.ndarray:
    """Score of a cut before each line of ``mask`` (axis 0), ``inf`` where a facing line is empty.

    The score is the number of touching pixel pairs across the cut over the widest line within ``reach`` lines
    on either side: two round sprites that touch at one point score low even though their facing lines are
    nearly empty, while a cut through a sprite scores near 1 however thin the sprite is there.
    """
    upper, lower = mask[:-1], mask[1:]
    padded = np.pad(lower, ((0, 0), (1, 1)))
    touching = padded[:, :-2] | padded[:, 1:-1] | padded[:, 2:]
    contacts = (upper & touching).sum(axis=1)
    opaque = mask.sum(axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(opaque, reach - 1), 2 * reach)
    widest = np.maximum(windows.max(axis=1), 1)  # widest[i]: lines i - reach + 1 .. i + reach, cut before i + 1
    both = (opaque[:-1] > 0) & (opaque[1:] > 0)
    scores = np.where(both, contacts / widest[: len(contacts)], np.inf)
    return np.concatenate(([np.inf], scores))


def opaque_run_cut(lines: np.ndarray, grid: int) -> int:
    """Where the first tile of a run of opaque tiles ends (``lines``: L x K x C along the run).

    The pitch is the shift that best repeats the run; the phase puts the cuts on the strongest colour edges (the
    frames of framed icons). A run that does not repeat is cut on the grid.
    """
    lines = lines[: 8 * grid].astype(np.float32)
    if len(lines) < 2 * grid:
        return grid
    pitches = range(max(MIN_SPAN, grid // 2), grid + 1)
    diffs = np.array([np.abs(lines[p:] - lines[:-p]).mean() for p in pitches])
    best = int(np.argmin(diffs))
    if not diffs[best] <= PERIODIC_RATIO * float(np.median(diffs)):
        return grid
    pitch = pitches[best]
    edges = np.abs(lines[1:] - lines[:-1]).mean(axis=(1, 2))  # edges[i - 1]: change before line i
    phases = [float(edges[phase - 1 :: pitch].mean()) for phase in range(1, pitch + 1)]
    phase = 1 + int(np.argmax(phases))
    return phase if phase >= MIN_SPAN else phase + pitch


def _next_cut(scores: np.ndarray, pos: int, end: int, grid: int) -> int | None:
    """The best boundary after ``pos``: within one grid step, or a much better one within two."""

    def best_in(lo: int, hi: int) -> tuple[float, int]:
        hi = min(hi, end - 1)
        if hi < lo:
            return np.inf, -1
        index = int(np.argmin(scores[lo : hi + 1]))
        return float(scores[lo + index]), lo + index

    near_score, near = best_in(pos + MIN_SPAN, pos + grid)
    if near_score <= BOUNDARY_RATIO:
        return near
    if end - pos <= grid:
        return end
    far_score, far = best_in(pos + grid + 1, pos + 2 * grid)
    if far_score <= BOUNDARY_RATIO:
        return far
    return None


def split_axis(mask: np.ndarray, colours: np.ndarray, grid: int) -> list[tuple[int, int]]:
    """Spans ``[start, stop)`` along axis 0 holding one packed tile (or shelf) each; empty lines trimmed."""
    opaque = mask.any(axis=1)
    filled = np.flatnonzero(opaque)
    if filled.size == 0:
        return []
    scores = cut_scores(mask)
    pos, end = int(filled[0]), int(filled[-1]) + 1
    spans = []
    while pos < end:
        cut = _next_cut(scores, pos, end, grid)
        if cut is None:
            cut = min(end, pos + opaque_run_cut(colours[pos:end], grid))
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


def _split_oversized(mask: np.ndarray, rect: Rect, grid: int) -> list[Rect]:
    """Split a piece larger than the grid (two tiles the first pass could not part) at its weakest cut.

    A piece whose best cut still goes through a sprite is returned whole: a sprite bigger than the grid.
    """
    if rect.width <= grid and rect.height <= grid:
        return [rect]
    piece = mask[rect.y0 : rect.y1, rect.x0 : rect.x1]
    across = rect.width > grid
    scores = cut_scores(piece.T if across else piece)[MIN_SPAN : grid + 1]
    cut = MIN_SPAN + int(np.argmin(scores))
    if not scores[cut - MIN_SPAN] <= FORCED_RATIO:
        return [rect]
    if across:
        halves = (Rect(rect.x0, rect.y0, rect.x0 + cut, rect.y1), Rect(rect.x0 + cut, rect.y0, rect.x1, rect.y1))
    else:
        halves = (Rect(rect.x0, rect.y0, rect.x1, rect.y0 + cut), Rect(rect.x0, rect.y0 + cut, rect.x1, rect.y1))
    return [part for half in halves if (t := _trim(mask, half)) for part in _split_oversized(mask, t, grid)]


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
                    rects.extend(_split_oversized(mask, piece, grid))
    return rects
