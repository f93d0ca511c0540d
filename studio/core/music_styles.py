"""Music style presets (``resources/music_styles/*.json``): tempo, key, meter, instruments, drums and effects.

Plain data, so the UI can list and show styles without touching torch. A style is found by its exact name or an
unambiguous prefix ('chiptune' -> 'chiptune-adventure').
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import BadInputError
from studio.core.formats.json_file import read_json
from studio.core.music_theory import parse_key, parse_meter, validate_bpm

VOICES = ("pulse12", "pulse25", "pulse50", "triangle", "saw", "noise", "sine")
CHORD_PATTERNS = ("block", "arp", "stab", "pad")
BASS_PATTERNS = ("root", "root-fifth", "octave", "walking")


@dataclass(frozen=True)
class Instrument:
    """One part's voice: oscillator, ADSR (seconds; sustain is a level 0..1), level, pan, octave, GM program."""

    voice: str
    attack: float = 0.005
    decay: float = 0.1
    sustain: float = 0.7
    release: float = 0.05
    volume: float = 0.7
    pan: float = 0.0  # -1 left .. 1 right
    octave: int = 4  # register the part is placed around (C4 = MIDI 60)
    gm_program: int = 80  # General MIDI program for MIDI export and SoundFont rendering
    vibrato_cents: float = 0.0
    vibrato_hz: float = 5.5
    lowpass_hz: float = 0.0  # 0 = no filter on this part
    echo_send: float = 0.0
    reverb_send: float = 0.0


@dataclass(frozen=True)
class Effects:
    """Master bus: filters, a feedback echo (in beats) and a small Schroeder reverb."""

    highpass_hz: float = 30.0
    lowpass_hz: float = 16000.0
    echo_beats: float = 0.75
    echo_feedback: float = 0.35
    echo_damping_hz: float = 4000.0
    reverb_seconds: float = 1.2  # RT60
    reverb_damping: float = 0.3


# "through": every bar is new. "period": a two-phrase tune whose answering phrase starts by restating the first
# half of the opening phrase (bars 5-6 = bars 1-2 of 8), as most folk and game tunes do.
MELODY_FORMS = ("through", "period")


@dataclass(frozen=True)
class Style:
    name: str
    title: str
    description: str
    tonic: str
    mode: str
    bpm: float
    meter: str
    bars: int
    swing: float  # 0 = straight eighths, 1 = full triplet swing
    melody_density: float  # 0 sparse .. 1 busy
    melody_range: int  # semitones the melody may span
    melody_form: str  # "through" (every bar new) or "period" (the answer restates the opening, see MELODY_FORMS)
    chords_per_bar: int
    chord_pattern: str
    bass_pattern: str
    drum_family: str | None
    fill_every: int  # bars per phrase: a drum fill closes each phrase
    instruments: dict[str, Instrument] = field(default_factory=dict)
    effects: Effects = field(default_factory=Effects)

    @property
    def key(self) -> str:
        return f"{self.tonic} {self.mode}"


def styles_dir() -> Path:
    return paths.resources_dir() / "music_styles"


def _check(condition: bool, path: Path, message: str) -> None:
    if not condition:
        raise BadInputError(f"style file {path.name}: {message}")


def _instrument(path: Path, part: str, raw: dict[str, Any]) -> Instrument:
    try:
        inst = Instrument(**raw)
    except TypeError as exc:
        raise BadInputError(f"style file {path.name}, part {part!r}: {exc}") from None
    _check(inst.voice in VOICES, path, f"part {part!r} has unknown voice {inst.voice!r} (use {', '.join(VOICES)})")
    _check(min(inst.attack, inst.decay, inst.release) >= 0, path, f"part {part!r}: ADSR times must be >= 0")
    _check(0 <= inst.sustain <= 1, path, f"part {part!r}: sustain is a level between 0 and 1")
    _check(0 <= inst.volume <= 2, path, f"part {part!r}: volume must be 0..2")
    _check(-1 <= inst.pan <= 1, path, f"part {part!r}: pan must be -1..1")
    _check(0 <= inst.gm_program <= 127, path, f"part {part!r}: gm_program must be 0..127")
    _check(1 <= inst.octave <= 7, path, f"part {part!r}: octave must be 1..7")
    return inst


def load_style_file(path: Path) -> Style:
    path = Path(path)
    try:
        raw = read_json(path, max_bytes=1 << 20)
    except BadInputError as exc:
        raise BadInputError(f"style file {path.name} is not readable JSON ({exc})") from None
    try:
        melody, harmony = raw.get("melody", {}), raw.get("harmony", {})
        drums = raw.get("drums") or {}
        style = Style(
            name=raw["name"],
            title=raw.get("title", raw["name"]),
            description=raw.get("description", ""),
            tonic=raw.get("tonic", "C"),
            mode=raw.get("mode", "major"),
            bpm=float(raw["bpm"]),
            meter=raw.get("meter", "4/4"),
            bars=int(raw.get("bars", 8)),
            swing=float(raw.get("swing", 0.0)),
            melody_density=float(melody.get("density", 0.5)),
            melody_range=int(melody.get("range", 12)),
            melody_form=str(melody.get("form", "through")),
            chords_per_bar=int(harmony.get("chords_per_bar", 1)),
            chord_pattern=harmony.get("chord_pattern", "block"),
            bass_pattern=harmony.get("bass_pattern", "root"),
            drum_family=drums.get("family"),
            fill_every=int(drums.get("fill_every", 4)),
            instruments={part: _instrument(path, part, spec) for part, spec in raw["instruments"].items()},
            effects=Effects(**raw.get("effects", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise BadInputError(f"style file {path.name} is incomplete or malformed ({exc!r})") from None
    parse_key(style.key)
    parse_meter(style.meter)
    validate_bpm(style.bpm)
    _check(0 <= style.swing <= 1, path, "swing must be 0..1")
    _check(style.chords_per_bar in (1, 2), path, "chords_per_bar must be 1 or 2")
    _check(style.chord_pattern in CHORD_PATTERNS, path, f"chord_pattern must be one of {CHORD_PATTERNS}")
    _check(style.bass_pattern in BASS_PATTERNS, path, f"bass_pattern must be one of {BASS_PATTERNS}")
    _check("melody" in style.instruments, path, "a style needs a 'melody' instrument")
    _check(style.melody_form in MELODY_FORMS, path, f"melody form must be one of {', '.join(MELODY_FORMS)}")
    _check(style.fill_every >= 1, path, "fill_every must be >= 1")
    return style


def list_styles(folder: Path | None = None) -> list[str]:
    folder = folder or styles_dir()
    return sorted(p.stem for p in folder.glob("*.json"))


def find_style(name: str, folder: Path | None = None) -> Style:
    """The style called ``name``, or the only one whose name starts with it."""
    folder = folder or styles_dir()
    names = list_styles(folder)
    wanted = str(name).strip().lower().replace(" ", "-")
    matches = [n for n in names if n == wanted] or [n for n in names if n.startswith(wanted)]
    if len(matches) != 1:
        known = ", ".join(names) or "none installed"
        what = "is ambiguous" if matches else "is not a known style"
        raise BadInputError(f"{name!r} {what} (styles: {known})")
    return load_style_file(folder / f"{matches[0]}.json")
