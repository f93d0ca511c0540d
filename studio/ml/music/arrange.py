"""Arrangement: melody + harmonised chords + bass + drums, shaped by a style preset.

Notes stay on the straight grid (payload, MIDI export, continue/vary input); a style's swing is a performance
setting applied when the clip is rendered (``apply_swing``) and recorded in the recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.music_styles import Style
from studio.core.music_theory import Key, Meter
from studio.ml.music.drums import drum_part
from studio.ml.music.harmony import ChordSlot, bass_line, chord_part, harmonise

Note = dict[str, Any]
PART_ORDER = ("melody", "chords", "bass", "drums")


@dataclass
class Arrangement:
    notes: list[Note]
    chords: list[ChordSlot]

    def part(self, name: str) -> list[Note]:
        return [n for n in self.notes if n["part"] == name]


def swing_time(beat: float, amount: float) -> float:
    """Delay off-beat eighths: inside each beat, [0, .5] maps to [0, .5 + d] and [.5, 1] to [.5 + d, 1] with
    d = amount / 6 (amount 1 = triplet swing). Applied to starts and ends, so touching notes stay touching."""
    if amount <= 0:
        return beat
    whole = int(beat // 1)
    frac = beat - whole
    d = amount / 6.0
    if frac <= 0.5:
        return whole + frac * (0.5 + d) / 0.5
    return whole + 0.5 + d + (frac - 0.5) * (0.5 - d) / 0.5


def apply_swing(notes: Sequence[Note], amount: float, meter: Meter) -> list[Note]:
    """Swing only applies to simple meters counted in quarters (x/4); compound meters already lilt."""
    if amount <= 0 or meter.denominator != 4:
        return [dict(n) for n in notes]
    swung = []
    for n in notes:
        start = swing_time(float(n["start"]), amount)
        end = swing_time(float(n["start"]) + float(n["duration"]), amount)
        swung.append({**n, "start": start, "duration": max(end - start, 1e-3)})
    return swung


def melody_part(notes: Sequence[Note]) -> list[Note]:
    """The melody of a note list: the part named 'melody', or else the highest non-drum part (renamed)."""
    melody = [dict(n) for n in notes if n["part"] == "melody"]
    if melody:
        return melody
    parts: dict[str, list[Note]] = {}
    for n in notes:
        if n["part"] != "drums":
            parts.setdefault(str(n["part"]), []).append(n)
    if not parts:
        return []
    best = max(parts.values(), key=lambda ns: sum(int(n["pitch"]) for n in ns) / len(ns))
    return [{**n, "part": "melody"} for n in best]


def arrange(melody: Sequence[Note], style: Style, key: Key, meter: Meter, bars: int, seed: int) -> Arrangement:
    """All parts of a clip, on the straight grid; the melody is kept as given."""
    slots = harmonise(melody, key, meter, bars, style.chords_per_bar, seed)
    notes: list[Note] = [dict(n, part="melody") for n in melody]
    instruments = style.instruments
    if "chords" in instruments:
        notes += chord_part(slots, meter, style.chord_pattern, instruments["chords"].octave)
    if "bass" in instruments:
        notes += bass_line(slots, meter, style.bass_pattern, instruments["bass"].octave)
    if style.drum_family and "drums" in instruments:
        notes += drum_part(style.drum_family, meter, bars, seed, style.fill_every)
    order = {p: i for i, p in enumerate(PART_ORDER)}
    notes.sort(key=lambda n: (order.get(n["part"], len(order)), float(n["start"]), int(n["pitch"])))
    return Arrangement(notes, slots)
