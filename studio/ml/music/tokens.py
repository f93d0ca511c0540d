"""The note-event vocabulary of the music Transformer: one monophonic part per sequence.

A sequence is::

    BOS KEY_<tonic> MODE_<mode> METER_<n/d> TEMPO_<class> BARS_<n> PART_<part>
    BAR (POS_<tick> PITCH_<midi> DUR_<ticks>)*      <- once per bar, exactly n times
    EOS

Time grid: a quarter-note beat is ``TICKS_PER_BEAT`` = 12 ticks, so sixteenths (3), eighth triplets (4), sixteenth
triplets (2) and every dotted value sit on the grid; 6/8 and other compound meters need no extra tokens. ``POS`` is
the onset in ticks from the start of its bar (0..71: the longest bar is 6 beats, 3/2 or 12/8), ``DUR`` the length in
ticks (1..72). Notes never cross a bar line (a longer note is split, as a tie would be written) and never overlap
(one voice: an onset cuts the sounding note short), so within a bar onsets strictly increase and each onset is at or
after the end of the previous note; gaps are rests.

Velocity is not part of the vocabulary: decoding gives each note a metrical accent (downbeat, beat, off-beat).
Encoding then decoding gives back exactly the part, pitch, start and duration of quantised input (onsets and
lengths on the 12-per-beat grid, inside one bar, pitch 24..107, no overlaps).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.errors import BadInputError
from studio.core.music_theory import parse_key

TICKS_PER_BEAT = 12
MAX_BAR_TICKS = 72
PITCH_LOW, PITCH_HIGH = 24, 107
MAX_BARS_TOKEN = 64  # BARS_64 stands for "64 or more"

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    # Natural minor plus the raised seventh (the leading tone of harmonic minor): Bach's minor chorales and
    # many minor folk tunes use both, so both count as "in key".
    "minor": (0, 2, 3, 5, 7, 8, 10, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
TONIC_TRIADS: dict[str, tuple[int, ...]] = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "dorian": (0, 3, 7),
    "mixolydian": (0, 4, 7),
}
MODE_ALIASES = {
    "major": "major", "maj": "major", "ionian": "major", "lydian": "major",
    "minor": "minor", "min": "minor", "m": "minor", "aeolian": "minor", "phrygian": "minor", "locrian": "minor",
    "dorian": "dorian", "dor": "dorian", "mixolydian": "mixolydian", "mix": "mixolydian",
}
METERS = ("2/4", "3/4", "4/4", "5/4", "6/4", "2/2", "3/2", "3/8", "6/8", "7/8", "9/8", "12/8")
TEMPOS = ("slow", "moderate", "fast", "very_fast")
TEMPO_LIMITS = (80, 112, 144)  # quarter-note bpm where the next class starts
PARTS = ("melody", "bass")

SPECIALS = ("PAD", "BOS", "EOS", "BAR")


def _build_vocabulary() -> tuple[str, ...]:
    names = list(SPECIALS)
    names += [f"KEY_{n}" for n in NOTE_NAMES]
    names += [f"MODE_{m}" for m in MODES]
    names += [f"METER_{m}" for m in METERS]
    names += [f"TEMPO_{t}" for t in TEMPOS]
    names += [f"BARS_{n}" for n in range(1, MAX_BARS_TOKEN + 1)]
    names += [f"PART_{p}" for p in PARTS]
    names += [f"POS_{t}" for t in range(MAX_BAR_TICKS)]
    names += [f"PITCH_{p}" for p in range(PITCH_LOW, PITCH_HIGH + 1)]
    names += [f"DUR_{d}" for d in range(1, MAX_BAR_TICKS + 1)]
    return tuple(names)


VOCAB: tuple[str, ...] = _build_vocabulary()
VOCAB_SIZE = len(VOCAB)
TOKEN_ID = {name: i for i, name in enumerate(VOCAB)}
VOCAB_VERSION = "music-events-v1"  # stored with models; change when VOCAB changes

PAD, BOS, EOS, BAR = (TOKEN_ID[s] for s in SPECIALS)
KEY_BASE = TOKEN_ID["KEY_C"]
MODE_BASE = TOKEN_ID[f"MODE_{next(iter(MODES))}"]
METER_BASE = TOKEN_ID[f"METER_{METERS[0]}"]
TEMPO_BASE = TOKEN_ID[f"TEMPO_{TEMPOS[0]}"]
BARS_BASE = TOKEN_ID["BARS_1"]
PART_BASE = TOKEN_ID[f"PART_{PARTS[0]}"]
POS_BASE = TOKEN_ID["POS_0"]
PITCH_BASE = TOKEN_ID[f"PITCH_{PITCH_LOW}"]
DUR_BASE = TOKEN_ID["DUR_1"]
HEADER_LEN = 7  # BOS + six conditioning tokens


def pos_token(tick: int) -> int:
    return POS_BASE + tick


def pitch_token(pitch: int) -> int:
    return PITCH_BASE + pitch - PITCH_LOW


def dur_token(ticks: int) -> int:
    return DUR_BASE + ticks - 1


def is_pos(token: int) -> bool:
    return POS_BASE <= token < POS_BASE + MAX_BAR_TICKS


def is_pitch(token: int) -> bool:
    return PITCH_BASE <= token <= PITCH_BASE + PITCH_HIGH - PITCH_LOW


def is_dur(token: int) -> bool:
    return DUR_BASE <= token < DUR_BASE + MAX_BAR_TICKS


def token_pos(token: int) -> int:
    return token - POS_BASE


def token_pitch(token: int) -> int:
    return token - PITCH_BASE + PITCH_LOW


def token_dur(token: int) -> int:
    return token - DUR_BASE + 1


def bar_ticks(meter: str) -> int:
    """Ticks in one bar of ``meter`` (4/4 -> 48, 6/8 -> 36)."""
    numerator, denominator = (int(x) for x in meter.split("/"))
    return numerator * 4 * TICKS_PER_BEAT // denominator


def check_meter(meter: str) -> str:
    text = str(meter).replace(" ", "")
    if text not in METERS:
        raise BadInputError(f"meter {meter!r} is not supported by the music model: use one of {', '.join(METERS)}")
    return text


def tempo_class(bpm: float) -> str:
    for limit, name in zip(TEMPO_LIMITS, TEMPOS, strict=False):
        if bpm < limit:
            return name
    return TEMPOS[-1]


def parse_key_mode(key: str, mode: str | None = None) -> tuple[int, str]:
    """('A minor' | 'A', 'minor' | 'F# dorian' ...) -> (tonic pitch class, mode); a mode in ``key`` wins."""
    words = str(key).split()
    named_mode = None
    if len(words) > 1 and words[-1].lower() in MODE_ALIASES:
        named_mode = MODE_ALIASES[words[-1].lower()]
        words = words[:-1]
    parsed = parse_key(" ".join(words))
    if named_mode is None and re.fullmatch(r"[A-Ga-g][#♯b♭]?(m|min|maj|minor|major)", "".join(words), re.I):
        named_mode = parsed.mode  # a mode glued to the note, as in 'Am'
    chosen = named_mode or MODE_ALIASES.get(str(mode or "major").lower())
    if chosen is None:
        raise BadInputError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return parsed.tonic, chosen


def scale_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    return frozenset((tonic + step) % 12 for step in MODES[mode])


def tonic_chord_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    return frozenset((tonic + step) % 12 for step in TONIC_TRIADS[mode])


def accent_velocity(tick: int, meter: str) -> int:
    """Velocity from metrical position: downbeat, pulse, other beat, off-beat."""
    if tick == 0:
        return 100
    numerator, denominator = (int(x) for x in meter.split("/"))
    compound = denominator == 8 and numerator % 3 == 0 and numerator > 3
    pulse = TICKS_PER_BEAT * 3 // 2 if compound else TICKS_PER_BEAT * 4 // denominator
    if tick % pulse == 0:
        return 88
    return 80 if tick % (TICKS_PER_BEAT // 2) == 0 else 72


@dataclass(frozen=True)
class Header:
    """The conditioning of one sequence. ``bars`` is the real bar count; its token saturates at 64."""

    tonic: int
    mode: str
    meter: str
    tempo: str
    bars: int
    part: str = "melody"

    def __post_init__(self) -> None:
        if not 0 <= self.tonic < 12 or self.mode not in MODES or self.meter not in METERS:
            raise BadInputError(f"unsupported key/mode/meter: {self.tonic}, {self.mode!r}, {self.meter!r}")
        if self.tempo not in TEMPOS or self.part not in PARTS or self.bars < 1:
            raise BadInputError(f"unsupported tempo/part/bars: {self.tempo!r}, {self.part!r}, {self.bars}")

    @classmethod
    def from_params(
        cls, key: str, mode: str | None, meter: str, bpm: float, bars: int, part: str = "melody"
    ) -> Header:
        tonic, mode_name = parse_key_mode(key, mode)
        if part not in PARTS:
            raise BadInputError(f"the music model writes the parts {', '.join(PARTS)}, not {part!r}")
        return cls(tonic, mode_name, check_meter(meter), tempo_class(float(bpm)), int(bars), part)

    @property
    def bar_ticks(self) -> int:
        return bar_ticks(self.meter)

    def tokens(self, bars: int | None = None) -> list[int]:
        shown = min(MAX_BARS_TOKEN, self.bars if bars is None else bars)
        return [
            BOS,
            KEY_BASE + self.tonic,
            MODE_BASE + list(MODES).index(self.mode),
            METER_BASE + METERS.index(self.meter),
            TEMPO_BASE + TEMPOS.index(self.tempo),
            BARS_BASE + max(1, shown) - 1,
            PART_BASE + PARTS.index(self.part),
        ]


@dataclass(frozen=True)
class Event:
    """One note on the grid: bar index (from 0), onset tick in the bar, MIDI pitch, length in ticks."""

    bar: int
    pos: int
    pitch: int
    dur: int


def _fold_pitch(pitch: int) -> int:
    while pitch < PITCH_LOW:
        pitch += 12
    while pitch > PITCH_HIGH:
        pitch -= 12
    return pitch


def quantise(notes: Iterable[Mapping[str, Any]], meter: str, part: str | None = "melody") -> list[Event]:
    """Notes of one part (``None``: all notes) -> grid events: snapped, split at bar lines, one voice.

    At a shared onset the highest pitch wins (the tune, not its accompaniment); a note still sounding at the next
    onset is cut there; pitches outside 24..107 move by octaves into range.
    """
    ticks_per_bar = bar_ticks(check_meter(meter))
    spans: dict[int, tuple[int, int]] = {}  # onset tick -> (pitch, end tick)
    for note in notes:
        if part is not None and note.get("part", "melody") != part:
            continue
        try:
            start = round(float(note["start"]) * TICKS_PER_BEAT)
            end = start + max(1, round(float(note["duration"]) * TICKS_PER_BEAT))
            pitch = int(note["pitch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"a note is missing start, duration or pitch ({exc})") from None
        if start < 0 or not math.isfinite(end):
            raise BadInputError(f"a note starts before the clip (start {note['start']})")
        if start not in spans or pitch > spans[start][0]:
            spans[start] = (pitch, end)
    onsets = sorted(spans)
    events: list[Event] = []
    for i, start in enumerate(onsets):
        pitch, end = spans[start]
        if i + 1 < len(onsets):
            end = min(end, onsets[i + 1])
        pitch = _fold_pitch(pitch)
        tick = start
        while tick < end:  # split at bar lines
            bar, pos = divmod(tick, ticks_per_bar)
            piece_end = min(end, (bar + 1) * ticks_per_bar)
            events.append(Event(bar, pos, pitch, piece_end - tick))
            tick = piece_end
    return events


def bar_count(events: Sequence[Event]) -> int:
    return max((e.bar for e in events), default=-1) + 1


def encode_bars(events: Sequence[Event], bars: int) -> list[list[int]]:
    """Body tokens bar by bar (each list starts with BAR); events must be sorted and on the grid."""
    out: list[list[int]] = [[BAR] for _ in range(bars)]
    for e in events:
        if e.bar >= bars:
            raise BadInputError(f"a note lies in bar {e.bar + 1}, after the clip's {bars} bars")
        out[e.bar] += [pos_token(e.pos), pitch_token(e.pitch), dur_token(e.dur)]
    return out


def encode(notes: Iterable[Mapping[str, Any]], header: Header, part: str | None = None) -> list[int]:
    """A whole sequence: header, ``header.bars`` bars, EOS (notes of ``part``, default the header's part)."""
    events = quantise(notes, header.meter, header.part if part is None else part)
    body = [t for bar in encode_bars(events, header.bars) for t in bar]
    return [*header.tokens(), *body, EOS]


def decode_header(tokens: Sequence[int]) -> Header:
    if len(tokens) < HEADER_LEN or tokens[0] != BOS:
        raise ValueError("a sequence starts with BOS and six conditioning tokens")
    names = [VOCAB[t] for t in tokens[1:HEADER_LEN]]
    prefixes = ("KEY_", "MODE_", "METER_", "TEMPO_", "BARS_", "PART_")
    for name, prefix in zip(names, prefixes, strict=True):
        if not name.startswith(prefix):
            raise ValueError(f"expected a {prefix}* token in the header, found {name}")
    values = [name.split("_", 1)[1] for name in names]
    return Header(NOTE_NAMES.index(values[0]), values[1], values[2], values[3], int(values[4]), values[5])


def decode_events(body: Sequence[int]) -> tuple[list[Event], int]:
    """Body tokens (from the first BAR; EOS/PAD end it) -> (events, bars); bad grammar is a ValueError."""
    events: list[Event] = []
    bar, i = -1, 0
    while i < len(body):
        token = body[i]
        if token in (EOS, PAD):
            break
        if token == BAR:
            bar += 1
            i += 1
            continue
        if bar < 0 or i + 2 >= len(body):
            raise ValueError(f"token {VOCAB[token]} at {i} is outside a complete POS PITCH DUR note")
        pos, pitch, dur = body[i : i + 3]
        if not (is_pos(pos) and is_pitch(pitch) and is_dur(dur)):
            raise ValueError(f"expected POS PITCH DUR at {i}, found {[VOCAB[t] for t in body[i : i + 3]]}")
        events.append(Event(bar, token_pos(pos), token_pitch(pitch), token_dur(dur)))
        i += 3
    return events, bar + 1


def events_to_notes(events: Iterable[Event], meter: str, part: str = "melody", first_bar: int = 0) -> list[dict]:
    """Grid events -> payload note dicts in beats (bar ``first_bar`` starts at beat 0)."""
    ticks_per_bar = bar_ticks(meter)
    return [
        {
            "part": part,
            "pitch": e.pitch,
            "start": ((e.bar - first_bar) * ticks_per_bar + e.pos) / TICKS_PER_BEAT,
            "duration": e.dur / TICKS_PER_BEAT,
            "velocity": accent_velocity(e.pos, meter),
        }
        for e in events
    ]


def decode(tokens: Sequence[int]) -> tuple[Header, list[dict]]:
    """A whole sequence (header first) -> (header, note dicts in beats)."""
    header = decode_header(tokens)
    events, _ = decode_events(tokens[HEADER_LEN:])
    return header, events_to_notes(events, header.meter, header.part)
