"""A library of drum patterns keyed by style family and meter, with fills that close each phrase.

Patterns are written on a sixteenth-note grid ('x' accent, 'o' normal, '-' ghost, '.' rest), one string per
drum, using General MIDI drum pitches (so MIDI export plays them on channel 10). Each family has variants; the
seed picks one per clip. Meters without a written pattern get one built from their pulse structure (kick on the
downbeat, snare on the middle pulse or the backbeats, hats on every eighth). The last bar of every phrase ends
with a fill chosen by seed, and a crash marks the first bar of each phrase (including bar 1, which the loop wraps
onto after the final fill).
"""

from __future__ import annotations

import random
from typing import Any

from studio.core.music_theory import Meter

Note = dict[str, Any]

KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH = 36, 38, 42, 46, 49
LOW_TOM, MID_TOM, HIGH_TOM = 45, 47, 50
STEP = 0.25  # beats per grid step
LEVELS = {"x": 112, "o": 90, "-": 55}

PATTERNS: dict[str, dict[str, list[dict[int, str]]]] = {
    "chiptune": {
        "4/4": [
            {KICK: "x.......x.o.....", SNARE: "....x.......x...", CLOSED_HAT: "o.-.o.-.o.-.o.-."},
            {KICK: "x.....o...x.....", SNARE: "....x.......x..-", CLOSED_HAT: "o-o-o-o-o-o-o-o-"},
            {KICK: "x...o...x...o...", SNARE: "....x.......x...", CLOSED_HAT: "..o...o...o...o."},
        ],
        "3/4": [{KICK: "x...........", SNARE: "....o...o...", CLOSED_HAT: "o.-.o.-.o.-."}],
    },
    "driving": {
        "4/4": [
            {KICK: "x.o...o.x.o...o.", SNARE: "....x.......x...", CLOSED_HAT: "oooooooooooooooo"},
            {KICK: "x.x...x.x.x...x.", SNARE: "....x..-....x...", CLOSED_HAT: "o-o-o-o-o-o-o-o-",
             OPEN_HAT: "..............o."},
        ],
        "3/4": [{KICK: "x.o...o.....", SNARE: "....x...x...", CLOSED_HAT: "oooooooooooo"}],
    },
    "pop": {
        "4/4": [
            {KICK: "x.....o.x.......", SNARE: "....x.......x...", CLOSED_HAT: "o.o.o.o.o.o.o...",
             OPEN_HAT: "..............o."},
            {KICK: "x.......x.o.....", SNARE: "....x.......x...", CLOSED_HAT: "o.o.o.o.o.o.o.o."},
        ],
        "3/4": [{KICK: "x.......o...", SNARE: "....x.......", CLOSED_HAT: "o.o.o.o.o.o."}],
    },
    "soft": {
        "4/4": [{KICK: "o.......o.......", SNARE: "....-.......-...", CLOSED_HAT: "-.-.-.-.-.-.-.-."}],
        "3/4": [
            {KICK: "o...........", SNARE: "....-...-...", CLOSED_HAT: "-.-.-.-.-.-."},
            {KICK: "o.......-...", SNARE: "....-...-...", CLOSED_HAT: "-...-...-..."},
        ],
    },
}

# Fills replace the last pulse of a phrase's last bar: (offset in steps from that pulse, drum, level).
FILLS = {
    "snare-roll": [(0, SNARE, "-"), (1, SNARE, "o"), (2, SNARE, "o"), (3, SNARE, "x")],
    "toms": [(0, HIGH_TOM, "o"), (1, HIGH_TOM, "o"), (2, MID_TOM, "o"), (3, LOW_TOM, "x")],
    "kick-snare": [(0, KICK, "o"), (2, SNARE, "x"), (3, SNARE, "x")],
}
SOFT_FILLS = {"brush": [(0, SNARE, "-"), (2, SNARE, "-"), (3, SNARE, "o")]}


def generic_pattern(meter: Meter) -> dict[int, str]:
    """A pattern for any meter built from its pulses: kick on 1, snare mid-bar or on the backbeats, eighth hats."""
    steps = max(1, round(meter.beats_per_bar / STEP))
    pulse_steps = max(1, round(meter.pulse / STEP))
    pulses = max(1, steps // pulse_steps)
    kick, snare = ["."] * steps, ["."] * steps
    kick[0] = "x"
    if pulses % 2 == 0 and pulses >= 4:
        for p in range(1, pulses, 2):
            snare[p * pulse_steps] = "x"
    elif pulses >= 2:
        snare[(pulses // 2) * pulse_steps] = "x"
    hats = "".join("o" if i % 2 == 0 else "." for i in range(steps))
    return {KICK: "".join(kick), SNARE: "".join(snare), CLOSED_HAT: hats}


def _steps(meter: Meter) -> int:
    return max(1, round(meter.beats_per_bar / STEP))


def drum_part(family: str, meter: Meter, bars: int, seed: int, fill_every: int = 4) -> list[Note]:
    """Drum notes (part "drums", GM pitches) for the whole clip."""
    rng = random.Random(seed * 104_729 + 11)
    variants = PATTERNS.get(family, {}).get(meter.label)
    pattern = rng.choice(variants) if variants else generic_pattern(meter)
    steps = _steps(meter)
    bpb = meter.beats_per_bar
    pulse_steps = max(1, round(meter.pulse / STEP))
    fills = SOFT_FILLS if family == "soft" else FILLS
    notes: list[Note] = []
    for bar in range(bars):
        phrase_end = bar % fill_every == fill_every - 1 or bar == bars - 1
        fill_from = steps - pulse_steps if phrase_end and bars > 1 else steps
        for drum, line in pattern.items():
            for i, mark in enumerate(line[:steps]):
                if mark == "." or i >= fill_from:
                    continue
                notes.append(_hit(drum, bar * bpb + i * STEP, mark))
        if fill_from < steps:
            for offset, drum, mark in fills[rng.choice(sorted(fills))]:
                if fill_from + offset < steps:
                    notes.append(_hit(drum, bar * bpb + (fill_from + offset) * STEP, mark))
        if bar % fill_every == 0 and family != "soft":
            notes.append(_hit(CRASH, bar * bpb, "o"))
    return notes


def _hit(drum: int, start: float, mark: str) -> Note:
    return {"part": "drums", "pitch": drum, "start": start, "duration": STEP, "velocity": LEVELS[mark]}
