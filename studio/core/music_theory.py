"""Keys, scales, chords, meters and the tempo/length rules every music job is checked against.

Times are in beats where a quarter note is one beat (so 6/8 has 3 beats per bar); the tempo (bpm) counts quarter
notes. A clip of ``bars`` bars therefore lasts ``bars * meter.beats_per_bar * 60 / bpm`` seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from studio.core.errors import BadInputError

MIN_BPM, MAX_BPM = 20.0, 300.0
MIN_BARS, MAX_BARS = 1, 128

NOTE_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
NOTE_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor; the harmoniser raises the 7th for the dominant
}
_MODE_ALIASES = {"major": "major", "maj": "major", "": "major", "minor": "minor", "min": "minor", "m": "minor"}

# Chord qualities as intervals above the root.
CHORD_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
}
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")

_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭]?)\s*(major|maj|minor|min|m)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Key:
    """A major or natural-minor key: ``tonic`` is a pitch class 0-11, ``name`` its spelling (e.g. 'F#')."""

    tonic: int
    mode: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.mode}"

    @property
    def scale(self) -> tuple[int, ...]:
        """The scale's pitch classes, tonic first."""
        return tuple((self.tonic + step) % 12 for step in SCALES[self.mode])

    def contains(self, pitch: int) -> bool:
        return pitch % 12 in self.scale

    def degree_pitch(self, degree: int, octave: int = 4) -> int:
        """MIDI pitch of a scale degree (0 = tonic; negative and >6 wrap into other octaves); C4 = 60."""
        steps = SCALES[self.mode]
        octave_shift, index = divmod(degree, 7)
        return 12 * (octave + 1 + octave_shift) + self.tonic + steps[index]

    def degree_of(self, pitch: int) -> int | None:
        """Scale degree index (0-6) of a pitch class, or None when it is outside the scale."""
        try:
            return self.scale.index(pitch % 12)
        except ValueError:
            return None

    def nearest_in_scale(self, pitch: int) -> int:
        """The in-scale pitch closest to ``pitch`` (ties go down)."""
        for offset in (0, -1, 1, -2, 2):
            if self.contains(pitch + offset):
                return pitch + offset
        return pitch

    @property
    def fifths(self) -> int:
        """Sharps (>0) or flats (<0) of the key signature, enharmonically limited to -7..7."""
        major_tonic = self.tonic if self.mode == "major" else (self.tonic + 3) % 12
        fifths = (major_tonic * 7) % 12  # position on the circle of fifths, 0..11
        if fifths > 6:
            fifths -= 12
        if fifths == 6 and "b" in self.name:  # Gb major / Eb minor are spelled with flats
            fifths = -6
        return fifths

    @property
    def midi_name(self) -> str:
        """The key as a MIDI key-signature name (mido spelling: 'C', 'Am', 'F#', 'Bbm')."""
        major_names = {
            -7: "Cb", -6: "Gb", -5: "Db", -4: "Ab", -3: "Eb", -2: "Bb", -1: "F", 0: "C",
            1: "G", 2: "D", 3: "A", 4: "E", 5: "B", 6: "F#", 7: "C#",
        }
        minor_names = {
            -7: "Ab", -6: "Eb", -5: "Bb", -4: "F", -3: "C", -2: "G", -1: "D", 0: "A",
            1: "E", 2: "B", 3: "F#", 4: "C#", 5: "G#", 6: "D#", 7: "A#",
        }
        if self.mode == "major":
            return major_names[self.fifths]
        return minor_names[self.fifths] + "m"


def parse_key(text: str) -> Key:
    """'A minor', 'F# major', 'Bb minor', 'Am', 'C' -> Key; anything else is a BadInputError saying what works."""
    match = _KEY_RE.match(str(text))
    if not match:
        raise BadInputError(
            f"unknown key {text!r}: write a note A-G, an optional # or b, then major or minor "
            "(e.g. 'A minor', 'F# major', 'Bb minor')"
        )
    letter, accidental = match.group(1).upper(), match.group(2)
    mode = _MODE_ALIASES[(match.group(3) or "").lower()]
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    tonic = (_LETTER_PC[letter] + _ACCIDENTALS[accidental]) % 12
    return Key(tonic, mode, letter + accidental)


def key_from_midi(name: str) -> Key:
    """A mido key-signature name ('Am', 'F#', 'Bbm') as a Key."""
    minor = name.endswith("m")
    return parse_key(f"{name[:-1] if minor else name} {'minor' if minor else 'major'}")


def pitch_name(pitch: int, flats: bool = False) -> str:
    """MIDI pitch -> 'A4', 'C#5' (or 'Db5' with ``flats``)."""
    names = NOTE_NAMES_FLAT if flats else NOTE_NAMES_SHARP
    return f"{names[pitch % 12]}{pitch // 12 - 1}"


@dataclass(frozen=True)
class Chord:
    """A chord built on a scale degree of a key: ``root`` pitch class, ``quality`` in CHORD_INTERVALS."""

    degree: int  # 0 = tonic
    root: int
    quality: str

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in CHORD_INTERVALS[self.quality])

    @property
    def symbol(self) -> str:
        """Roman numeral: upper case for major, lower for minor, 'o' for diminished, '+' for augmented."""
        roman = _ROMAN[self.degree]
        if self.quality in ("min", "dim"):
            roman = roman.lower()
        return roman + {"dim": "o", "aug": "+"}.get(self.quality, "")


def triad(key: Key, degree: int, harmonic_dominant: bool = True) -> Chord:
    """The diatonic triad on ``degree``; in minor the V chord is major (raised leading tone) by default."""
    scale = key.scale
    root, third, fifth = scale[degree % 7], scale[(degree + 2) % 7], scale[(degree + 4) % 7]
    if key.mode == "minor" and harmonic_dominant and degree % 7 == 4:
        third = (third + 1) % 12
    intervals = ((third - root) % 12, (fifth - root) % 12)
    quality = {(4, 7): "maj", (3, 7): "min", (3, 6): "dim", (4, 8): "aug"}[intervals]
    return Chord(degree % 7, root, quality)


def diatonic_chords(key: Key) -> list[Chord]:
    return [triad(key, degree) for degree in range(7)]


@dataclass(frozen=True)
class Meter:
    """A time signature; ``beats_per_bar`` is in quarter notes (6/8 -> 3.0)."""

    numerator: int
    denominator: int

    @property
    def label(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    @property
    def beats_per_bar(self) -> float:
        return self.numerator * 4.0 / self.denominator

    @property
    def compound(self) -> bool:
        """6/8, 9/8, 12/8: the pulse is a dotted quarter."""
        return self.denominator == 8 and self.numerator % 3 == 0 and self.numerator > 3

    @property
    def pulse(self) -> float:
        """Length in beats of one felt pulse (a quarter, or a dotted quarter in compound meters)."""
        return 1.5 if self.compound else 4.0 / self.denominator


def parse_meter(text: str) -> Meter:
    """'4/4', '3/4', '6/8' ... -> Meter; numerator 1-16 and denominator 2, 4, 8 or 16."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise BadInputError(f"unknown meter {text!r}: write it as beats/unit, e.g. '4/4', '3/4' or '6/8'")
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if not 1 <= numerator <= 16 or denominator not in (2, 4, 8, 16):
        raise BadInputError(
            f"meter {text!r} is not supported: use 1-16 beats over 2, 4, 8 or 16 (e.g. '4/4', '6/8')"
        )
    return Meter(numerator, denominator)


def validate_bpm(bpm: object) -> float:
    """Tempo in quarter notes per minute, 20-300."""
    try:
        value = float(bpm)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInputError(f"tempo {bpm!r} is not a number: give beats per minute, e.g. 120") from None
    if not MIN_BPM <= value <= MAX_BPM:
        raise BadInputError(
            f"tempo {value:g} bpm is out of range: use {MIN_BPM:g} to {MAX_BPM:g} beats per minute"
        )
    return value


def validate_bars(bars: object) -> int:
    """Number of bars, 1-128 (a whole number)."""
    try:
        value = Fraction(str(bars))
    except (TypeError, ValueError, ZeroDivisionError):
        raise BadInputError(f"bars {bars!r} is not a number: give a whole number of bars, e.g. 8") from None
    if value.denominator != 1:
        raise BadInputError(f"bars must be a whole number, not {bars}")
    if not MIN_BARS <= value <= MAX_BARS:
        raise BadInputError(f"{bars} bars is out of range: a clip has {MIN_BARS} to {MAX_BARS} bars")
    return int(value)


def clip_beats(bars: int, meter: Meter) -> float:
    return bars * meter.beats_per_bar


def clip_samples(bars: int, meter: Meter, bpm: float, rate: int) -> int:
    """Exact clip length in samples: bars x beats x 60 / bpm seconds, rounded to the nearest sample."""
    return round(Fraction(bars) * Fraction(meter.numerator * 4, meter.denominator) * 60
                 * rate / Fraction(str(bpm)))


def beat_to_sample(beat: float, bpm: float, rate: int) -> int:
    return round(beat * 60.0 * rate / bpm)
