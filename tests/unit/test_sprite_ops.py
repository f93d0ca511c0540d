"""Sprite post-processing on small hand-made arrays with exact expected outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.core.sprite_ops import (
    fill_region,
    outline,
    quantize,
    remove_background,
    resolve_palette,
    snap_alpha,
    upscale,
)

K = (0, 0, 0, 255)
W = (255, 255, 255, 255)
R = (255, 0, 0, 255)
T = (0, 0, 0, 0)


def img(rows: list[list[tuple[int, int, int, int]]]) -> np.ndarray:
    return np.array(rows, dtype=np.uint8)


def test_quantize_maps_to_nearest_palette_colour_and_hardens_alpha() -> None:
    palette = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]], dtype=np.uint8)
    rgba = img([[(20, 20, 20, 255), (240, 230, 250, 200)], [(200, 30, 40, 130), (255, 255, 255, 100)]])
    expected = img([[K, W], [R, T]])
    assert np.array_equal(quantize(rgba, palette), expected)
    assert rgba[0, 0, 0] == 20  # input untouched


def test_quantize_is_perceptual_not_plain_rgb() -> None:
    # Bright yellow is nearer mid grey in plain RGB, but it is a very light colour: it maps to white.
    palette = np.array([[128, 128, 128], [255, 255, 255]], dtype=np.uint8)
    yellow = np.array([255, 255, 0])
    assert np.sum((yellow - 128) ** 2) < np.sum((yellow - 255) ** 2)
    assert quantize(img([[(255, 255, 0, 255)]]), palette)[0, 0].tolist() == [255, 255, 255, 255]


def test_outline_is_one_pixel_outside_four_neighbour() -> None:
    rgba = np.zeros((5, 5, 4), dtype=np.uint8)
    rgba[2, 2] = W
    out = outline(rgba, color=R)
    expected = np.zeros((5, 5, 4), dtype=np.uint8)
    expected[2, 2] = W
    for y, x in ((1, 2), (3, 2), (2, 1), (2, 3)):
        expected[y, x] = R
    assert np.array_equal(out, expected)


def test_outline_stops_at_the_image_edge() -> None:
    rgba = img([[W, T], [T, T]])
    assert np.array_equal(outline(rgba), img([[W, K], [K, T]]))


def test_remove_background_floods_from_border_only() -> None:
    # a white frame with a white pixel enclosed by black inside: the enclosed one stays
    rows = [[W] * 5 for _ in range(5)]
    for y, x in ((1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2), (3, 3)):
        rows[y][x] = K
    out = remove_background(img(rows))
    assert out[0].tolist() == [list(T)] * 5
    assert out[2, 2].tolist() == list(W)
    assert out[1, 1].tolist() == list(K)
    assert int((out[..., 3] == 0).sum()) == 16


def test_remove_background_tolerance_and_transparent_border() -> None:
    near_white = (250, 252, 255, 255)
    rgba = img([[W, W, near_white], [W, K, W], [W, W, W]])
    assert remove_background(rgba, tolerance=0)[0, 2].tolist() == list(near_white)
    assert remove_background(rgba, tolerance=5)[0, 2].tolist() == list(T)
    already = img([[T, T], [T, K]])
    assert np.array_equal(remove_background(already), already)
    with pytest.raises(BadInputError):
        remove_background(rgba, tolerance=300)


def test_snap_alpha_has_no_semi_transparent_pixels() -> None:
    rgba = img([[(10, 20, 30, 127), (10, 20, 30, 128), (1, 2, 3, 255)]])
    assert snap_alpha(rgba).tolist() == [[[0, 0, 0, 0], [10, 20, 30, 255], [1, 2, 3, 255]]]
    assert snap_alpha(rgba, threshold=1)[0, 0].tolist() == [10, 20, 30, 255]


def test_upscale_nearest_integer_only() -> None:
    rgba = img([[W, K]])
    assert np.array_equal(upscale(rgba, 2), img([[W, W, K, K], [W, W, K, K]]))
    for bad in (0, 1.5, True, 65):
        with pytest.raises(BadInputError):
            upscale(rgba, bad)


def test_fill_region_is_same_colour_four_connected() -> None:
    rgba = img([[W, W, K], [K, W, K], [W, K, W]])
    mask = fill_region(rgba, 0, 0)
    assert mask.tolist() == [[True, True, False], [False, True, False], [False, False, False]]
    with pytest.raises(BadInputError):
        fill_region(rgba, 3, 0)


def test_resolve_palette_specs(tmp_path: Path) -> None:
    rgba = img([[W, K, R]])
    assert resolve_palette("none", rgba) is None
    assert resolve_palette("auto-2", rgba).shape == (2, 3)
    assert len(resolve_palette("pico-8")) == 16
    path = tmp_path / "two.hex"
    path.write_text("ff0000\n00ff00\n")
    assert resolve_palette(str(path)).tolist() == [[255, 0, 0], [0, 255, 0]]
    for bad in ("auto-1", "auto-999", "sunset", str(tmp_path / "missing.gpl")):
        with pytest.raises(BadInputError):
            resolve_palette(bad, rgba)
    with pytest.raises(BadInputError, match="needs an image"):
        resolve_palette("auto-8")


def test_ops_refuse_non_rgba_arrays() -> None:
    with pytest.raises(BadInputError, match="RGBA"):
        outline(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(BadInputError, match="RGBA"):
        snap_alpha(np.zeros((4, 4, 4), dtype=np.float32))
