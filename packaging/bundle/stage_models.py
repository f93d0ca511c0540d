"""Stage the models a bundle ships: the repository's models/, plus the base language model, and the ONNX export of
the default copy model (the adapter in models/, whose graph is built on that base).

    python packaging/bundle/stage_models.py OUT_DIR [--variants int4]

The language model (the GGUF and its sidecar that packaging/fetch_models.py put in the user's model folder) is
copied to OUT_DIR/lm/ and listed in OUT_DIR/manifest.json with its sha256, so the bundle checks it like every other
bundled model. Each ONNX export of the default copy model named in ``--variants`` that exists and verifies goes
to OUT_DIR/onnx/NAME/VARIANT/ (the same layout as the user's folder; Studio looks in both). A missing language
model stops the build with the command that fetches it; a missing export is reported and skipped (the app then
makes it on first use).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from studio.core import paths  # noqa: E402
from studio.core.errors import ModelFileError  # noqa: E402
from studio.core.modalities.copy import BASE_LANGUAGE_MODEL, DEFAULT_COPY_MODEL  # noqa: E402
from studio.ml.manifest import entry_for_files, read_manifest, write_manifest  # noqa: E402
from studio.ml.runtime.exports import default_export_dir, read_record, stale_reason, verify_record  # noqa: E402
from studio.ml.store import ModelStore  # noqa: E402


def stage(out: Path, variants: list[str]) -> list[str]:
    """Fill ``out``; returns one line per thing staged or skipped."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "models", out)
    notes = [f"models/: {len(read_manifest(out))} bundled models"]
    name = BASE_LANGUAGE_MODEL
    try:
        entry = ModelStore(bundled=ROOT / "models", user=paths.user_models_dir()).find(name)
    except ModelFileError:
        raise SystemExit(f"the base language model {name!r} is not in {paths.user_models_dir() / 'lm'}: "
                         "run `bash packaging/setup.sh setup` (it fetches it, and makes its int4 export)") from None
    lm_dir = out / "lm"
    lm_dir.mkdir()
    files = [Path(shutil.copy2(entry.weights, lm_dir)), Path(shutil.copy2(entry.weights.with_suffix(".json"), lm_dir))]
    entries = read_manifest(out)
    entries[name] = entry_for_files(out, name, entry.arch, entry.modality, files)
    write_manifest(out, entries)
    notes.append(f"lm/{entry.weights.name}: {entry.weights.stat().st_size / 1e6:.0f} MB")
    name = DEFAULT_COPY_MODEL  # the graph copy runs on (the bundled adapter's, built on the base model)
    for variant in variants:
        source = default_export_dir(name, variant)
        try:
            record = read_record(source)
            verify_record(record)
            if (reason := stale_reason(record)) is not None:  # the app would refuse it and export again
                raise ModelFileError(f"the export {reason}: run `bash packaging/setup.sh setup` again")
        except ModelFileError as exc:
            notes.append(f"no usable {variant} export of {name} ({exc}); the app makes one on first use")
            continue
        target = out / "onnx" / name / variant
        shutil.copytree(source, target)
        size = sum(p.stat().st_size for p in target.iterdir())
        notes.append(f"onnx/{name}/{variant}: {size / 1e6:.0f} MB")
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--variants", nargs="*", default=["int4"], help="ONNX exports of the copy model to ship")
    args = parser.parse_args()
    for line in stage(args.out, args.variants):
        print(f"[build] {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
