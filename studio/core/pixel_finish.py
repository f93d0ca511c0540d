"""The pixel-art finish: what turns a generator's raw sprite into pixel art an artist can keep.

1. **Crisp alpha**: every pixel is opaque or transparent (at 128), and opaque specks of fewer than
   :data:`~studio.core.pixel_art.FRAGMENT_PIXELS` pixels that float apart from the sprite are removed.
2. **A limited palette**: the user's palette, or an adaptive one per sprite: at most ``max_colours`` colours chosen
   in OKLab (a perceptual space), then colours closer than :data:`MERGE` merged, so a sprite that needs fewer gets
   fewer.
3. **Flat shading without noise**: each pixel takes the palette colour that best balances its own colour against
   agreeing with its 8 neighbours (a Potts model solved by iterated conditional modes, :data:`SMOOTHING` per
   disagreeing neighbour, in squared OKLab units). A pixel only a little off its neighbours joins them; a pixel that
   differs strongly (a highlight, an eye) keeps its colour. Plain nearest-colour quantisation keeps every speck.
   When a sprite is still noisier than typical hand-drawn art (more than :data:`HAND_DRAWN_SPECKLE` of its pixels
   unlike every neighbour: the median of the crawl training tiles), the smoothing doubles, up to :data:`MAX_SMOOTHING`.
4. **Optional 1-px outline** around the silhouette, in the palette's darkest colour.

``wrap=True`` treats the sprite as a tile that repeats: neighbours continue across the edges, so the finish
does not draw seams. Pure numpy; the input is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from studio.core.errors import BadInputError
from studio.core.formats.palette import median_cut, nearest_index
from studio.core.pixel_art import FRAGMENT_PIXELS, OPAQUE, label_shapes, oklab_to_srgb, speckle, srgb_to_oklab

MAX_COLOURS = 16
MERGE = 0.02  # OKLab distance under which two palette colours are one (dark textures differ by little)
SMOOTHING = 0.008  # squared OKLab distance a pixel gives up to agree with one more neighbour
MAX_SMOOTHING = 0.064
HAND_DRAWN_SPECKLE = 0.056  # median speckle of the 3,116 crawl training tiles (studio.core.pixel_art.speckle)
ROUNDS = 4


@dataclass(frozen=True)
class FinishOptions:
    """How a sprite is finished; recorded in the recipe as :meth:`to_dict`."""

    enabled: bool = True
    max_colours: int = MAX_COLOURS  # adaptive palette size limit (ignored with a user palette)
    outline: bool = False
    wrap: bool = False  # the sprite is a tile: neighbours continue across the edges

    def __post_init__(self) -> None:
        if not 2 <= self.max_colours <= 256:
            raise BadInputError(f"a finished sprite has 2 to 256 colours, not {self.max_colours}")

    def to_dict(self) -> dict[str, object]:
        return {"enabled": self.enabled, "max_colours": self.max_colours, "outline": self.outline, "wrap": self.wrap}

    @classmethod
    def from_dict(cls, data: object) -> FinishOptions:
        """From recipe params; anything malformed is BadInputError (the recipe may come from a file)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise BadInputError("the finish settings must be a mapping")
        values = {key: data[key] for key in ("enabled", "max_colours", "outline", "wrap") if key in data}
        for key in ("enabled", "outline", "wrap"):
            if key in values and not isinstance(values[key], bool):
                raise BadInputError(f"finish setting {key!r} must be true or false")
        if "max_colours" in values and (isinstance(values["max_colours"], bool)
                                        or not isinstance(values["max_colours"], int)):
            raise BadInputError("finish setting 'max_colours' must be a whole number")
        return cls(**values)


def adaptive_palette(lab: np.ndarray, weights: np.ndarray, max_colours: int) -> np.ndarray:
    """At most ``max_colours`` OKLab colours for the given pixels: median cut, weighted k-means, then merging of
    colours closer than MERGE (weighted means)."""
    centers = median_cut(lab, weights, min(max_colours, len(lab)))
    for _ in range(8):
        labels = nearest_index(lab, centers)
        totals = np.bincount(labels, weights=weights, minlength=len(centers))
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, lab * weights[:, None])
        used = totals > 0
        centers, mass = sums[used] / totals[used, None], totals[used]
    while len(centers) > 1:
        gaps = np.linalg.norm(centers[:, None] - centers[None], axis=-1) + np.eye(len(centers)) * 1e9
        i, j = np.unravel_index(np.argmin(gaps), gaps.shape)
        if gaps[i, j] >= MERGE:
            break
        merged = (centers[i] * mass[i] + centers[j] * mass[j]) / (mass[i] + mass[j])
        keep = [k for k in range(len(centers)) if k not in (i, j)]
        centers = np.vstack([centers[keep], merged])
        mass = np.append(mass[keep], mass[i] + mass[j])
    return centers


def _neighbour_counts(labels: np.ndarray, opaque: np.ndarray, colours: int, wrap: bool) -> np.ndarray:
    """(N, H, W, K): how many opaque 8-neighbours of each pixel carry each palette index (a separable 3x3 box
    sum)."""
    onehot = np.zeros((*labels.shape, colours), dtype=np.float32)
    n, rows, cols = np.nonzero(opaque)
    onehot[n, rows, cols, labels[n, rows, cols]] = 1.0
    padded = np.pad(onehot, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap" if wrap else "constant")
    across = padded[:, :, :-2] + padded[:, :, 1:-1] + padded[:, :, 2:]
    return across[:, :-2] + across[:, 1:-1] + across[:, 2:] - onehot


def smooth_labels(error: np.ndarray, opaque: np.ndarray, wrap: bool, smoothing: np.ndarray) -> np.ndarray:
    """Palette index per pixel minimising colour ``error`` (N, H, W, K) + ``smoothing`` (N,) x disagreeing
    neighbours: iterated conditional modes from the nearest colours, at most ROUNDS rounds."""
    labels = error.argmin(-1)
    weight = smoothing.astype(np.float32)[:, None, None, None]
    for _ in range(ROUNDS):
        counts = _neighbour_counts(labels, opaque, error.shape[-1], wrap)
        updated = (error + weight * (counts.sum(-1, keepdims=True) - counts)).argmin(-1)
        if np.array_equal(updated[opaque], labels[opaque]):
            break
        labels = updated
    return labels


def _remove_fragments(opaque: np.ndarray, wrap: bool) -> np.ndarray:
    """The masks (N, H, W) without shapes under FRAGMENT_PIXELS pixels (a sprite made only of small shapes is kept
    as drawn)."""
    labels = label_shapes(opaque, wrap)
    out = opaque.copy()
    for i, row in enumerate(labels):
        sizes = np.bincount(row.ravel())
        small = np.flatnonzero(sizes < FRAGMENT_PIXELS)
        small = small[small > 0]
        if len(small) < len(sizes) - 1:
            out[i] &= ~np.isin(row, small)
    return out


def _palettes(lab: np.ndarray, opaque: np.ndarray, options: FinishOptions, palette: np.ndarray | None):
    """Per sprite the palette in OKLab and sRGB, padded to one size: (centers (N, K, 3) with NaN padding, colours
    (N, K, 3) uint8)."""
    if palette is not None:
        colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
        if len(colours) == 0:
            raise BadInputError("the palette is empty")
        return (np.broadcast_to(srgb_to_oklab(colours), (len(lab), len(colours), 3)),
                np.broadcast_to(colours, (len(lab), len(colours), 3)))
    chosen = []
    for pixels, mask in zip(lab, opaque, strict=True):
        if not mask.any():
            chosen.append(np.zeros((0, 3)))
            continue
        unique, counts = np.unique(pixels[mask].round(4), axis=0, return_counts=True)
        chosen.append(adaptive_palette(unique, counts.astype(np.float64), options.max_colours))
    size = max(1, max(len(c) for c in chosen))
    centers = np.full((len(lab), size, 3), np.nan)
    for i, c in enumerate(chosen):
        centers[i, : len(c)] = c
    colours = np.rint(oklab_to_srgb(np.nan_to_num(centers))).astype(np.uint8)
    return centers, colours


def _outline(out: np.ndarray, colours: np.ndarray, wrap: bool) -> np.ndarray:
    """A 1-px ring around each sprite's silhouette (N, H, W, 4), in each sprite's given colour (N, 3)."""
    opaque = out[..., 3] == 255
    ring = np.zeros_like(opaque)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ring |= np.roll(opaque, (dy, dx), axis=(1, 2)) if wrap else _shift(opaque, dy, dx)
    ring &= ~opaque
    n, rows, cols = np.nonzero(ring)
    out[n, rows, cols, :3] = colours[n]
    out[n, rows, cols, 3] = 255
    return out


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


def finish_sprites(images: np.ndarray, options: FinishOptions, palette: np.ndarray | None = None) -> np.ndarray:
    """Finished sprites (N, H, W, 4) uint8 (see the module docstring), all at once; ``palette`` (K, 3) uint8 is
    the user's own."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 4 or images.dtype != np.uint8:
        raise BadInputError(f"expected RGBA sprites (N x H x W x 4 uint8), got {images.dtype} {images.shape}")
    out = np.zeros_like(images)
    opaque = images[..., 3] >= OPAQUE
    if not options.enabled:
        out[opaque] = images[opaque]
        out[opaque, 3] = 255
        return out
    opaque = _remove_fragments(opaque, options.wrap)
    lab = srgb_to_oklab(images[..., :3])
    centers, colours = _palettes(lab, opaque, options, palette)
    error = ((lab[:, :, :, None, :] - centers[:, None, None]) ** 2).sum(-1)
    error = np.where(np.isnan(error), np.inf, error).astype(np.float32)  # padding is never chosen
    smoothing = np.full(len(images), SMOOTHING)
    active = opaque.any(axis=(1, 2))
    index = np.arange(len(images))[:, None, None]
    while active.any():
        labels = smooth_labels(error[active], opaque[active], options.wrap, smoothing[active])
        mask = opaque[active]
        finished = out[active]
        finished[mask, :3] = colours[active][np.broadcast_to(index[: len(labels)], labels.shape)[mask], labels[mask]]
        finished[mask, 3] = 255
        out[active] = finished
        noisy = speckle(finished, options.wrap)
        again = (noisy > HAND_DRAWN_SPECKLE) & (smoothing[active] < MAX_SMOOTHING)
        smoothing[np.flatnonzero(active)[again]] *= 2
        active[np.flatnonzero(active)[~again]] = False
    if options.outline:
        darkest = np.nanargmin(np.where(np.isnan(centers[..., 0]), np.inf, centers[..., 0]), axis=1)
        out = _outline(out, colours[np.arange(len(images)), darkest], options.wrap)
    return out


def finish_sprite(rgba: np.ndarray, options: FinishOptions, palette: np.ndarray | None = None) -> np.ndarray:
    """One finished HxWx4 uint8 sprite (see :func:`finish_sprites`)."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3:
        raise BadInputError(f"expected an RGBA sprite (HxWx4 uint8), got {rgba.dtype} {rgba.shape}")
    return finish_sprites(rgba[None], options, palette)[0]
