"""Sprite sheets: layout, the Aseprite json-hash shape, save/load round trip and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import BadInputError
from studio.core.formats.sheet import Tag, build_sheet, load_sheet, save_sheet


def frames(n: int, w: int = 4, h: int = 3) -> list[tuple[str, np.ndarray]]:
    out = []
    for i in range(n):
        rgba = np.zeros((h, w, 4), dtype=np.uint8)
        rgba[..., 0] = 10 * i
        rgba[..., 3] = 255
        rgba[0, 0] = (i, 1, 2, 128)
        out.append((f"walk_{i}", rgba))
    return out


def test_build_sheet_layout_and_json_hash_shape() -> None:
    sheet, data = build_sheet(frames(5), columns=2, tags=[Tag("walk", 0, 4, "pingpong")], duration_ms=80)
    assert sheet.shape == (9, 8, 4)
    assert data["frames"]["walk_3"] == {
        "frame": {"x": 4, "y": 3, "w": 4, "h": 3},
        "rotated": False,
        "trimmed": False,
        "spriteSourceSize": {"x": 0, "y": 0, "w": 4, "h": 3},
        "sourceSize": {"w": 4, "h": 3},
        "duration": 80,
    }
    meta = data["meta"]
    assert meta["app"] == "Studio"
    assert meta["format"] == "RGBA8888"
    assert meta["size"] == {"w": 8, "h": 9}
    assert meta["frameTags"] == [{"name": "walk", "from": 0, "to": 4, "direction": "pingpong"}]
    assert set(meta) >= {"app", "version", "image", "format", "size", "scale", "frameTags"}
    assert np.all(sheet[6:9, 4:8] == 0)  # the unused sixth cell stays transparent
    assert np.array_equal(sheet[3:6, 4:8], frames(5)[3][1])


def test_default_columns_make_a_square_ish_grid() -> None:
    sheet, _ = build_sheet(frames(10))
    assert sheet.shape[:2] == (3 * 3, 4 * 4)  # ceil(sqrt(10)) = 4 columns, 3 rows


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    original = frames(7)
    png, js = save_sheet(tmp_path / "out" / "hero.png", original, columns=3, tags=[Tag("idle", 1, 2)])
    assert js == tmp_path / "out" / "hero.json"
    data = json.loads(js.read_text())
    assert data["meta"]["image"] == "hero.png"
    assert Image.open(png).size == (12, 9)
    sheet = load_sheet(js)
    assert [n for n, _ in sheet.frames] == [n for n, _ in original]
    for (_, a), (_, b) in zip(sheet.frames, original, strict=True):
        assert np.array_equal(a, b)
    assert sheet.tags == [Tag("idle", 1, 2, "forward")]
    assert sheet.durations == [100] * 7
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hero.json", "hero.png"]


def test_bad_frames_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    mixed = [*frames(2), ("big", np.zeros((8, 8, 4), np.uint8))]
    with pytest.raises(BadInputError, match="same size"):
        save_sheet(tmp_path / "s.png", mixed)
    with pytest.raises(BadInputError, match="unique"):
        save_sheet(tmp_path / "s.png", [*frames(2), frames(1)[0]])
    with pytest.raises(BadInputError, match="tag"):
        save_sheet(tmp_path / "s.png", frames(2), tags=[Tag("run", 1, 2)])
    with pytest.raises(BadInputError, match="at least one"):
        save_sheet(tmp_path / "s.png", [])
    assert list(tmp_path.iterdir()) == []


def test_load_sheet_errors_are_clear(tmp_path: Path) -> None:
    save_sheet(tmp_path / "s.png", frames(2))
    js = tmp_path / "s.json"
    data = json.loads(js.read_text())

    def broken(change) -> str:
        copy = json.loads(json.dumps(data))
        change(copy)
        js.write_text(json.dumps(copy))
        with pytest.raises(BadInputError) as info:
            load_sheet(js)
        return str(info.value)

    assert "outside" in broken(lambda d: d["frames"]["walk_1"]["frame"].update(x=100))
    assert "whole-number" in broken(lambda d: d["frames"]["walk_0"].update(frame={"x": "a"}))
    assert "says the sheet is" in broken(lambda d: d["meta"].update(size={"w": 1, "h": 1}))
    assert "no such file" in broken(lambda d: d["meta"].update(image="missing.png"))
    assert "frames 0-5" in broken(lambda d: d["meta"].update(frameTags=[{"name": "x", "from": 0, "to": 5}]))
    js.write_text("{not json")
    with pytest.raises(BadInputError, match="not valid JSON"):
        load_sheet(js)
    (tmp_path / "s.png").write_bytes(b"not a png")
    js.write_text(json.dumps(data))
    with pytest.raises(BadInputError, match="not a readable image"):
        load_sheet(js)


def test_load_json_array_variant(tmp_path: Path) -> None:
    save_sheet(tmp_path / "s.png", frames(3))
    js = tmp_path / "s.json"
    data = json.loads(js.read_text())
    data["frames"] = [{"filename": name, **entry} for name, entry in data["frames"].items()]
    js.write_text(json.dumps(data))
    assert [n for n, _ in load_sheet(js).frames] == ["walk_0", "walk_1", "walk_2"]
