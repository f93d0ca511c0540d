"""Optional General MIDI rendering through a SoundFont with the ``midirenderer`` package.

Used when the user asks for it and both pieces are present: the package (``pip install midirenderer``) and an
SF2 file (a path given by the user or in settings, the ``STUDIO_SOUNDFONT`` environment variable, or a Debian
SoundFont such as ``fluid-soundfont-gm`` under /usr/share/sounds/sf2/). When either is missing, or the file is
not a SoundFont, ``find_soundfont`` says so in a sentence and the caller falls back to the built-in synthesiser:
never fatal.
"""

from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from studio.core.errors import BadInputError
from studio.core.formats.midi import midi_bytes
from studio.core.music_theory import Key, Meter, clip_beats, clip_samples

SEARCH_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf3/default-GM.sf3",
)
INSTALL_HINT = "install one (e.g. `apt install fluid-soundfont-gm`) or give its path with --soundfont"


@dataclass(frozen=True)
class SoundFontStatus:
    path: Path | None
    problem: str = ""  # empty when usable

    @property
    def usable(self) -> bool:
        return self.path is not None and not self.problem


def soundfont_problem(path: Path) -> str:
    """Why ``path`` cannot be used as a SoundFont, or '' when its header says it is one (RIFF ... sfbk)."""
    path = Path(path)
    if not path.is_file():
        return f"SoundFont {path} does not exist"
    with open(path, "rb") as fh:
        header = fh.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        return f"{path.name} is not a SoundFont (an SF2/SF3 file starts with a RIFF 'sfbk' header)"
    return ""


def find_soundfont(explicit: str | Path | None = None) -> SoundFontStatus:
    """The SoundFont to use and whether it can be used; ``explicit`` (user/settings) wins over the search."""
    explicit = explicit or os.environ.get("STUDIO_SOUNDFONT") or None
    if importlib.util.find_spec("midirenderer") is None:
        return SoundFontStatus(None, "General MIDI rendering needs the midirenderer package "
                                     "(`pip install midirenderer`); using the built-in synthesiser")
    if explicit:
        problem = soundfont_problem(Path(explicit))
        return SoundFontStatus(Path(explicit), f"{problem}; using the built-in synthesiser" if problem else "")
    for candidate in SEARCH_PATHS:
        if Path(candidate).is_file() and not soundfont_problem(Path(candidate)):
            return SoundFontStatus(Path(candidate))
    return SoundFontStatus(None, f"no SoundFont found: {INSTALL_HINT}; using the built-in synthesiser")


def fold_loop(audio: np.ndarray, total: int) -> np.ndarray:
    """(m, 2) audio as a (total, 2) loop: what rings past the end is added back at the start."""
    out = np.zeros((total, audio.shape[1]), np.float32)
    for start in range(0, len(audio), total):
        chunk = audio[start:start + total]
        out[: len(chunk)] += chunk
    return out


def render_midi(data: bytes, soundfont: Path, rate: int) -> np.ndarray:
    """A MIDI file's bytes rendered to (m, 2) float32 at ``rate``."""
    import midirenderer

    try:
        wav = midirenderer.render_wave_from(Path(soundfont).read_bytes(), data)
    except (ValueError, RuntimeError, OSError) as exc:
        raise BadInputError(f"{Path(soundfont).name} could not be used as a SoundFont ({exc})") from None
    audio, source_rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    if source_rate != rate:
        audio = AF.resample(torch.from_numpy(np.ascontiguousarray(audio.T)), source_rate, rate).T.numpy()
    return np.ascontiguousarray(audio[:, :2], dtype=np.float32)


def render_stems(notes: Sequence[Mapping[str, Any]], programs: Mapping[str, int], bpm: float, meter: Meter,
                 key: Key, bars: int, soundfont: Path, rate: int) -> dict[str, np.ndarray]:
    """One (n, 2) loop per part, each rendered from its own MIDI file (so stems stay separate)."""
    total = clip_samples(bars, meter, bpm, rate)
    stems = {}
    for part in dict.fromkeys(str(n["part"]) for n in notes):
        part_notes = [n for n in notes if n["part"] == part]
        data = midi_bytes(part_notes, bpm, meter, key, programs, clip_beats(bars, meter))
        stems[part] = fold_loop(render_midi(data, soundfont, rate), total)
    return stems
