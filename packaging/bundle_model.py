"""Put a trained model into the bundled models (models/): weights + sidecar copied under the bundled name, the
sidecar's name (and, where the training machine could not read git, its commit) set, the manifest's sha256 updated.

    python packaging/bundle_model.py RUN/model.safetensors sprite-gan [--commit abc1234]

The model card (models/NAME.md) is written by hand beside it and listed in the manifest when it exists.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.ml.checkpoint import read_sidecar  # noqa: E402
from studio.ml.manifest import entry_for_files, read_manifest, write_manifest  # noqa: E402


def bundle(source: Path, name: str, commit: str | None, folder: Path = ROOT / "models") -> list[Path]:
    meta = read_sidecar(source)
    meta["name"] = name
    if commit:
        meta.setdefault("training", {})["commit"] = commit
    weights = folder / f"{name}.safetensors"
    sidecar = folder / f"{name}.json"
    shutil.copyfile(source, weights)
    sidecar.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    card = folder / f"{name}.md"
    entries = read_manifest(folder)
    entries[name] = entry_for_files(folder, name, meta["arch"], meta.get("modality", ""), [sidecar, weights],
                                    card.name if card.exists() else "")
    write_manifest(folder, entries)
    return [weights, sidecar]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the trained model's .safetensors (its .json beside it)")
    parser.add_argument("name", help="the bundled name, e.g. sprite-gan")
    parser.add_argument("--commit", help="the commit the model was trained from (when its sidecar could not know)")
    args = parser.parse_args()
    for path in bundle(args.source, args.name, args.commit):
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
