"""Importing the user's own sprites: a folder of PNGs (one sprite per file) or one sprite sheet on a grid.

- Folder: every ``*.png`` below it is one sprite; its category is the name of the first sub-folder it lies in
  (``folder/knights/a.png`` -> ``knights``), or the folder's own name for files at the top. Its path is kept, so
  the words of file names (``red_knight_sword.png``) become tags a model can be asked for, as with the crawl set.
  Sizes follow :func:`studio.ml.data.sprite_cells.fit_to_cell`: integer factors of 32 are scaled
  nearest-neighbour, smaller sprites are centred, larger ones are refused.
- Sheet: sliced on ``grid`` (its sides must be multiples of it); each cell then follows the same size rules.
- Colour: paletted, greyscale and 16-bit images become RGBA (a palette's transparent index stays transparent).
  An image without any transparency gets a colour key: ``auto`` keys out magenta (#ff00ff) when it occurs,
  otherwise the colour of the four corners when they agree; ``none`` keeps it opaque; ``RRGGBB`` keys that colour.
- Nothing usable (empty folder, every cell transparent): BadInputError with the count of each rejection reason.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.core.errors import BadInputError
from studio.core.formats.images import open_image
from studio.ml.data.sprite_cells import CELL, emptiness, fit_to_cell, slice_grid
from studio.ml.data.sprites import SpriteDataset, write_sprite_dataset

MAGENTA = (255, 0, 255)
_HEX = re.compile(r"#?([0-9a-fA-F]{6})")


@dataclass
class ImportResult:
    images: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # each sprite's file (folder import) or sheet name; words -> tags

    def add(self, cell: np.ndarray, category: str, name: str = "") -> None:
        if category not in self.categories:
            self.categories.append(category)
        self.images.append(cell)
        self.labels.append(self.categories.index(category))
        self.names.append(name)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.stack(self.images), np.array(self.labels, dtype=np.int64)


def parse_colour_key(spec: str) -> str | tuple[int, int, int]:
    """``auto`` | ``none`` | ``RRGGBB`` (with or without ``#``)."""
    spec = spec.strip().lower()
    if spec in ("auto", "none"):
        return spec
    match = _HEX.fullmatch(spec)
    if not match:
        raise BadInputError(f"colour key {spec!r}: use auto, none or a colour like ff00ff")
    value = int(match.group(1), 16)
    return (value >> 16, (value >> 8) & 255, value & 255)


def _to_rgba(image: Image.Image) -> tuple[np.ndarray, str]:
    """RGBA pixels and a note on the conversion ("" when the file was RGBA already)."""
    mode = image.mode
    if mode == "RGBA":
        return np.asarray(image, dtype=np.uint8).copy(), ""
    if mode.startswith("I") or mode == "F":
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(wide / max(wide.max(), 1.0) * 255.0, 0, 255).astype(np.uint8), "L")
        note = f"{mode} (high bit depth greyscale) reduced to 8-bit RGBA"
    elif mode == "P":
        note = "paletted image converted to RGBA" + (
            " (its transparent index kept)" if "transparency" in image.info else ""
        )
    else:
        note = f"{mode} image converted to RGBA"
    return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy(), note


def apply_colour_key(rgba: np.ndarray, key: str | tuple[int, int, int]) -> tuple[np.ndarray, str]:
    """Make the key colour transparent in an image that has no transparency; returns a note of what was done."""
    if key == "none" or (rgba[..., 3] < 255).any():
        return rgba, ""
    rgb = rgba[..., :3]
    guessed = key == "auto"
    if guessed:
        corners = {tuple(rgb[y, x]) for y in (0, -1) for x in (0, -1)}
        if (rgb == MAGENTA).all(axis=-1).any():
            key = MAGENTA
        elif len(corners) == 1:
            key = corners.pop()
        else:
            return rgba, ""
    hits = (rgb == np.array(key, dtype=np.uint8)).all(axis=-1)
    if not hits.any() or (guessed and hits.all()):
        return rgba, ""  # a guessed key that is the whole image is no background: a one-colour sprite stays
    out = rgba.copy()
    out[hits] = 0
    return out, "colour key #{:02x}{:02x}{:02x} made transparent".format(*(int(v) for v in key))


def load_sprite_image(path: Path, key: str | tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """A user image as RGBA with the colour key applied, and notes on the conversions made."""
    rgba, converted = _to_rgba(open_image(path))
    rgba, keyed = apply_colour_key(rgba, key)
    return rgba, [note for note in (converted, keyed) if note]


def _category_for(path: Path, folder: Path) -> str:
    parts = path.relative_to(folder).parts
    return parts[0] if len(parts) > 1 else folder.resolve().name


def _check_usable(result: ImportResult, where: str) -> None:
    if result.images:
        return
    reasons: Counter[str] = Counter()
    for item in result.rejected:
        reasons[item["reason"]] += int(item.get("count", 1))
    summary = "; ".join(f"{n} {reason}" for reason, n in reasons.most_common()) or "no PNG files found"
    raise BadInputError(f"no usable sprites in {where}: {summary}")


def import_folder(folder: Path, colour_key: str = "auto") -> ImportResult:
    """One sprite per PNG below ``folder``; categories from sub-folder names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"{folder} is not a folder")
    key = parse_colour_key(colour_key)
    result = ImportResult()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = str(path.relative_to(folder))
        if path.suffix.lower() != ".png":
            result.rejected.append({"file": name, "reason": "not a PNG file"})
            continue
        try:
            rgba, notes = load_sprite_image(path, key)
        except BadInputError as exc:
            result.rejected.append({"file": name, "reason": str(exc)})
            continue
        cell, reason = fit_to_cell(rgba, CELL)
        reason = reason or emptiness(cell)
        if reason:
            height, width = rgba.shape[:2]
            result.rejected.append({"file": name, "reason": f"{width}x{height}: {reason}"})
            continue
        result.add(cell, _category_for(path, folder), name)
        result.notes.extend({"file": name, "note": note} for note in notes)
    _check_usable(result, str(folder))
    return result


def import_sheet(sheet: Path, grid: int, category: str | None = None, colour_key: str = "auto") -> ImportResult:
    """The cells of one sprite sheet on a ``grid`` x ``grid`` grid, all in one category."""
    sheet = Path(sheet)
    if grid < 1:
        raise BadInputError(f"--grid must be a positive number of pixels, got {grid}")
    rgba, notes = load_sprite_image(sheet, parse_colour_key(colour_key))
    height, width = rgba.shape[:2]
    if height % grid or width % grid:
        raise BadInputError(
            f"{sheet.name} is {width}x{height} pixels: not a multiple of the {grid} px grid "
            f"(expected e.g. {width - width % grid or grid}x{height - height % grid or grid}); check --grid"
        )
    result = ImportResult(notes=[{"file": sheet.name, "note": note} for note in notes])
    name = category or sheet.stem
    reasons: Counter[str] = Counter()
    for _, _, piece in slice_grid(rgba, grid):
        cell, reason = fit_to_cell(piece, CELL)
        reason = reason or emptiness(cell)
        if reason:
            reasons[reason] += 1
            continue
        result.add(cell, name, sheet.name)
    result.rejected = [{"file": sheet.name, "reason": r, "count": n} for r, n in reasons.most_common()]
    _check_usable(result, sheet.name)
    return result


def write_import(
    result: ImportResult, out: Path, *, source: Path, command: str, seed: int, val_fraction: float, grid: int
) -> SpriteDataset:
    """Write an import as a data set (same format and split rules as the crawl set)."""
    if not 0.0 <= val_fraction < 1.0:
        raise BadInputError(f"--val-fraction must be at least 0 and below 1, got {val_fraction}")
    images, labels = result.arrays()
    return write_sprite_dataset(
        out,
        images,
        labels,
        result.categories,
        name=Path(out).name,
        source=f"imported from {source}",
        licence="supplied by the user; Studio did not check its licence",
        recipe={"command": command, "seed": seed, "val_fraction": val_fraction, "grid": grid},
        rejected=result.rejected,
        notes=result.notes,
        names=result.names,
    )
