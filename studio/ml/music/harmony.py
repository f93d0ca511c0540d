"""The harmoniser: a chord per bar (or half bar) that follows the melody, then bass and chord parts from it.

Chords are chosen by dynamic programming (Viterbi) over the slots, maximising the sum of

* **melody coverage**, per slot: each melody note sounding in it adds ``overlap x weight`` (in beats, divided by
  the slot length) when its pitch class is in the chord and subtracts ``0.6 x`` that when it is not; notes that
  start on the slot's downbeat weigh 1.5, others 1;
* **chord preference**: I/i +0.3, IV and V +0.2, vi +0.1, ii +0.05, iii -0.1, the diminished triad -0.6;
* **functional progression**: tonic (I, vi, iii) -> subdominant (IV, ii) +0.3, subdominant -> dominant (V, vii)
  +0.4, dominant -> I +0.6 (-> vi, the deceptive cadence, +0.3), tonic -> dominant +0.2, plagal IV -> I +0.1,
  dominant -> subdominant (a retrogression) -0.4, root falling a fifth +0.2, the same chord again -0.15 (-0.05
  inside one bar);
* **cadence**: the first slot prefers the tonic (+0.8), the last slot *is* the tonic (so the loop wraps home),
  and the slot before it prefers V (+0.6) or IV (+0.3).

A seeded jitter (0-0.15 per slot and chord) breaks near-ties differently for different seeds. In minor keys the
dominant is the major V (harmonic minor), so a melody's raised leading tone finds its chord.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.music_theory import Chord, Key, Meter, triad

Note = dict[str, Any]

TONIC, SUBDOMINANT, DOMINANT = "T", "S", "D"
FUNCTION = {0: TONIC, 5: TONIC, 2: TONIC, 3: SUBDOMINANT, 1: SUBDOMINANT, 4: DOMINANT, 6: DOMINANT}
PRIOR = {0: 0.3, 3: 0.2, 4: 0.2, 5: 0.1, 1: 0.05, 2: -0.1, 6: -0.6}
FUNCTION_MOVES = {
    (TONIC, SUBDOMINANT): 0.3,
    (SUBDOMINANT, DOMINANT): 0.4,
    (TONIC, DOMINANT): 0.2,
    (SUBDOMINANT, TONIC): 0.1,
    (DOMINANT, SUBDOMINANT): -0.4,
}
OUT_OF_CHORD = -0.6
DOWNBEAT_WEIGHT = 1.5
JITTER = 0.15


@dataclass(frozen=True)
class ChordSlot:
    start: float  # beats
    duration: float
    chord: Chord

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "duration": self.duration, "symbol": self.chord.symbol,
                "root": self.chord.root, "quality": self.chord.quality}


def candidate_chords(key: Key) -> list[Chord]:
    return [triad(key, degree) for degree in range(7)]


def coverage(melody: Sequence[Note], start: float, length: float, chord: Chord) -> float:
    tones = set(chord.pitch_classes)
    score = 0.0
    for note in melody:
        n_start, n_end = float(note["start"]), float(note["start"]) + float(note["duration"])
        overlap = min(n_end, start + length) - max(n_start, start)
        if overlap <= 0:
            continue
        weight = DOWNBEAT_WEIGHT if abs(n_start - start) < 1e-6 else 1.0
        score += overlap * weight * (1.0 if int(note["pitch"]) % 12 in tones else OUT_OF_CHORD)
    return score / length


def transition(a: Chord, b: Chord, same_bar: bool) -> float:
    if a.degree == b.degree:
        return -0.05 if same_bar else -0.15
    score = FUNCTION_MOVES.get((FUNCTION[a.degree], FUNCTION[b.degree]), 0.0)
    if FUNCTION[a.degree] == DOMINANT and b.degree == 0:
        score = 0.6
    elif FUNCTION[a.degree] == DOMINANT and b.degree == 5:
        score = 0.3
    if (b.degree - a.degree) % 7 == 3:  # root falls a fifth (rises a fourth)
        score += 0.2
    return score


def harmonise(melody: Sequence[Note], key: Key, meter: Meter, bars: int, chords_per_bar: int = 1,
              seed: int = 0) -> list[ChordSlot]:
    """The best-scoring chord for each slot (see the module docstring for the score)."""
    rng = random.Random(seed * 7919 + 3)
    chords = candidate_chords(key)
    slot_len = meter.beats_per_bar / chords_per_bar
    slots = bars * chords_per_bar
    local = []
    for s in range(slots):
        row = []
        for chord in chords:
            value = coverage(melody, s * slot_len, slot_len, chord) + PRIOR[chord.degree] + rng.uniform(0, JITTER)
            if s == 0 and chord.degree == 0:
                value += 0.8
            if slots > 1 and s == slots - 2:
                value += {4: 0.6, 3: 0.3}.get(chord.degree, 0.0)
            row.append(value)
        local.append(row)
    # Viterbi: best[s][c] = local + max over previous chord of (best + transition).
    best = [local[0][:]]
    back: list[list[int]] = [[0] * len(chords)]
    for s in range(1, slots):
        same_bar = s % chords_per_bar != 0
        row, pointers = [], []
        for c, chord in enumerate(chords):
            options = [best[s - 1][p] + transition(prev, chord, same_bar) for p, prev in enumerate(chords)]
            p = max(range(len(chords)), key=options.__getitem__)
            row.append(options[p] + local[s][c])
            pointers.append(p)
        best.append(row)
        back.append(pointers)
    # The last slot is forced to the tonic (degree 0) so the clip cadences home and the loop wraps.
    choice = 0 if slots > 1 else max(range(len(chords)), key=best[-1].__getitem__)
    path = [choice]
    for s in range(slots - 1, 0, -1):
        choice = back[s][choice]
        path.append(choice)
    path.reverse()
    return [ChordSlot(s * slot_len, slot_len, chords[c]) for s, c in enumerate(path)]


def _in_octave(pitch_class: int, octave: int) -> int:
    return 12 * (octave + 1) + pitch_class


def bass_line(slots: Sequence[ChordSlot], meter: Meter, pattern: str, octave: int = 2) -> list[Note]:
    """Bass notes from the chords: 'root', 'root-fifth', 'octave' (eighth-note octaves) or 'walking'."""
    notes: list[Note] = []
    pulse = meter.pulse
    for i, slot in enumerate(slots):
        root = _in_octave(slot.chord.root, octave)
        third = root + (slot.chord.pitch_classes[1] - slot.chord.root) % 12
        fifth = root + (slot.chord.pitch_classes[2] - slot.chord.root) % 12
        nxt = _in_octave(slots[(i + 1) % len(slots)].chord.root, octave)
        if pattern == "root":
            steps = [(0.0, slot.duration, root)]
        elif pattern == "root-fifth":
            beats = max(1, round(slot.duration / pulse))
            low_fifth = fifth - 12 if fifth - 12 >= 28 else fifth
            steps = [(b * pulse, pulse, root if b % 2 == 0 else low_fifth) for b in range(beats)]
        elif pattern == "octave":
            eighths = max(1, round(slot.duration / 0.5))
            steps = [(e * 0.5, 0.5, root + (12 if e % 2 else 0)) for e in range(eighths)]
        elif pattern == "walking":
            beats = max(1, round(slot.duration / pulse))
            approach = nxt - 1 if nxt > root else nxt + 1  # a chromatic step into the next root
            chord_tones = (root, third, fifth, third)
            steps = [(b * pulse, pulse, approach if b == beats - 1 and beats >= 2 else chord_tones[b % 4])
                     for b in range(beats)]
        else:
            raise ValueError(f"unknown bass pattern {pattern!r}")
        for offset, length, pitch in steps:
            notes.append({"part": "bass", "pitch": pitch, "start": slot.start + offset, "duration": length,
                          "velocity": 100 if offset == 0 else 88})
    return notes


def voicings(slots: Sequence[ChordSlot], octave: int = 4) -> list[list[int]]:
    """Close-position triads with smooth voice leading: each chord takes the inversion nearest the previous one."""
    centre = _in_octave(4, octave)  # around E of the octave
    previous: list[int] | None = None
    result = []
    for slot in slots:
        pcs = slot.chord.pitch_classes
        options = []
        for inversion in range(3):
            ordered = pcs[inversion:] + pcs[:inversion]
            for base_octave in (octave - 1, octave):
                pitches = [_in_octave(ordered[0], base_octave)]
                for pc in ordered[1:]:
                    pitches.append(pitches[-1] + (pc - pitches[-1]) % 12)
                options.append(pitches)
        if previous is None:
            voicing = min(options, key=lambda v: abs(sum(v) / 3 - centre))
        else:
            voicing = min(options, key=lambda v: (sum(abs(a - b) for a, b in zip(v, previous, strict=True)),
                                                  abs(sum(v) / 3 - centre)))
        result.append(voicing)
        previous = voicing
    return result


def chord_part(slots: Sequence[ChordSlot], meter: Meter, pattern: str, octave: int = 4) -> list[Note]:
    """The chords part: 'block'/'pad' (held; pads tie repeated chords), 'arp' (sixteenths up) or 'stab'."""
    notes: list[Note] = []
    voiced = voicings(slots, octave)
    pulse = meter.pulse
    held: list[tuple[float, float, list[int]]] = []
    for slot, voicing in zip(slots, voiced, strict=True):
        if pattern == "pad" and held and held[-1][2] == voicing:
            start, length, _ = held[-1]
            held[-1] = (start, length + slot.duration, voicing)
        elif pattern in ("block", "pad"):
            held.append((slot.start, slot.duration, voicing))
        elif pattern == "arp":
            cycle = [*voicing, voicing[0] + 12]
            steps = max(1, round(slot.duration / 0.25))
            for k in range(steps):
                notes.append({"part": "chords", "pitch": cycle[k % len(cycle)], "start": slot.start + k * 0.25,
                              "duration": 0.25, "velocity": 84 if k % 4 == 0 else 70})
        elif pattern == "stab":
            beats = max(1, round(slot.duration / pulse))
            if meter.numerator == 3 and not meter.compound:
                hits = [b * pulse for b in range(1, beats)] or [0.0]  # oom-pah-pah
            else:
                hits = [b * pulse + pulse / 2 for b in range(beats)]  # off-beats
            length = min(0.5 * pulse, 0.5)
            for hit in hits:
                notes.extend({"part": "chords", "pitch": p, "start": slot.start + hit, "duration": length,
                              "velocity": 80} for p in voicing)
        else:
            raise ValueError(f"unknown chord pattern {pattern!r}")
    for start, length, voicing in held:
        notes.extend({"part": "chords", "pitch": p, "start": start, "duration": length, "velocity": 72}
                     for p in voicing)
    return notes
