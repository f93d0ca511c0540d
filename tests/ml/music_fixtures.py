"""Small hand-written music inputs shared by the music tests: ABC text, a MIDI writer, a synthetic data folder."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np

from studio.ml.data.music import split_of, write_split
from studio.ml.music import tokens

# A jig with a pickup, a tie, a chord, a triplet, a grace note and a section ending + pickup bar.
ABC_JIG = """X: 1
T: Test Jig
R: jig
M: 6/8
L: 1/8
K: Ador
E | A2B c2d | e3- e2d | [ce]dc (3BAG A2 |
{g}e2d c2B | A3 A2 :|
|: e | a2g e2d | e3 A2 ||
"""

ABC_TWO_TUNES = """X: 1
T: First
M: 3/4
L: 1/4
Q: 1/4=60
K: G
G A B | c2 B | A2 G | G3 |

X: 2
T: Second
M: 2/4
L: 1/8
K: Dm
D E F G | A2 d2 | c A G E | D4 |
"""


def write_midi(path: Path, notes: list[tuple[int, float, float]], tempo_bpm: float = 100.0,
               key: str | None = "Em", meter: tuple[int, int] = (3, 4), track_name: str = "lead") -> Path:
    """(pitch, start beat, length beats) notes in one track of a type-1 file."""
    tpb = 480
    midi = mido.MidiFile(type=1, ticks_per_beat=tpb)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1], time=0))
    if key:
        conductor.append(mido.MetaMessage("key_signature", key=key, time=0))
    midi.tracks.append(conductor)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=track_name, time=0))
    events = []
    for pitch, start, length in notes:
        events.append((round(start * tpb), 1, mido.Message("note_on", note=pitch, velocity=90)))
        events.append((round((start + length) * tpb), 0, mido.Message("note_off", note=pitch, velocity=0)))
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    midi.tracks.append(track)
    midi.save(str(path))
    return path


def synthetic_record(index: int, bars: int = 8, meter: str = "4/4", part: str = "melody") -> dict:
    """A simple scale-wise tune in C major (or A minor) with a repeated opening bar."""
    length = tokens.bar_ticks(meter)
    step = length // 4
    mode = "major" if index % 2 == 0 else "minor"
    tonic = 0 if mode == "major" else 9
    scale = sorted({60 + (tonic + s) % 12 for s in tokens.MODES[mode]})
    events = []
    for bar in range(bars):
        source = 0 if bar == 2 else bar  # bar 3 repeats bar 1
        local = np.random.default_rng([index, source])
        for pos in range(0, length, step):
            events.append([bar, pos, int(local.choice(scale)) - (24 if part == "bass" else 0), step])
    return {
        "id": f"synthetic/{index}" + (":bass" if part == "bass" else ""), "source": "synthetic",
        "title": f"tune {index}", "tonic": tonic, "mode": mode, "meter": meter, "tempo": "moderate", "part": part,
        "bars": bars, "events": events,
    }


def synthetic_data(folder: Path, tunes: int = 40) -> Path:
    """A data folder shaped like `studio data music` output (train/val npz + manifest)."""
    records = [synthetic_record(i, bars=4 + i % 9, meter=("4/4", "3/4", "6/8")[i % 3]) for i in range(tunes)]
    records.append(synthetic_record(0, part="bass"))
    train = [r for r in records if split_of(r["id"]) == "train"]
    val = [r for r in records if split_of(r["id"]) == "val"] or [train.pop()]
    folder.mkdir(parents=True, exist_ok=True)
    write_split(train, folder / "train.npz")
    write_split(val, folder / "val.npz")
    manifest = {"version": 1, "vocab": tokens.VOCAB_VERSION, "sources": {"synthetic": "test data"}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder
