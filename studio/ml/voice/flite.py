"""A Flite voice (CMU's classic synthesiser; free licence, see its card): the ``flite`` program set-up unpacked
from Debian, run once per piece of the script on a ``.flitevox`` voice file. A crash of the program costs the job
its piece, never the app."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from studio.core.errors import BadInputError, ModelFileError
from studio.ml.checkpoint import sha256_file

TIMEOUT_S = 120


class FliteVoice:
    """``synthesize(text, length_scale, seed)`` -> mono float32 at ``rate`` (Flite is deterministic: no seed)."""

    engine = "flite"
    rate = 16000

    def __init__(self, program: Path, voice_file: Path, name: str, sha256: str) -> None:
        self.program = program
        self.voice_file = voice_file
        self.name = name
        self.sha256 = sha256
        self.nbytes = voice_file.stat().st_size

    def synthesize(self, text: str, length_scale: float, seed: int) -> np.ndarray:
        del seed
        env = {**os.environ, "LD_LIBRARY_PATH": str(self.program.parent.parent / "lib")}
        with tempfile.TemporaryDirectory(prefix="studio-flite-") as tmp:
            out = Path(tmp) / "piece.wav"
            command = [str(self.program), "-voice", str(self.voice_file), "--setf",
                       f"duration_stretch={length_scale:.4f}", "-t", text, "-o", str(out)]
            try:
                done = subprocess.run(command, env=env, capture_output=True, timeout=TIMEOUT_S, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ModelFileError(f"the Flite synthesiser did not run ({exc}): run set-up again") from None
            if done.returncode != 0 or not out.exists():
                reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
                raise BadInputError(f"{self.name} could not speak {text[:40]!r}: {reason[0][:200]}")
            audio, rate = sf.read(str(out), dtype="float32", always_2d=True)
        if rate != self.rate:
            raise ModelFileError(f"{self.name} spoke at {rate} Hz, not {self.rate} Hz: its voice file is not Flite's")
        return audio[:, 0]


def load_flite_voice(voice_file: Path, meta: dict, name: str) -> FliteVoice:
    """A Flite voice after checking the voice file and the program against the sha256 recorded at set-up."""
    files = meta.get("files") or {}
    program = voice_file.parent / str(meta.get("config", {}).get("program", "flite/bin/flite"))
    for path in (voice_file, program):
        if not path.is_file():
            raise ModelFileError(f"{path.name} of the voice {name} is missing: run set-up again "
                                 "(bash packaging/setup.sh setup)")
        expected = files.get(path.relative_to(voice_file.parent).as_posix())
        if expected is None or sha256_file(path) != expected:
            raise ModelFileError(f"{path.name} of the voice {name} is damaged or not the one set-up installed: "
                                 "run set-up again")
    return FliteVoice(program, voice_file, name, files[voice_file.name])
