"""The artist's measures on constructed sprites, and the pixel-art finish."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.core.pixel_art import (
    colour_counts,
    label_shapes,
    outline_share,
    pixel_art_measures,
    seam_ratio,
    shape_counts,
    speckle,
)
from studio.core.pixel_finish import FinishOptions, finish_sprite


def flat_sprite() -> np.ndarray:
    """A 16x16 square of one colour with a dark outline, on transparency."""
    sprite = np.zeros((32, 32, 4), np.uint8)
    sprite[8:24, 8:24] = (200, 60, 60, 255)
    sprite[8:24, 8] = sprite[8:24, 23] = sprite[8, 8:24] = sprite[23, 8:24] = (30, 20, 20, 255)
    return sprite


def noisy_sprite(seed: int = 0) -> np.ndarray:
    sprite = flat_sprite()
    rng = np.random.default_rng(seed)
    inside = sprite[..., 3] == 255
    values = sprite[..., :3].astype(int) + rng.normal(0, 40, sprite[..., :3].shape).astype(int)
    sprite[..., :3] = np.where(inside[..., None], np.clip(values, 0, 255), 0).astype(np.uint8)
    return sprite


def two_shape_sprite() -> np.ndarray:
    sprite = flat_sprite()
    sprite[2:4, 2:3] = (255, 255, 0, 255)  # a 2-pixel speck apart from the square
    sprite[26:30, 26:30] = (0, 255, 0, 255)  # a second shape of 16 pixels
    return sprite


def test_a_flat_sprite_has_two_colours_no_speckle_one_shape_and_an_outline():
    m = pixel_art_measures(flat_sprite()[None])
    assert m["colours"].tolist() == [2] and m["speckle"].tolist() == [0.0]
    assert m["shapes"].tolist() == [1] and m["fragments"].tolist() == [0]
    assert m["outline"].tolist() == [1.0]


def test_noise_shows_as_colours_and_speckle():
    noisy = noisy_sprite()[None]
    assert colour_counts(noisy)[0] > 200
    assert speckle(noisy)[0] > 0.5 > speckle(flat_sprite()[None])[0]


def test_shapes_and_fragments_are_counted_8_connected():
    shapes, fragments = shape_counts(two_shape_sprite()[None])
    assert shapes.tolist() == [3] and fragments.tolist() == [1]
    diagonal = np.zeros((1, 4, 4), bool)
    diagonal[0, [0, 1, 2, 3], [0, 1, 2, 3]] = True  # corners touch: one shape
    assert label_shapes(diagonal).max() == 1
    across = np.zeros((1, 4, 4), bool)
    across[0, 1, 0] = across[0, 1, 3] = True  # apart, but neighbours when the tile repeats
    assert label_shapes(across).max() == 2 and label_shapes(across, wrap=True).max() == 1


def test_outline_is_nan_for_a_texture_and_seams_show_on_a_broken_tile():
    texture = np.zeros((2, 32, 32, 4), np.uint8)
    texture[..., 3] = 255
    palette = np.array([[40, 40, 40], [90, 70, 50], [120, 120, 110], [60, 90, 60]], np.uint8)
    texture[0, ..., :3] = palette[np.random.default_rng(0).integers(0, 4, (32, 32))]  # gravel: any edge is like inside
    texture[1, ..., :3] = np.linspace(0, 255, 32)[None, :, None]  # a ramp: its wrap edge jumps
    assert np.isnan(outline_share(texture)).all()
    seams = seam_ratio(texture)
    assert seams[0] < 1.5 and seams[1] > 10


def test_the_finish_makes_noise_flat_and_keeps_flat_art_as_it_is():
    options = FinishOptions()
    assert np.array_equal(finish_sprite(flat_sprite(), options), flat_sprite())
    finished = finish_sprite(noisy_sprite(), options)
    assert colour_counts(finished[None])[0] <= options.max_colours
    assert speckle(finished[None])[0] < 0.5 * speckle(noisy_sprite()[None])[0]
    assert set(np.unique(finished[..., 3])) == {0, 255}


def test_the_finish_removes_stray_specks_but_not_real_shapes():
    finished = finish_sprite(two_shape_sprite(), FinishOptions())
    shapes, fragments = shape_counts(finished[None])
    assert shapes.tolist() == [2] and fragments.tolist() == [0]


def test_palette_outline_off_switch_and_bad_settings():
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    finished = finish_sprite(noisy_sprite(), FinishOptions(), palette)
    opaque = finished[..., 3] == 255
    assert {tuple(c) for c in finished[opaque][:, :3]} <= {tuple(c) for c in palette}
    outlined = finish_sprite(flat_sprite(), FinishOptions(outline=True))
    assert (outlined[..., 3] == 255).sum() == (flat_sprite()[..., 3] == 255).sum() + 4 * 16 + 0  # a ring outside
    raw = noisy_sprite()
    raw[0, 0] = (9, 9, 9, 100)
    off = finish_sprite(raw, FinishOptions(enabled=False))
    assert off[0, 0, 3] == 0 and np.array_equal(off[8:24, 8:24], raw[8:24, 8:24])  # only alpha snapped
    with pytest.raises(BadInputError):
        FinishOptions(max_colours=1)
    with pytest.raises(BadInputError):
        FinishOptions.from_dict({"outline": "yes"})
    with pytest.raises(BadInputError):
        finish_sprite(noisy_sprite(), FinishOptions(), np.zeros((0, 3), np.uint8))
    one = finish_sprite(noisy_sprite(), FinishOptions(), np.array([[10, 200, 10]], np.uint8))
    assert colour_counts(one[None])[0] == 1  # a one-colour palette is a silhouette, not an error


def test_a_tile_is_finished_across_its_wrap_edges():
    tile = np.zeros((32, 32, 4), np.uint8)
    tile[..., 3] = 255
    tile[..., :3] = (40, 90, 40)
    tile[:, 0, :3] = tile[:, 31, :3] = (42, 92, 41)  # a faint line on both edges: one line when repeated
    wrapped = finish_sprite(tile, FinishOptions(wrap=True))
    assert seam_ratio(wrapped[None])[0] <= 1.0 or np.isnan(seam_ratio(wrapped[None])[0])
