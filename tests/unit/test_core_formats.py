"""Bad input handling of the core readers: each gets a clear message and nothing is lost or half-written."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from studio.core.errors import BadInputError
from studio.core.formats import audio, images, png_meta, text


def sprite() -> np.ndarray:
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (200, 40, 40, 255)
    return rgba


def test_png_recipe_round_trip(tmp_path: Path) -> None:
    recipe = {"model": "sprite-gan", "seed": 7, "params": {"category": "items", "palette": "auto-16"}}
    path = png_meta.save_png(tmp_path / "a.png", sprite(), recipe)
    assert png_meta.read_recipe(path) == recipe
    assert "seed: 7" in Image.open(path).text["parameters"]
    assert np.array_equal(images.load_rgba(path), sprite())


def test_metadata_off_writes_no_text_chunk(tmp_path: Path) -> None:
    path = png_meta.save_png(tmp_path / "a.png", sprite(), {"seed": 1}, write_metadata=False)
    raw = path.read_bytes()
    assert b"tEXt" not in raw and b"iTXt" not in raw and b"zTXt" not in raw
    assert png_meta.read_recipe(path) is None


def test_corrupt_png_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(BadInputError, match="not a readable image"):
        images.load_rgba(bad)


def test_non_image_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("this is text")
    with pytest.raises(BadInputError, match=r"notes\.png"):
        images.load_rgba(notes)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims a huge size; decoding it would need gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    _png_header_only(huge, 20_000, 20_000)
    with pytest.raises(BadInputError, match="too large"):
        images.load_rgba(huge)


def test_paletted_png_becomes_rgba(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(sprite()[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)
    out = images.load_rgba(path)
    assert out.shape == (32, 32, 4) and out.dtype == np.uint8


def test_audio_round_trip_with_recipe(tmp_path: Path) -> None:
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(4410) / 44100).astype(np.float32)
    path = audio.write_audio(tmp_path / "t.flac", np.stack([tone, tone], 1), 44100, {"seed": 3})
    data, rate = audio.read_audio(path)
    assert rate == 44100 and data.shape == (4410, 2)
    assert np.abs(data[:, 0] - tone).max() < 1e-3
    assert audio.read_audio_recipe(path) == {"seed": 3}


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEjunk", b"hello world" * 100])
def test_bad_audio_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(BadInputError):
        audio.read_audio(path)


def test_empty_audio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 44100)
    with pytest.raises(BadInputError, match="no audio"):
        audio.read_audio(path)


def test_unknown_audio_extension_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"\.mp3"):
        audio.write_audio(tmp_path / "x.mp3", np.zeros(10, np.float32), 44100)
    assert list(tmp_path.iterdir()) == []


def test_text_encodings(tmp_path: Path) -> None:
    utf8 = tmp_path / "a.txt"
    utf8.write_text("Café ☕ headline", encoding="utf-8")
    assert text.read_text(utf8) == "Café ☕ headline"
    utf16 = tmp_path / "b.txt"
    utf16.write_text("Grüße", encoding="utf-16")
    assert text.read_text(utf16) == "Grüße"
    latin = tmp_path / "c.txt"
    latin.write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    with pytest.raises(BadInputError, match="UTF-8"):
        text.read_text(latin)
