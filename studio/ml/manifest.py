"""``models/manifest.json``: the bundled model files and their sha256, checked before anything is loaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import ModelFileError
from studio.core.formats.json_file import read_json
from studio.core.paths import reinstall_hint
from studio.core.safe_write import write_atomic
from studio.ml.checkpoint import sha256_file

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ManifestEntry:
    name: str  # registry model name, e.g. "sprite-gan"
    arch: str
    modality: str
    files: dict[str, str]  # relative path -> sha256
    card: str = ""
    size_bytes: int = 0


def read_manifest(folder: Path) -> dict[str, ManifestEntry]:
    path = folder / MANIFEST_NAME
    if not path.exists():
        return {}
    raw = read_json(path, str(path), error=ModelFileError)
    try:
        return {
            item["name"]: ManifestEntry(
                name=item["name"],
                arch=item["arch"],
                modality=item["modality"],
                files=dict(item["files"]),
                card=item.get("card", ""),
                size_bytes=int(item.get("size_bytes", 0)),
            )
            for item in raw.get("models", [])
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"{path} is damaged ({exc}); {reinstall_hint()}") from None


def write_manifest(folder: Path, entries: dict[str, ManifestEntry]) -> None:
    models = [
        {
            "name": e.name,
            "arch": e.arch,
            "modality": e.modality,
            "files": dict(sorted(e.files.items())),
            "card": e.card,
            "size_bytes": e.size_bytes,
        }
        for e in sorted(entries.values(), key=lambda e: e.name)
    ]
    write_atomic(folder / MANIFEST_NAME, json.dumps({"version": 1, "models": models}, indent=2) + "\n",
                 "the model manifest")


def entry_for_files(
    folder: Path, name: str, arch: str, modality: str, files: list[Path], card: str = ""
) -> ManifestEntry:
    hashes = {str(f.relative_to(folder)): sha256_file(f) for f in files}
    size = sum(f.stat().st_size for f in files)
    return ManifestEntry(name, arch, modality, hashes, card, size)


def verify_entry(folder: Path, entry: ManifestEntry) -> None:
    """Raise ModelFileError unless every file of the entry exists with the recorded sha256."""
    for rel, expected in entry.files.items():
        path = folder / rel
        if not path.exists():
            raise ModelFileError(f"bundled model {entry.name!r}: {rel} is missing; {reinstall_hint()}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelFileError(
                f"bundled model {entry.name!r}: {rel} does not match its recorded sha256 "
                f"(expected {expected[:12]}…, found {actual[:12]}…): the file was changed or damaged; "
                f"{reinstall_hint()}"
            )
