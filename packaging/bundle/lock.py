"""Lock a bundle's requirements: every package pip resolves from ``requirements-VARIANT.in``, pinned with its sha256.

    python3.11 packaging/bundle/lock.py cpu     # writes packaging/bundle/requirements-cpu.txt

Run it only to change what a bundle holds (it asks the package index, like any pip install); packaging/build.sh
installs from the locked file with ``--require-hashes --no-deps``, so a build gets exactly these files or stops.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def resolve(requirements: Path) -> list[tuple[str, str, str]]:
    """(name, version, sha256) of everything ``pip install -r requirements`` would install in a fresh environment."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), "-r", str(requirements)], check=True)
        items = json.loads(report.read_text(encoding="utf-8"))["install"]
    locked = []
    for item in items:
        digest = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        if not digest:
            raise SystemExit(f"pip reported no sha256 for {item['metadata']['name']}; cannot lock it")
        locked.append((item["metadata"]["name"], item["metadata"]["version"], digest))
    return sorted(locked, key=lambda row: row[0].lower())


def main() -> int:
    variant = sys.argv[1] if len(sys.argv) > 1 else ""
    source = HERE / f"requirements-{variant}.in"
    if not source.exists():
        raise SystemExit("usage: python3.11 packaging/bundle/lock.py cpu|cuda")
    lines = [f"# Locked from {source.name} by packaging/bundle/lock.py (Python 3.11, Linux x86_64); do not edit.\n"]
    lines += [f"{name}=={version} \\\n    --hash=sha256:{digest}\n" for name, version, digest in resolve(source)]
    target = source.with_suffix(".txt")
    target.write_text("".join(lines), encoding="utf-8")
    print(f"wrote {target} ({len(lines) - 1} packages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
