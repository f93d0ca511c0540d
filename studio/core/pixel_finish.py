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
    """(H, W, K): how many opaque 8-neighbours of each pixel carry each palette index (a separable 3x3 box sum)."""
    onehot = np.zeros((*labels.shape, colours), dtype=np.float32)
    rows, cols = np.nonzero(opaque)
    onehot[rows, cols, labels[rows, cols]] = 1.0
    padded = np.pad(onehot, ((1, 1), (1, 1), (0, 0)), mode="wrap" if wrap else "constant")
    across = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return across[:-2] + across[1:-1] + across[2:] - onehot


def colour_error(lab: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W, K) squared OKLab distance of every pixel to every palette colour."""
    return ((lab[:, :, None, :] - palette[None, None]) ** 2).sum(-1).astype(np.float32)


def smooth_labels(error: np.ndarray, opaque: np.ndarray, wrap: bool, smoothing: float = SMOOTHING) -> np.ndarray:
    """Palette index per pixel minimising colour ``error`` (H, W, K) + ``smoothing`` x disagreeing neighbours (ICM
    from the nearest colours, at most ROUNDS rounds)."""
    labels = error.argmin(-1)
    for _ in range(ROUNDS):
        counts = _neighbour_counts(labels, opaque, error.shape[-1], wrap)
        cost = error + np.float32(smoothing) * (counts.sum(-1, keepdims=True) - counts)
        updated = cost.argmin(-1)
        if np.array_equal(updated[opaque], labels[opaque]):
            break
        labels = updated
    return labels


def _remove_fragments(opaque: np.ndarray, wrap: bool) -> np.ndarray:
    """The mask without shapes under FRAGMENT_PIXELS pixels (unless nothing bigger exists)."""
    labels = label_shapes(opaque[None], wrap)[0]
    sizes = np.bincount(labels.ravel())
    small = np.flatnonzero(sizes < FRAGMENT_PIXELS)
    small = small[small > 0]
    if len(small) == len(sizes) - 1:  # every shape is small: keep the sprite as drawn
        return opaque
    return opaque & ~np.isin(labels, small)


def _outline(out: np.ndarray, colour: np.ndarray, wrap: bool) -> np.ndarray:
    opaque = out[..., 3] == 255
    ring = np.zeros_like(opaque)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ring |= np.roll(opaque, (dy, dx), axis=(0, 1)) if wrap else _shift(opaque, dy, dx)
    ring &= ~opaque
    out[ring] = (*colour, 255)
    return out


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return out


def finish_sprite(rgba: np.ndarray, options: FinishOptions, palette: np.ndarray | None = None) -> np.ndarray:
    """The finished HxWx4 uint8 sprite (see the module docstring); ``palette`` (K, 3) uint8 is the user's own."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise BadInputError(f"expected an RGBA sprite (HxWx4 uint8), got {rgba.dtype} {rgba.shape}")
    out = np.zeros_like(rgba)
    opaque = rgba[..., 3] >= OPAQUE
    if not options.enabled:
        out[opaque] = rgba[opaque]
        out[opaque, 3] = 255
        return out
    opaque = _remove_fragments(opaque, options.wrap)
    if not opaque.any():
        return out
    lab = srgb_to_oklab(rgba[..., :3])
    if palette is not None:
        colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
        if len(colours) == 0:
            raise BadInputError("the palette is empty")
        centers = srgb_to_oklab(colours)
    else:
        unique, counts = np.unique(lab[opaque].round(4), axis=0, return_counts=True)
        centers = adaptive_palette(unique, counts.astype(np.float64), options.max_colours)
        colours = np.rint(oklab_to_srgb(centers)).astype(np.uint8)
    error = colour_error(lab, centers)
    smoothing = SMOOTHING
    while True:
        labels = smooth_labels(error, opaque, options.wrap, smoothing)
        out[opaque, :3] = colours[labels[opaque]]
        out[opaque, 3] = 255
        noisy = speckle(out[None], options.wrap)[0]
        if smoothing >= MAX_SMOOTHING or not noisy > HAND_DRAWN_SPECKLE:
            break
        smoothing *= 2
    if options.outline:
        out = _outline(out, colours[int(np.argmin(centers[:, 0]))], options.wrap)
    return out
