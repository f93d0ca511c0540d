"""The rule-based melody generator used when no music model is installed.

It is a real, seeded composer, not a placeholder, built from textbook rules:

* **Form.** Bars are grouped in 4-bar phrases shaped ``a a' b c``: bar *a* is the motif, *a'* repeats its rhythm
  with the pitches moved by a scale step, *b* is new material and *c* is a cadence whose last note is held.
  Every phrase starts with the same motif, so an 8-bar clip is ``a a' b c | a a' b' c'`` (motif repetition).
  When continuing an existing melody, its first bar is the motif.
* **Implied harmony.** Each phrase follows one of a few common progressions (I-IV-V-I, I-vi-IV-V, ...); notes on
  strong pulses are chord tones of the bar's chord, chosen nearest to the previous note. Phrase ends land on the
  dominant (half cadence) or, for the last bar of the clip, on the tonic so the loop wraps home.
* **Line.** Between strong pulses the line walks mostly by step; after a leap larger than a third it turns back
  by step (gap fill). The line stays inside ``span`` semitones around the tonic.
* **Rhythm.** Each pulse is split by a cell drawn with weights set by ``density`` (busier cells and fewer long
  notes as density rises); compound meters (6/8) use triplet cells.

Notes are payload dicts (beats, quarter = 1). ``random.Random(seed)`` is local: same seed, same melody.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from studio.core.music_theory import Key, Meter

Note = dict[str, Any]

PHRASE_BARS = 4
# Progressions as scale degrees (0 = I), one chord per bar of a 4-bar phrase; the last is replaced at phrase ends.
PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (5, 3, 0, 4), (0, 3, 0, 4), (0, 5, 1, 4))
# Cells split one pulse (fractions of it), each with a base weight: plain eighths are the most common.
SIMPLE_CELLS = ((1.0,), (0.5, 0.5), (0.75, 0.25), (0.25, 0.25, 0.5), (0.5, 0.25, 0.25), (0.25, 0.25, 0.25, 0.25))
SIMPLE_WEIGHTS = (1.0, 1.6, 0.5, 0.4, 0.4, 0.25)
COMPOUND_CELLS = ((1.0,), (2 / 3, 1 / 3), (1 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3))
COMPOUND_WEIGHTS = (1.0, 1.2, 0.8, 0.5)
STEP_WEIGHTS = {0: 0.8, 1: 4.0, 2: 2.0, 3: 0.7, 4: 0.4}


def _cell_weights(cells: Sequence[Sequence[float]], base: Sequence[float], density: float) -> list[float]:
    # Cells with more notes gain weight as density rises: base * exp(2.5 * (notes - 2) * (density - 0.5)).
    return [w * math.exp(2.5 * (len(cell) - 2) * (density - 0.5)) for cell, w in zip(cells, base, strict=True)]


def bar_rhythm(rng: random.Random, meter: Meter, density: float, cadence: bool) -> list[tuple[float, float, bool]]:
    """(offset, length, strong) of the notes in one bar; a cadence bar holds its last note to the bar end."""
    pulse = meter.pulse
    pulses = max(1, round(meter.beats_per_bar / pulse))
    cells, base = (COMPOUND_CELLS, COMPOUND_WEIGHTS) if meter.compound else (SIMPLE_CELLS, SIMPLE_WEIGHTS)
    if pulse < 1.0 and not meter.compound:  # x/8 simple meters: no 32nd notes
        cells, base = cells[:2], base[:2]
    weights = _cell_weights(cells, base, density)
    strong = {0, pulses // 2} if pulses >= 4 else {0}
    events: list[tuple[float, float, bool]] = []
    index = 0
    held_from = max(1, (pulses + 1) // 2) if cadence else pulses
    while index < pulses:
        offset = index * pulse
        if index >= held_from:
            events.append((offset, (pulses - index) * pulse, index in strong))
            break
        if index + 1 < held_from and rng.random() < (1.0 - density) * 0.35:
            events.append((offset, 2 * pulse, index in strong))
            index += 2
            continue
        cell = rng.choices(cells, weights)[0]
        position = offset
        for j, part in enumerate(cell):
            events.append((position, part * pulse, j == 0 and index in strong))
            position += part * pulse
        index += 1
    return events


def _chord_degree_set(root: int) -> set[int]:
    return {root % 7, (root + 2) % 7, (root + 4) % 7}


class _Line:
    """The melodic walk: remembers the last degree and the last interval (for gap fill)."""

    def __init__(self, rng: random.Random, start: int, low: int, high: int) -> None:
        self.rng, self.degree, self.low, self.high = rng, start, low, high
        self.last_step = 0

    def _clamp(self, degree: int) -> int:
        while degree < self.low or degree > self.high:
            degree = 2 * self.low - degree if degree < self.low else 2 * self.high - degree
        return degree

    def to_chord_tone(self, chord_root: int) -> int:
        tones = _chord_degree_set(chord_root)
        candidates = [d for d in range(self.low, self.high + 1) if d % 7 in tones]
        weights = [math.exp(-abs(d - self.degree) / 1.2) * (0.3 if d == self.degree else 1.0) for d in candidates]
        return self._move(self.rng.choices(candidates, weights)[0])

    def step(self) -> int:
        if abs(self.last_step) > 2:  # gap fill: turn back by step after a leap
            return self._move(self._clamp(self.degree - (1 if self.last_step > 0 else -1)))
        sizes = list(STEP_WEIGHTS)
        size = self.rng.choices(sizes, [STEP_WEIGHTS[s] for s in sizes])[0]
        direction = self.rng.choice((-1, 1))
        return self._move(self._clamp(self.degree + direction * size))

    def toward(self, target: int) -> int:
        """One step (or stay) toward ``target``: used to approach a cadence note."""
        if self.degree == target:
            return self._move(self._clamp(target + self.rng.choice((-1, 1))))
        return self._move(self.degree + (1 if target > self.degree else -1))

    def _move(self, degree: int) -> int:
        self.last_step = degree - self.degree
        self.degree = degree
        return degree


def _bar_plan(bars: int, rng: random.Random) -> list[tuple[str, int]]:
    """(role, implied chord degree) per bar: roles 'a', "a'", 'b', 'cad-half', 'cad-final'."""
    plan = []
    for start in range(0, bars, PHRASE_BARS):
        progression = rng.choice(PROGRESSIONS)
        length = min(PHRASE_BARS, bars - start)
        for j in range(length):
            last_of_clip = start + j == bars - 1
            if last_of_clip:
                plan.append(("cad-final", 0))
            elif j == length - 1:
                plan.append(("cad-half", 4))
            else:
                plan.append((("a", "a'", "b")[j], progression[j]))
    return plan


def _degree(key: Key, pitch: int, octave: int) -> int:
    """The scale degree (relative to the tonic of ``octave``) of the in-scale pitch nearest to ``pitch``."""
    best, best_dist = 0, 1_000
    for d in range(-14, 22):
        dist = abs(key.degree_pitch(d, octave) - pitch)
        if dist < best_dist:
            best, best_dist = d, dist
    return best


def rule_melody(
    key: Key,
    meter: Meter,
    bars: int,
    seed: int,
    density: float = 0.5,
    octave: int = 5,
    span: int = 12,
    prefix: Sequence[Note] = (),
    bar_range: tuple[int, int] | None = None,
    reuse_motif: bool = True,
) -> list[Note]:
    """Melody notes (part "melody") for bars ``bar_range`` (0-based, end exclusive; default all) of a ``bars``-bar
    clip. ``prefix`` is existing melody that comes before the range: the line continues from its last note and,
    with ``reuse_motif``, its first bar is the motif (a variation passes False to get new material)."""
    rng = random.Random(seed * 1_000_003 + 17)
    lo, hi = bar_range or (0, bars)
    bpb = meter.beats_per_bar
    span_degrees = max(4, round(span * 7 / 12))
    low = -2
    high = low + span_degrees
    plan = _bar_plan(bars, rng)
    prior = sorted((n for n in prefix if float(n["start"]) < lo * bpb), key=lambda n: float(n["start"]))
    start_degree = _degree(key, int(prior[-1]["pitch"]), octave) if prior else 0
    line = _Line(rng, max(low, min(high, start_degree)), low, high)

    motif = _motif_from_prefix(key, meter, prior, octave) if reuse_motif else None
    notes: list[Note] = []
    for bar in range(lo, hi):
        role, chord = plan[bar]
        bar_start = bar * bpb
        if role in ("a", "a'") and motif is not None:
            shift = 0 if role == "a" else rng.choice((-1, 1, 2))
            events = [(off, length, strong, max(low, min(high, d + shift))) for off, length, strong, d in motif]
            line._move(events[-1][3])
        else:
            events = _compose_bar(rng, meter, density, role, chord, line)
            if role == "a" and motif is None:
                motif = events
        for offset, length, strong, degree in events:
            velocity = (100 if strong else 84) + rng.randint(-6, 6)
            notes.append({"part": "melody", "pitch": key.degree_pitch(degree, octave), "start": bar_start + offset,
                          "duration": length, "velocity": velocity})
    return notes


def _compose_bar(rng: random.Random, meter: Meter, density: float, role: str, chord: int,
                 line: _Line) -> list[tuple[float, float, bool, int]]:
    cadence = role.startswith("cad")
    rhythm = bar_rhythm(rng, meter, density, cadence)
    target = None
    if role == "cad-final":
        target = min(range(line.low, line.high + 1), key=lambda d: (d % 7 != 0, abs(d - line.degree)))
    elif role == "cad-half":
        target = min(range(line.low, line.high + 1), key=lambda d: (d % 7 not in (1, 4), abs(d - line.degree)))
    events = []
    for i, (offset, length, strong) in enumerate(rhythm):
        if target is not None and i == len(rhythm) - 1:
            degree = line._move(target)
        elif target is not None and i == len(rhythm) - 2:
            degree = line.toward(target)
        elif strong:
            degree = line.to_chord_tone(chord)
        else:
            degree = line.step()
        events.append((offset, length, strong, degree))
    return events


def _motif_from_prefix(key: Key, meter: Meter, prior: Sequence[Note],
                       octave: int) -> list[tuple[float, float, bool, int]] | None:
    """The first bar of an existing melody as (offset, length, strong, degree) events, or None."""
    bpb = meter.beats_per_bar
    first = [n for n in prior if float(n["start"]) < bpb]
    if not first:
        return None
    return [(float(n["start"]), min(float(n["duration"]), bpb - float(n["start"])),
             float(n["start"]) == 0.0, _degree(key, int(n["pitch"]), octave)) for n in first]
