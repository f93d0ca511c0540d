"""Dungeon Crawl Stone Soup's named tiles, from Debian's source package ``crawl`` (tiles mostly public domain / CC0).

The game's source keeps every tile as its own PNG under ``source/rltiles/``, in folders that name it
(``mon/undead/skeletons/skeleton_humanoid_large.png``, ``item/potion/ruby.png``, ``dngn/wall/stone_brick1.png``).
The binary package ``crawl-tiles-data`` only has the sheets built from them, which lose the names, so the data set
is built from the source: each tile keeps its path, whose words become its tags (:mod:`studio.core.sprite_tags`).

The source package is fetched with ``apt-get source --download-only`` from the deb-src twin of the system's own
Debian sources (the package registry; nothing else is contacted), its upstream tarball is checked against
:data:`KNOWN_SOURCES` (sha256), and only the tile folder and the licence files are unpacked into Studio's cache.

Folders become the six categories by :data:`CATEGORY_RULES` (first match wins). Spell effects, clouds, cursors and
the paper-doll layers of the player (a helmet or a sword drawn for a body, not a whole sprite) are left out, and so
are painted tiles of more than :data:`MAX_COLOURS` colours (a quarter of the set, most of the walls of the Abyss):
Studio makes pixel art, and models trained on painted tiles paint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.formats.images import load_rgba
from studio.core.pixel_art import colour_counts
from studio.core.safe_write import staged_folder, write_atomic
from studio.ml.data.sprite_cells import CELL, emptiness, fit_to_cell

SOURCE_PACKAGE = "crawl"
COPYRIGHT_PACKAGE = "crawl-common"  # Debian's copyright file for the game, tiles included
APT_HELPER = "/usr/lib/apt/apt-helper"
# Upstream tarballs whose tiles this builder was checked against: file name -> sha256.
KNOWN_SOURCES = {
    "crawl_0.28.0.orig.tar.xz": "5a6be168f8888b84bdb199184ca20bd8636f77ba7e9e0124ebee8850092f2f47",
}
TILES_DIR = Path("rltiles")
LICENCE_FILES = ("copyright", "rltiles-license.txt")
SOURCE_FILE = "source.json"
CATEGORIES = ("items", "characters", "features", "floor", "wall", "gui")
MAX_COLOURS = 64  # distinct opaque colours a pixel-art tile may have (real pixel art: 8 to 24 in most tiles)
PAINTED = f"more than {MAX_COLOURS} colours: painted, not pixel art"
CATEGORY_RULES: tuple[tuple[str, str | None], ...] = (
    ("dngn/floor/", "floor"),
    ("dngn/water/", "floor"),
    ("UNUSED/floor/", "floor"),
    ("dngn/wall/", "wall"),
    ("dngn/", "features"),
    ("UNUSED/features/", "features"),
    ("item/", "items"),
    ("UNUSED/armour/", "items"),
    ("UNUSED/weapons/", "items"),
    ("UNUSED/food/", "items"),
    ("mon/", "characters"),
    ("player/base/", "characters"),
    ("player/felids/", "characters"),
    ("player/transform/", "characters"),
    ("UNUSED/monsters/", "characters"),
    ("UNUSED/emissaries/", "characters"),
    ("gui/backgrounds/", None),
    ("gui/startup/", None),
    ("gui/tutorial/", None),
    ("gui/", "gui"),
    ("misc/icons/", "gui"),
    ("UNUSED/gui/", "gui"),
)

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class Tile:
    """One usable tile: its path below the tile folder, its category and its 32x32 RGBA cell."""

    path: str
    category: str
    cell: np.ndarray


def default_cache() -> Path:
    return paths.cache_dir() / "crawl-tiles-source"


def category_for(path: str) -> str | None:
    """The category of a tile path (relative, with '/'), or None when the tile is left out."""
    for prefix, category in CATEGORY_RULES:
        if path.startswith(prefix):
            return category
    return None


def is_extracted(root: Path) -> bool:
    return (root / TILES_DIR).is_dir() and (root / SOURCE_FILE).is_file()


def _run(runner: Runner, command: list[str], cwd: Path) -> str:
    try:
        result = runner(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise StudioError(
            f"{command[0]} is not available: the sprite set is built from Debian's source package "
            f"{SOURCE_PACKAGE!r}. On another system download {next(iter(KNOWN_SOURCES))} yourself and pass its "
            "folder with --crawl-dir."
        ) from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise StudioError(f"{' '.join(command)} failed: {detail[-1] if detail else f'exit {result.returncode}'}")
    return result.stdout


def apt_entries(sources_dir: Path = Path("/etc/apt")) -> list[str]:
    """The system's own ``deb`` sources as one-line entries, each also as ``deb-src`` (one-line and deb822 files)."""
    entries: list[str] = []
    legacy = [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]
    for path in legacy:
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                fields = line.split("#", 1)[0].split()
                if fields[:1] == ["deb"]:
                    entries += [" ".join(fields), " ".join(["deb-src", *fields[1:]])]
    for path in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            values = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, value = line.split(":", 1)
                    values[key.strip().lower()] = value.strip()
            if "deb" not in values.get("types", "").split() or values.get("enabled", "yes").lower() == "no":
                continue
            signed = f"[signed-by={values['signed-by']}] " if values.get("signed-by", "").startswith("/") else ""
            for uri in values.get("uris", "").split():
                for suite in values.get("suites", "").split():
                    rest = f"{signed}{uri} {suite} {values.get('components', 'main')}"
                    entries += [f"deb {rest}", f"deb-src {rest}"]
    return list(dict.fromkeys(entries))


def _source_uris(listing: str) -> dict[str, tuple[str, str]]:
    """``apt-get source --print-uris`` output -> {file name: (uri, "SHA256:..." or "")}."""
    found = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].startswith("'") and fields[0].endswith("'"):
            digest = next((f for f in fields[3:] if f.upper().startswith("SHA256:")), "")
            found[fields[1]] = (fields[0].strip("'"), digest)
    return found


def _download_source(work: Path, runner: Runner) -> None:
    """The upstream tarball of the ``crawl`` source package and the ``crawl-common`` package (for its copyright
    file), through apt with a private source list (the system's apt state is untouched)."""
    entries = apt_entries()
    if not entries:
        raise StudioError("no Debian package sources are configured on this system (/etc/apt): cannot fetch the tiles")
    (work / "lists" / "partial").mkdir(parents=True)
    (work / "sources.list").write_text("\n".join(entries) + "\n", encoding="utf-8")
    options = [
        f"-oDir::Etc::SourceList={work / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={work / 'lists'}", "-oAcquire::Languages=none",
    ]
    _run(runner, ["apt-get", *options, "update"], cwd=work)
    listing = _run(runner, ["apt-get", *options, "source", "--print-uris", "--download-only", SOURCE_PACKAGE], work)
    tarballs = {name: where for name, where in _source_uris(listing).items() if ".orig.tar." in name}
    if not tarballs:
        raise StudioError(f"apt offers no upstream tarball for the source package {SOURCE_PACKAGE!r}")
    for name, (uri, digest) in tarballs.items():
        _run(runner, [APT_HELPER, "download-file", uri, str(work / name), *([digest] if digest else [])], cwd=work)
    _run(runner, ["apt-get", *options, "download", COPYRIGHT_PACKAGE], cwd=work)
    for deb in work.glob(f"{COPYRIGHT_PACKAGE}_*.deb"):
        _run(runner, ["dpkg", "-x", str(deb), str(work / "common")], cwd=work)
        copyright_file = work / "common" / "usr/share/doc" / COPYRIGHT_PACKAGE / "copyright"
        if copyright_file.is_file():
            shutil.copyfile(copyright_file, work / "copyright")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _known_tarball(folder: Path) -> tuple[Path, str]:
    """The pinned upstream tarball in ``folder``; StudioError when it is missing or its hash is unknown."""
    found = sorted(folder.glob(f"{SOURCE_PACKAGE}_*.orig.tar.*"))
    for path in found:
        digest = _sha256(path)
        if KNOWN_SOURCES.get(path.name) == digest:
            return path, digest
    names = ", ".join(p.name for p in found) or "none"
    raise StudioError(
        f"no known Dungeon Crawl source tarball in {folder} (found: {names}); Studio checks the tiles against "
        f"{', '.join(f'{n} (sha256 {h[:12]}…)' for n, h in KNOWN_SOURCES.items())}"
    )


def _extract(tarball: Path, staging: Path) -> None:
    """Only ``source/rltiles`` (PNGs and licence), with tarfile's safe 'data' filter."""
    tiles = staging / TILES_DIR
    with tarfile.open(tarball) as archive:
        for member in archive:
            parts = member.name.split("/")
            if len(parts) < 4 or parts[1:3] != ["source", "rltiles"] or not member.isfile() or ".." in parts:
                continue
            relative = "/".join(parts[3:])
            if relative == "license.txt":
                target = staging / "rltiles-license.txt"
            elif relative.endswith(".png"):
                target = tiles / relative
            else:
                continue
            member.name = str(target.relative_to(staging))
            archive.extract(member, staging, filter="data")


def ensure_crawl_source(
    cache: Path | None = None, runner: Runner = subprocess.run, downloaded: Path | None = None
) -> Path:
    """The folder holding the unpacked tiles, fetching the source package the first time (package registry).

    ``downloaded``: a folder that already holds the upstream tarball (and optionally Debian's ``copyright`` file),
    used instead of apt (``--crawl-dir``).
    """
    root = cache or default_cache()
    if is_extracted(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".crawl-fetch-") as tmp, \
            staged_folder(root, "the Dungeon Crawl tiles") as staging:
        work = Path(tmp)
        folder = downloaded
        if folder is None:
            _download_source(work, runner)
            folder = work
        tarball, digest = _known_tarball(folder)
        _extract(tarball, staging)
        if (folder / "copyright").is_file():
            shutil.copyfile(folder / "copyright", staging / "copyright")
        if not any((staging / TILES_DIR).rglob("*.png")):
            raise StudioError(f"{tarball.name} holds no tiles under source/rltiles")
        record = {"package": SOURCE_PACKAGE, "file": tarball.name, "sha256": digest}
        write_atomic(staging / SOURCE_FILE, json.dumps(record, indent=2), "the Dungeon Crawl tiles")
    return root


def describe_source(root: Path) -> str:
    """Package, file and hash for the data manifest."""
    record = json.loads((root / SOURCE_FILE).read_text(encoding="utf-8"))
    return f"Debian source package {record['package']}: {record['file']} (sha256 {record['sha256'][:12]}), " \
           f"source/rltiles"


def licence_text(root: Path) -> str:
    texts = [(root / name).read_text(encoding="utf-8", errors="replace") for name in LICENCE_FILES
             if (root / name).is_file()]
    return "\n\n".join(texts)


def crawl_tiles(root: Path, grid: int = CELL) -> tuple[list[Tile], list[dict[str, object]]]:
    """Every usable tile below ``root/rltiles`` in path order, and the counts of what was left out and why."""
    tiles: list[Tile] = []
    reasons: Counter[tuple[str, str]] = Counter()
    folder = root / TILES_DIR
    for path in sorted(folder.rglob("*.png")):
        relative = path.relative_to(folder).as_posix()
        category = category_for(relative)
        top = relative.split("/", 1)[0]
        if category is None:
            reasons[(top, "not a whole sprite of the six categories (effect, cursor or paper-doll layer)")] += 1
            continue
        if path.name.startswith("._"):
            continue  # a macOS resource fork packed by mistake, not an image
        try:
            piece = load_rgba(path)
        except StudioError:
            reasons[(top, "unreadable PNG")] += 1
            continue
        cell, reason = fit_to_cell(piece, grid)
        reason = reason or emptiness(cell) or (PAINTED if colour_counts(cell)[0] > MAX_COLOURS else "")
        if reason:
            reasons[(top, reason)] += 1
            continue
        tiles.append(Tile(relative, category, cell))
    rejected = [{"file": f"{top}/", "reason": r, "count": n} for (top, r), n in sorted(reasons.items())]
    return tiles, rejected
