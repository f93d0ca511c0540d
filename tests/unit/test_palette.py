"""Palette files (.hex, .gpl), their bad lines, the bundled palettes and automatic palettes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.core.formats.palette import auto_palette, bundled_palettes, load_palette, save_palette


def test_hex_with_and_without_hash_blank_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "p.hex"
    path.write_text("; my palette\n#FF0000\n\n00ff00\n  0000Ff  \n", encoding="utf-8")
    assert load_palette(path).tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]


def test_gpl_with_header_comments_and_names(tmp_path: Path) -> None:
    path = tmp_path / "p.gpl"
    path.write_text("GIMP Palette\nName: test\nColumns: 4\n#\n255 255 255\tWhite\n  0   8  16 dark blue\n")
    assert load_palette(path).tolist() == [[255, 255, 255], [0, 8, 16]]


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("bad.hex", "ff0000\nnot-a-colour\n", "line 2"),
        ("short.hex", "ff0000\n00ff00\nfff\n", "line 3"),
        ("bad.gpl", "GIMP Palette\nName: x\n10 20\n", "line 3"),
        ("range.gpl", "GIMP Palette\n1 2 3\n10 20 300 too bright\n", "line 3"),
        ("header.gpl", "Not GIMP\n1 2 3\n", "line 1"),
    ],
)
def test_bad_line_is_named_with_file_and_line(tmp_path: Path, name: str, text: str, line: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInputError) as info:
        load_palette(path)
    assert name in str(info.value)
    assert line in str(info.value)


def test_refuses_too_many_empty_unknown_and_binary(tmp_path: Path) -> None:
    big = tmp_path / "big.hex"
    big.write_text("".join(f"{i:06x}\n" for i in range(257)))
    with pytest.raises(BadInputError, match="257 colours"):
        load_palette(big)
    empty = tmp_path / "empty.hex"
    empty.write_text("\n\n")
    with pytest.raises(BadInputError, match="no colours"):
        load_palette(empty)
    with pytest.raises(BadInputError, match=r"\.hex"):
        load_palette(tmp_path / "palette.act")
    binary = tmp_path / "bin.hex"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(BadInputError):
        load_palette(binary)


@pytest.mark.parametrize("suffix", [".hex", ".gpl"])
def test_save_load_round_trip(tmp_path: Path, suffix: str) -> None:
    colors = np.array([[0, 0, 0], [255, 128, 1], [18, 52, 86]], dtype=np.uint8)
    path = save_palette(tmp_path / f"p{suffix}", colors)
    assert np.array_equal(load_palette(path), colors)
    assert not list(tmp_path.glob("*.part"))


def test_bundled_palettes_load_with_their_published_sizes() -> None:
    palettes = bundled_palettes()
    sizes = {name: len(load_palette(path)) for name, path in palettes.items()}
    assert sizes["pico-8"] == 16
    assert sizes["db16"] == 16
    assert sizes["gameboy-dmg"] == 4
    assert load_palette(palettes["pico-8"])[8].tolist() == [0xFF, 0x00, 0x4D]


def test_auto_palette_keeps_few_colours_exactly_and_ignores_transparent() -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (200, 10, 10, 255)
    rgba[0, 1] = (10, 10, 10, 255)
    rgba[1, 2] = (0, 255, 0, 40)  # nearly transparent: ignored
    assert auto_palette(rgba, 8).tolist() == [[10, 10, 10], [200, 10, 10]]
    assert auto_palette(np.zeros((4, 4, 4), np.uint8), 8).shape == (0, 3)


def test_auto_palette_reduces_to_n_representative_colours_deterministically() -> None:
    rng = np.random.default_rng(0)
    clusters = np.array([[20, 20, 20], [230, 40, 40], [40, 200, 60], [250, 250, 240]])
    pixels = clusters[rng.integers(0, 4, 1024)] + rng.integers(-6, 7, (1024, 3))
    rgba = np.concatenate([np.clip(pixels, 0, 255), np.full((1024, 1), 255)], axis=1)
    rgba = rgba.astype(np.uint8).reshape(32, 32, 4)
    palette = auto_palette(rgba, 4)
    assert palette.shape == (4, 3)
    assert np.abs(palette.astype(int) - clusters).max() <= 4  # one colour per cluster, sorted dark to light
    assert np.array_equal(palette, auto_palette(rgba.copy(), 4))
    with pytest.raises(BadInputError):
        auto_palette(rgba, 0)
