"""Rule melody, harmoniser, drum library, arrangement and style presets."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from studio.core.errors import BadInputError
from studio.core.music_styles import find_style, list_styles, load_style_file, styles_dir
from studio.core.music_theory import parse_key, parse_meter
from studio.ml.music.arrange import apply_swing, arrange, melody_part, swing_time
from studio.ml.music.drums import PATTERNS, drum_part, generic_pattern
from studio.ml.music.harmony import bass_line, chord_part, harmonise, voicings
from studio.ml.music.rule_melody import rule_melody

A_MINOR, C_MAJOR, FOUR = parse_key("A minor"), parse_key("C major"), parse_meter("4/4")


def _bar_notes(notes: list[dict], bar: int, beats: float = 4.0) -> list[dict]:
    return [n for n in notes if bar * beats <= n["start"] < (bar + 1) * beats]


@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8", "5/4"])
@pytest.mark.parametrize("key", ["A minor", "F# major", "Bb minor"])
def test_rule_melody_is_in_key_fills_the_clip_and_ends_on_the_tonic(key: str, meter: str) -> None:
    k, m = parse_key(key), parse_meter(meter)
    notes = rule_melody(k, m, 8, seed=4)
    assert all(k.contains(n["pitch"]) for n in notes)
    assert all(n["part"] == "melody" and 1 <= n["velocity"] <= 127 for n in notes)
    end = max(n["start"] + n["duration"] for n in notes)
    assert end == pytest.approx(8 * m.beats_per_bar)
    assert all(_bar_notes(notes, bar, m.beats_per_bar) for bar in range(8))  # no empty bar
    assert notes[-1]["pitch"] % 12 == k.tonic  # the loop cadences home
    starts = [n["start"] for n in notes]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # a single line


def test_rule_melody_is_seeded() -> None:
    assert rule_melody(A_MINOR, FOUR, 8, 3) == rule_melody(A_MINOR, FOUR, 8, 3)
    assert rule_melody(A_MINOR, FOUR, 8, 3) != rule_melody(A_MINOR, FOUR, 8, 4)


def test_rule_melody_repeats_its_motif() -> None:
    notes = rule_melody(C_MAJOR, FOUR, 8, seed=11)
    first, second, fifth = (_bar_notes(notes, b) for b in (0, 1, 4))
    rhythm = [(n["start"] % 4, n["duration"]) for n in first]
    assert [(n["start"] % 4, n["duration"]) for n in second] == rhythm  # a' keeps the rhythm of a
    assert [(n["start"] % 4, n["duration"], n["pitch"]) for n in fifth] == \
        [(n["start"] % 4, n["duration"], n["pitch"]) for n in first]  # each phrase opens with the motif


def test_rule_melody_continues_an_existing_line() -> None:
    prefix = rule_melody(A_MINOR, FOUR, 4, seed=1)
    more = rule_melody(A_MINOR, FOUR, 8, seed=2, prefix=prefix, bar_range=(4, 8))
    assert min(n["start"] for n in more) == 16.0 and max(n["start"] + n["duration"] for n in more) == 32.0
    # The continuation opens with the prefix's motif (its first bar).
    assert [(n["start"] - 16, n["pitch"]) for n in _bar_notes(more, 4)] == \
        [(n["start"], n["pitch"]) for n in _bar_notes(prefix, 0)]


def test_harmoniser_follows_the_melody_and_cadences_on_the_tonic() -> None:
    # Bar 1 outlines C major, bar 2 F major (IV), bar 3 G major (V), bar 4 C again.
    outline = [(60, 64, 67, 72), (65, 69, 72, 77), (67, 71, 74, 79), (72, 67, 64, 60)]
    melody = [{"part": "melody", "pitch": p, "start": bar * 4 + i, "duration": 1.0, "velocity": 90}
              for bar, pitches in enumerate(outline) for i, p in enumerate(pitches)]
    slots = harmonise(melody, C_MAJOR, FOUR, 4, 1, seed=0)
    assert [s.chord.symbol for s in slots] == ["I", "IV", "V", "I"]
    assert [(s.start, s.duration) for s in slots] == [(0, 4), (4, 4), (8, 4), (12, 4)]


def test_harmoniser_uses_the_major_dominant_for_a_raised_leading_tone() -> None:
    melody = [{"part": "melody", "pitch": p, "start": i, "duration": 1.0, "velocity": 90}
              for i, p in enumerate([69, 72, 76, 72, 68, 71, 76, 71, 69, 72, 76, 69])]
    slots = harmonise(melody, A_MINOR, FOUR, 3, 1, seed=0)
    assert [s.chord.symbol for s in slots] == ["i", "V", "i"]


@pytest.mark.parametrize("seed", range(6))
def test_every_harmonisation_ends_on_the_tonic(seed: int) -> None:
    melody = rule_melody(A_MINOR, FOUR, 8, seed)
    slots = harmonise(melody, A_MINOR, FOUR, 8, 2, seed)
    assert len(slots) == 16 and slots[-1].chord.degree == 0


@pytest.mark.parametrize("pattern", ["root", "root-fifth", "octave", "walking"])
def test_bass_starts_each_chord_on_its_root(pattern: str) -> None:
    slots = harmonise(rule_melody(C_MAJOR, FOUR, 4, 1), C_MAJOR, FOUR, 4, 1)
    bass = bass_line(slots, FOUR, pattern, octave=2)
    for slot in slots:
        first = min((n for n in bass if n["start"] == slot.start), key=lambda n: n["pitch"])
        assert first["pitch"] % 12 == slot.chord.root
    assert all(24 <= n["pitch"] <= 60 for n in bass)
    assert max(n["start"] + n["duration"] for n in bass) == pytest.approx(16.0)


def test_voicings_hold_the_chord_tones_and_move_smoothly() -> None:
    slots = harmonise(rule_melody(C_MAJOR, FOUR, 8, 5), C_MAJOR, FOUR, 8, 1)
    voiced = voicings(slots, octave=4)
    for slot, voicing in zip(slots, voiced, strict=True):
        assert {p % 12 for p in voicing} == set(slot.chord.pitch_classes)
    for a, b in itertools.pairwise(voiced):
        assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) <= 9  # close voice leading


@pytest.mark.parametrize("pattern", ["block", "pad", "arp", "stab"])
def test_chord_patterns_stay_inside_their_slots(pattern: str) -> None:
    slots = harmonise(rule_melody(C_MAJOR, FOUR, 4, 2), C_MAJOR, FOUR, 4, 2)
    notes = chord_part(slots, FOUR, pattern)
    assert notes and max(n["start"] + n["duration"] for n in notes) <= 16.0 + 1e-9
    for n in notes:
        slot = next(s for s in slots if s.start <= n["start"] < s.start + s.duration)
        assert n["pitch"] % 12 in slot.chord.pitch_classes


def test_drum_patterns_fit_their_meters() -> None:
    for family, by_meter in PATTERNS.items():
        for meter, variants in by_meter.items():
            steps = round(parse_meter(meter).beats_per_bar * 4)
            for variant in variants:
                assert all(len(line) == steps for line in variant.values()), (family, meter)


@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8", "5/4", "7/8"])
def test_drums_cover_the_clip_with_fills_at_phrase_ends(meter: str) -> None:
    m = parse_meter(meter)
    notes = drum_part("chiptune", m, 8, seed=3, fill_every=4)
    assert all(0 <= n["start"] < 8 * m.beats_per_bar for n in notes)
    assert drum_part("chiptune", m, 8, seed=3, fill_every=4) == notes
    plain = drum_part("chiptune", m, 8, seed=3, fill_every=100)  # no phrase end before the last bar

    def last_pulse(ns: list[dict], bar: int) -> list[tuple]:
        lo = (bar + 1) * m.beats_per_bar - m.pulse
        return sorted((n["start"], n["pitch"]) for n in ns if lo <= n["start"] < (bar + 1) * m.beats_per_bar)

    assert last_pulse(notes, 3) != last_pulse(plain, 3)  # bar 4 closes a phrase with a fill
    assert last_pulse(notes, 2) == last_pulse(plain, 2)
    assert any(n["pitch"] == 49 and n["start"] == 4 * m.beats_per_bar for n in notes)  # crash on phrase 2


def test_generic_pattern_for_unwritten_meters() -> None:
    pattern = generic_pattern(parse_meter("6/8"))
    assert pattern[36] == "x..........." and pattern[38] == "......x....."


def test_arrangement_has_the_style_parts_inside_the_clip() -> None:
    style = find_style("boss-battle")
    key, meter = parse_key(style.key), parse_meter(style.meter)
    melody = rule_melody(key, meter, 8, 2)
    arrangement = arrange(melody, style, key, meter, 8, 2)
    assert {n["part"] for n in arrangement.notes} == {"melody", "chords", "bass", "drums"}
    assert arrangement.part("melody") == melody
    assert all(n["start"] >= 0 and n["start"] + n["duration"] <= 32 + 1e-9 for n in arrangement.notes)
    assert len(arrangement.chords) == 16  # two chords per bar in this style


def test_swing_delays_offbeat_eighths_and_keeps_beats() -> None:
    assert swing_time(2.0, 1.0) == 2.0 and swing_time(3.0, 0.5) == 3.0
    assert swing_time(0.5, 1.0) == pytest.approx(2 / 3)  # full swing: triplet feel
    notes = [{"part": "x", "pitch": 60, "start": 0.5, "duration": 0.5, "velocity": 80}]
    swung = apply_swing(notes, 1.0, FOUR)[0]
    assert swung["start"] == pytest.approx(2 / 3) and swung["start"] + swung["duration"] == pytest.approx(1.0)
    assert apply_swing(notes, 1.0, parse_meter("6/8"))[0]["start"] == 0.5  # compound meters are left alone


def test_melody_part_picks_the_highest_voice_of_foreign_midi() -> None:
    notes = [{"part": "piano low", "pitch": 40, "start": 0, "duration": 1, "velocity": 80},
             {"part": "piano high", "pitch": 76, "start": 0, "duration": 1, "velocity": 80},
             {"part": "drums", "pitch": 90, "start": 0, "duration": 1, "velocity": 80}]
    assert melody_part(notes) == [{"part": "melody", "pitch": 76, "start": 0, "duration": 1, "velocity": 80}]


def test_every_bundled_style_loads() -> None:
    names = list_styles()
    assert {"chiptune-adventure", "calm-village", "boss-battle", "upbeat-jingle"} <= set(names)
    for name in names:
        style = find_style(name)
        assert style.name == name and "melody" in style.instruments
    assert find_style("chiptune").name == "chiptune-adventure"


def test_unknown_and_broken_styles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"not a known style.*calm-village"):
        find_style("polka")
    raw = json.loads((styles_dir() / "calm-village.json").read_text())
    raw["instruments"]["melody"]["voice"] = "kazoo"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(raw))
    with pytest.raises(BadInputError, match="unknown voice 'kazoo'"):
        load_style_file(broken)
    raw["instruments"]["melody"]["voice"] = "triangle"
    raw["melody"]["form"] = "rondo"
    broken.write_text(json.dumps(raw))
    with pytest.raises(BadInputError, match="melody form must be one of through, period"):
        load_style_file(broken)
    broken.write_text("{not json")
    with pytest.raises(BadInputError, match="not readable JSON"):
        load_style_file(broken)
