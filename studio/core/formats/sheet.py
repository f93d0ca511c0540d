"""Sprite sheets: one PNG of uniform cells plus Aseprite / TexturePacker "json-hash" metadata.

The JSON follows the shape game engines import: ``frames{name: {frame, rotated, trimmed, spriteSourceSize,
sourceSize, duration}}`` and ``meta{app, version, image, format, size, scale, frameTags}``. No trimming, no
rotation: engines may slice the PNG on the grid alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio import __version__
from studio.core.errors import BadInputError
from studio.core.formats.images import load_rgba
from studio.core.formats.json_file import read_json
from studio.core.formats.png_meta import png_bytes
from studio.core.safe_write import write_group

Frame = tuple[str, np.ndarray]
DIRECTIONS = ("forward", "reverse", "pingpong")


@dataclass(frozen=True)
class Tag:
    """A named run of frames (inclusive), e.g. an animation."""

    name: str
    start: int
    end: int
    direction: str = "forward"


@dataclass
class Sheet:
    """A parsed sheet: frames in order, their durations (ms) and tags."""

    frames: list[Frame]
    durations: list[int] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)


def _check_frames(frames: Sequence[Frame]) -> tuple[int, int]:
    if not frames:
        raise BadInputError("a sprite sheet needs at least one frame")
    names = [name for name, _ in frames]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadInputError(f"frame names must be unique; repeated: {', '.join(duplicates[:5])}")
    sizes = set()
    for name, rgba in frames:
        array = np.asarray(rgba)
        if array.ndim != 3 or array.shape[2] != 4 or array.dtype != np.uint8:
            raise BadInputError(f"frame {name!r} is not an RGBA image (HxWx4 uint8)")
        sizes.add(array.shape[:2])
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
        raise BadInputError(f"all frames of a sheet must be the same size (uniform cells); found {listed}")
    height, width = sizes.pop()
    return width, height


def _check_tags(tags: Sequence[Tag], count: int) -> None:
    for tag in tags:
        if not 0 <= tag.start <= tag.end < count:
            raise BadInputError(f"tag {tag.name!r} covers frames {tag.start}-{tag.end}, but there are {count}")
        if tag.direction not in DIRECTIONS:
            raise BadInputError(f"tag {tag.name!r}: direction must be one of {', '.join(DIRECTIONS)}")


def build_sheet(
    frames: Sequence[Frame],
    columns: int | None = None,
    tags: Sequence[Tag] = (),
    duration_ms: int = 100,
    image_name: str = "sheet.png",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Lay the frames out left to right, top to bottom; returns (sheet RGBA, json-hash metadata)."""
    width, height = _check_frames(frames)
    count = len(frames)
    columns = columns or math.ceil(math.sqrt(count))
    if columns < 1:
        raise BadInputError(f"a sheet needs at least one column, not {columns}")
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    _check_tags(tags, count)
    sheet = np.zeros((rows * height, columns * width, 4), dtype=np.uint8)
    entries: dict[str, Any] = {}
    for i, (name, rgba) in enumerate(frames):
        x, y = (i % columns) * width, (i // columns) * height
        sheet[y : y + height, x : x + width] = rgba
        entries[name] = {
            "frame": {"x": x, "y": y, "w": width, "h": height},
            "rotated": False,
            "trimmed": False,
            "spriteSourceSize": {"x": 0, "y": 0, "w": width, "h": height},
            "sourceSize": {"w": width, "h": height},
            "duration": int(duration_ms),
        }
    meta = {
        "app": "Studio",
        "version": __version__,
        "image": image_name,
        "format": "RGBA8888",
        "size": {"w": columns * width, "h": rows * height},
        "scale": "1",
        "frameTags": [
            {"name": t.name, "from": t.start, "to": t.end, "direction": t.direction} for t in tags
        ],
    }
    return sheet, {"frames": entries, "meta": meta}


def save_sheet(
    png_path: Path,
    frames: Sequence[Frame],
    columns: int | None = None,
    tags: Sequence[Tag] = (),
    duration_ms: int = 100,
) -> tuple[Path, Path]:
    """Write ``NAME.png`` and ``NAME.json`` side by side; both appear together or neither does."""
    png_path = Path(png_path)
    if png_path.suffix.lower() != ".png":
        raise BadInputError(f"{png_path.name}: a sprite sheet is saved as .png (with a .json beside it)")
    json_path = png_path.with_suffix(".json")
    sheet, data = build_sheet(frames, columns, tags, duration_ms, image_name=png_path.name)
    write_group([(png_path, png_bytes(sheet, None)), (json_path, json.dumps(data, indent=2))],
                f"the sprite sheet {png_path.name}")
    return png_path, json_path


def _rect(name: str, where: str, value: Any, keys: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), int) for k in keys):
        raise BadInputError(f"frame {name!r}: {where} must have whole-number {', '.join(keys)}")
    return {k: value[k] for k in keys}


def load_sheet(json_path: Path) -> Sheet:
    """Parse a json-hash (or json-array) sheet and cut its frames out of the PNG it names."""
    json_path = Path(json_path)
    if not json_path.exists():
        raise BadInputError(f"{json_path.name}: no such file")
    data = read_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict) or "frames" not in data:
        raise BadInputError(f"{json_path.name} is not a sprite-sheet JSON (needs 'frames' and 'meta')")
    meta = data["meta"]
    image_name = meta.get("image")
    if not isinstance(image_name, str) or not image_name:
        raise BadInputError(f"{json_path.name}: meta.image must name the sheet's PNG")
    image = load_rgba(json_path.parent / image_name)
    size = meta.get("size")
    if isinstance(size, dict) and (size.get("w"), size.get("h")) != (image.shape[1], image.shape[0]):
        raise BadInputError(
            f"{json_path.name} says the sheet is {size.get('w')}x{size.get('h')}, "
            f"but {image_name} is {image.shape[1]}x{image.shape[0]}"
        )
    raw_frames = data["frames"]
    if isinstance(raw_frames, list):
        items = [(f.get("filename") if isinstance(f, dict) else None, f) for f in raw_frames]
    elif isinstance(raw_frames, dict):
        items = list(raw_frames.items())
    else:
        raise BadInputError(f"{json_path.name}: 'frames' must be an object or a list")
    sheet = Sheet(frames=[])
    for name, entry in items:
        if not isinstance(name, str) or not isinstance(entry, dict):
            raise BadInputError(f"{json_path.name}: every frame needs a name and a 'frame' rectangle")
        if entry.get("rotated"):
            raise BadInputError(f"frame {name!r} is rotated; rotated frames are not supported")
        rect = _rect(name, "frame", entry.get("frame"), ("x", "y", "w", "h"))
        x, y, w, h = rect["x"], rect["y"], rect["w"], rect["h"]
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > image.shape[1] or y + h > image.shape[0]:
            raise BadInputError(f"frame {name!r} ({x},{y} {w}x{h}) lies outside the {image_name} image")
        sheet.frames.append((name, image[y : y + h, x : x + w].copy()))
        duration = entry.get("duration", 100)
        sheet.durations.append(int(duration) if isinstance(duration, int | float) else 100)
    tags = meta.get("frameTags", [])
    if not isinstance(tags, list):
        raise BadInputError(f"{json_path.name}: meta.frameTags must be a list")
    for raw in tags:
        try:
            tag = Tag(str(raw["name"]), int(raw["from"]), int(raw["to"]), str(raw.get("direction", "forward")))
        except (KeyError, TypeError, ValueError):
            raise BadInputError(f"{json_path.name}: each frame tag needs name, from and to") from None
        sheet.tags.append(tag)
    _check_tags(sheet.tags, len(sheet.frames))
    return sheet
