"""Turning what a user points at (a folder of PNGs, a sprite sheet, or a built data set) into a data set folder.

Imports are written once per source under the data folder, keyed by the source's path and modification time, so
resuming a run trains on exactly the data it started with.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from studio.core import paths
from studio.core.errors import BadInputError
from studio.ml.data.sprite_import import import_folder, import_sheet, write_import
from studio.ml.data.sprites import load_sprite_dataset

VAL_FRACTION = 0.1


def is_dataset(folder: Path) -> bool:
    return folder.is_dir() and (folder / "manifest.json").exists() and (folder / "train.npz").exists()


def _source_key(source: Path, grid: int) -> str:
    stamp = max((p.stat().st_mtime_ns for p in source.rglob("*") if p.is_file()), default=0) if source.is_dir() \
        else source.stat().st_mtime_ns
    digest = hashlib.sha256(f"{source.resolve()}|{stamp}|{grid}".encode()).hexdigest()[:12]
    return f"{source.stem or 'import'}-{digest}"


def prepare_sprite_data(source: Path, grid: int = 0, command: str = "") -> Path:
    """A data-set folder for ``source``: itself when it is one, else an import written under the data folder."""
    source = Path(source).expanduser()
    if not source.exists():
        raise BadInputError(f"{source} does not exist")
    if is_dataset(source):
        return source
    out = paths.data_dir() / "datasets" / "imported" / _source_key(source, grid)
    if is_dataset(out):
        load_sprite_dataset(out)  # checks the hashes of what was written before
        return out
    if source.is_file():
        if not grid:
            raise BadInputError(f"{source.name} is one image: give --grid N to slice it as a sprite sheet")
        result = import_sheet(source, grid)
    else:
        result = import_folder(source)
    write_import(result, out, source=source, command=command, seed=0, val_fraction=VAL_FRACTION, grid=grid or 32)
    return out
