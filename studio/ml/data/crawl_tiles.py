"""Dungeon Crawl Stone Soup tiles from Debian (``crawl-tiles-data``, tiles mostly public domain / CC0).

The packages are fetched with ``apt-get download`` (no root install) and unpacked with ``dpkg -x`` into Studio's
cache folder; a cached extraction is reused. Sheets become categories:

============  ============  ======================================================================
sheet         category      contents
============  ============  ======================================================================
main.png      items         weapons, armour, potions, scrolls, books, food, jewellery, missiles
player.png    characters    monsters and the parts of the player's paper doll
feat.png      features      trees, doors, gates, statues, altars, fountains, traps
floor.png     floor         floor textures (opaque 32x32, on the grid)
wall.png      wall          wall textures (opaque 32x32, on the grid)
gui.png       gui           spell, ability and interface icons
icons.png     gui           small interface overlays (cursors, frames)
============  ============  ======================================================================

Floor and wall sheets lie on the 32 px grid; the others are packed atlases of trimmed sprites, recovered by
:mod:`studio.ml.data.packed_sheet`. Title screens and logos are not tiles and are skipped.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.formats.images import load_rgba
from studio.core.safe_write import staged_folder, write_atomic
from studio.ml.data.packed_sheet import segment_packed_sheet
from studio.ml.data.sprite_cells import CELL, emptiness, fit_to_cell, slice_grid

PACKAGES = ("crawl-tiles-data", "crawl-common")
TILES_DIR = Path("usr/share/crawl/dat/tiles")
COPYRIGHT = Path("usr/share/doc/crawl-common/copyright")
SOURCE_FILE = "source.json"


@dataclass(frozen=True)
class Sheet:
    file: str
    category: str
    packed: bool


SHEETS = (
    Sheet("main.png", "items", packed=True),
    Sheet("player.png", "characters", packed=True),
    Sheet("feat.png", "features", packed=True),
    Sheet("floor.png", "floor", packed=False),
    Sheet("wall.png", "wall", packed=False),
    Sheet("gui.png", "gui", packed=True),
    Sheet("icons.png", "gui", packed=True),
)
CATEGORIES = tuple(dict.fromkeys(sheet.category for sheet in SHEETS))

Runner = Callable[..., subprocess.CompletedProcess]


def default_cache() -> Path:
    return paths.cache_dir() / "crawl-tiles"


def is_extracted(root: Path) -> bool:
    return all((root / TILES_DIR / sheet.file).is_file() for sheet in SHEETS) and (root / COPYRIGHT).is_file()


def _run(runner: Runner, command: list[str], cwd: Path) -> None:
    try:
        result = runner(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise StudioError(
            f"{command[0]} is not available: the sprite set is built from Debian's {' and '.join(PACKAGES)} "
            "packages. On another system unpack them yourself and pass the folder with --crawl-dir."
        ) from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise StudioError(f"{' '.join(command)} failed: {detail[-1] if detail else f'exit {result.returncode}'}")


def ensure_crawl_tiles(cache: Path | None = None, runner: Runner = subprocess.run) -> Path:
    """The folder holding the unpacked packages, fetching them the first time (needs the package registry)."""
    root = cache or default_cache()
    if is_extracted(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".crawl-fetch-") as tmp, \
            staged_folder(root, "the Dungeon Crawl tiles") as staging:
        work = Path(tmp)
        _run(runner, ["apt-get", "download", *PACKAGES], cwd=work)
        source = {}
        for deb in sorted(work.glob("*.deb")):
            _run(runner, ["dpkg", "-x", str(deb), str(staging)], cwd=work)
            package, version = deb.name.split("_")[:2]
            source[package] = {"file": deb.name, "version": version.replace("%3a", ":"), "sha256": _sha256(deb)}
        if not is_extracted(staging):
            raise StudioError(f"the downloaded packages do not contain the expected tile sheets under {TILES_DIR}")
        write_atomic(staging / SOURCE_FILE, json.dumps(source, indent=2), "the Dungeon Crawl tiles")
    return root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def describe_source(root: Path) -> str:
    """Package names and versions for the data manifest."""
    record = root / SOURCE_FILE
    if record.is_file():
        packages = json.loads(record.read_text(encoding="utf-8"))
        listed = ", ".join(
            f"{name} {info['version']} (sha256 {info['sha256'][:12]})" for name, info in packages.items()
        )
        return f"Debian packages {listed}"
    return f"Debian packages {', '.join(PACKAGES)} unpacked in {root}"


def licence_text(root: Path) -> str:
    return (root / COPYRIGHT).read_text(encoding="utf-8", errors="replace")


def sheet_pieces(rgba: np.ndarray, sheet: Sheet, grid: int = CELL) -> list[np.ndarray]:
    """The sprites of one sheet, uncut: grid cells, or the recovered sprites of a packed atlas."""
    if not sheet.packed:
        return [piece for _, _, piece in slice_grid(rgba, grid)]
    return [rgba[r.y0 : r.y1, r.x0 : r.x1] for r in segment_packed_sheet(rgba, grid)]


def crawl_cells(root: Path, grid: int = CELL) -> tuple[np.ndarray, np.ndarray, list[dict[str, object]]]:
    """All usable cells of the sheets: (images (N,32,32,4), labels (N,) into CATEGORIES, rejected counts)."""
    images, labels, rejected = [], [], []
    for sheet in SHEETS:
        rgba = load_rgba(root / TILES_DIR / sheet.file)
        reasons: Counter[str] = Counter()
        for piece in sheet_pieces(rgba, sheet, grid):
            cell, reason = fit_to_cell(piece, grid)
            reason = reason or emptiness(cell)
            if reason:
                reasons[reason] += 1
                continue
            images.append(cell)
            labels.append(CATEGORIES.index(sheet.category))
        rejected.extend({"file": sheet.file, "reason": r, "count": n} for r, n in sorted(reasons.items()))
    return np.stack(images), np.array(labels, dtype=np.int64), rejected
