"""MIDI export (type 1, a track per part, tempo/meter/key events, drums on channel 10) parsed back to the same notes."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.errors import BadInputError
from studio.core.formats.midi import DRUM_CHANNEL, read_midi, write_midi
from studio.core.music_theory import parse_key, parse_meter

NOTES = [
    {"part": "melody", "pitch": 69, "start": 0.0, "duration": 0.5, "velocity": 100},
    {"part": "melody", "pitch": 72, "start": 0.5, "duration": 1.5, "velocity": 90},
    {"part": "melody", "pitch": 71, "start": 2.25, "duration": 0.25, "velocity": 80},
    {"part": "chords", "pitch": 57, "start": 0.0, "duration": 4.0, "velocity": 70},
    {"part": "chords", "pitch": 60, "start": 0.0, "duration": 4.0, "velocity": 70},
    {"part": "chords", "pitch": 64, "start": 0.0, "duration": 4.0, "velocity": 70},
    {"part": "bass", "pitch": 45, "start": 0.0, "duration": 2.0, "velocity": 100},
    {"part": "bass", "pitch": 40, "start": 2.0, "duration": 2.0, "velocity": 88},
    {"part": "drums", "pitch": 36, "start": 0.0, "duration": 0.25, "velocity": 112},
    {"part": "drums", "pitch": 38, "start": 1.0, "duration": 0.25, "velocity": 90},
    {"part": "drums", "pitch": 42, "start": 0.5, "duration": 0.25, "velocity": 55},
]


def _key(note: dict) -> tuple:
    return (note["part"], note["pitch"], round(note["start"], 6), round(note["duration"], 6), note["velocity"])


def test_round_trip_keeps_notes_tempo_meter_and_key(tmp_path: Path) -> None:
    path = write_midi(tmp_path / "clip.mid", NOTES, 140, parse_meter("3/4"), parse_key("A minor"),
                      {"melody": 80, "chords": 81, "bass": 38}, length_beats=6.0)
    clip = read_midi(path)
    assert sorted(map(_key, clip.notes)) == sorted(map(_key, NOTES))
    assert clip.bpm == 140.0
    assert clip.meter.label == "3/4"
    assert clip.key is not None and clip.key.label == "A minor"
    assert clip.length_beats == 6.0
    assert clip.programs == {"melody": 80, "chords": 81, "bass": 38}


def test_file_is_type_1_with_a_conductor_and_a_track_per_part(tmp_path: Path) -> None:
    path = write_midi(tmp_path / "clip.mid", NOTES, 97.3, parse_meter("4/4"), parse_key("Bb minor"))
    midi = mido.MidiFile(str(path))
    assert midi.type == 1
    names = [next(m.name for m in track if m.type == "track_name") for track in midi.tracks]
    assert names[1:] == ["melody", "chords", "bass", "drums"]
    conductor = {m.type: m for m in midi.tracks[0]}
    assert conductor["key_signature"].key == "Bbm"
    assert round(mido.tempo2bpm(conductor["set_tempo"].tempo), 3) == 97.3
    assert (conductor["time_signature"].numerator, conductor["time_signature"].denominator) == (4, 4)
    drum_channels = {m.channel for m in midi.tracks[4] if m.type == "note_on"}
    other_channels = {m.channel for t in midi.tracks[1:4] for m in t if m.type == "note_on"}
    assert drum_channels == {DRUM_CHANNEL} and DRUM_CHANNEL not in other_channels
    assert not any(m.type == "program_change" for m in midi.tracks[4])


def test_overlapping_same_pitch_notes_do_not_silence_each_other(tmp_path: Path) -> None:
    notes = [{"part": "melody", "pitch": 60, "start": 0.0, "duration": 2.0, "velocity": 100},
             {"part": "melody", "pitch": 60, "start": 1.0, "duration": 1.0, "velocity": 100}]
    clip = read_midi(write_midi(tmp_path / "o.mid", notes, 120, parse_meter("4/4")))
    assert [(n["start"], n["duration"]) for n in clip.notes] == [(0.0, 1.0), (1.0, 1.0)]


note_strategy = st.fixed_dictionaries({
    "part": st.sampled_from(["melody", "bass", "drums"]),
    "pitch": st.integers(0, 127),
    "start": st.integers(0, 4 * 480 * 8).map(lambda t: t / 480),
    "duration": st.integers(1, 480 * 4).map(lambda t: t / 480),
    "velocity": st.integers(1, 127),
})


@settings(max_examples=40, deadline=None)
@given(st.lists(note_strategy, min_size=1, max_size=30))
def test_any_grid_aligned_notes_round_trip(tmp_path_factory: pytest.TempPathFactory, notes: list[dict]) -> None:
    # Same-pitch overlaps inside one part are trimmed by design; keep them apart here.
    seen: dict[tuple[str, int], list[tuple[float, float]]] = {}
    kept = []
    for n in notes:
        spans = seen.setdefault((n["part"], n["pitch"]), [])
        if all(n["start"] >= e or n["start"] + n["duration"] <= s for s, e in spans):
            spans.append((n["start"], n["start"] + n["duration"]))
            kept.append(n)
    path = tmp_path_factory.mktemp("midi") / "r.mid"
    clip = read_midi(write_midi(path, kept, 120, parse_meter("4/4")))
    assert sorted(map(_key, clip.notes)) == sorted(map(_key, kept))


def test_corrupt_empty_and_missing_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"this is not a midi file at all")
    with pytest.raises(BadInputError, match="not a readable MIDI file"):
        read_midi(garbage)
    truncated = tmp_path / "truncated.mid"
    full = write_midi(tmp_path / "full.mid", NOTES, 120, parse_meter("4/4")).read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(BadInputError):
        read_midi(truncated)
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    with pytest.raises(BadInputError, match="empty"):
        read_midi(empty)
    with pytest.raises(BadInputError, match="no such file"):
        read_midi(tmp_path / "missing.mid")


def test_a_file_without_notes_is_refused(tmp_path: Path) -> None:
    midi = mido.MidiFile(type=1)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    midi.save(str(tmp_path / "silent.mid"))
    with pytest.raises(BadInputError, match="no notes"):
        read_midi(tmp_path / "silent.mid")


def test_type_0_files_are_split_by_channel(tmp_path: Path) -> None:
    midi = mido.MidiFile(type=0, ticks_per_beat=96)
    midi.tracks.append(mido.MidiTrack([
        mido.Message("note_on", channel=0, note=60, velocity=100, time=0),
        mido.Message("note_on", channel=9, note=36, velocity=100, time=0),
        mido.Message("note_off", channel=9, note=36, velocity=0, time=24),
        mido.Message("note_on", channel=0, note=60, velocity=0, time=72),  # velocity 0 = note off
    ]))
    midi.save(str(tmp_path / "t0.mid"))
    clip = read_midi(tmp_path / "t0.mid")
    assert clip.bpm == 120.0 and clip.meter.label == "4/4" and clip.key is None
    assert sorted(map(_key, clip.notes)) == [("drums", 36, 0.0, 0.25, 100), ("track 0 ch1", 60, 0.0, 1.0, 100)]
