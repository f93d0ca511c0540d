"""Keys, scales, chords, meters and the tempo/bars/length rules of studio.core.music_theory."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.core.errors import BadInputError
from studio.core.music_theory import (
    clip_samples,
    diatonic_chords,
    key_from_midi,
    parse_key,
    parse_meter,
    pitch_name,
    triad,
    validate_bars,
    validate_bpm,
)


@pytest.mark.parametrize(
    ("text", "tonic", "mode", "midi"),
    [
        ("A minor", 9, "minor", "Am"),
        ("F# major", 6, "major", "F#"),
        ("Bb minor", 10, "minor", "Bbm"),
        ("Am", 9, "minor", "Am"),
        ("C", 0, "major", "C"),
        ("e min", 4, "minor", "Em"),
        ("Eb minor", 3, "minor", "Ebm"),
        ("D# minor", 3, "minor", "D#m"),
        ("Gb major", 6, "major", "Gb"),
        ("C# major", 1, "major", "Db"),  # seven sharps is written as five flats in the key signature
    ],
)
def test_parse_key(text: str, tonic: int, mode: str, midi: str) -> None:
    key = parse_key(text)
    assert (key.tonic, key.mode, key.midi_name) == (tonic, mode, midi)
    assert key_from_midi(key.midi_name).tonic == tonic


@pytest.mark.parametrize("text", ["H minor", "A locrian", "", "minor", "A##", "12", "C major minor"])
def test_unknown_key_is_refused_with_a_clear_message(text: str) -> None:
    with pytest.raises(BadInputError, match="unknown key"):
        parse_key(text)


def test_scales_and_degrees() -> None:
    a_minor = parse_key("A minor")
    assert a_minor.scale == (9, 11, 0, 2, 4, 5, 7)
    assert parse_key("C major").scale == (0, 2, 4, 5, 7, 9, 11)
    assert a_minor.degree_pitch(0, 4) == 69  # A4
    assert a_minor.degree_pitch(7, 4) == 81
    assert a_minor.degree_pitch(-1, 4) == 67  # G4, the degree below the tonic
    assert a_minor.degree_of(60) == 2 and a_minor.degree_of(61) is None
    assert pitch_name(69) == "A4" and pitch_name(70, flats=True) == "Bb4"


def test_key_signatures() -> None:
    assert [parse_key(k).fifths for k in ("C", "G", "F", "Bb minor", "E minor", "F# major")] == [0, 1, -1, -5, 1, 6]


def test_diatonic_triads() -> None:
    assert [c.symbol for c in diatonic_chords(parse_key("C major"))] == ["I", "ii", "iii", "IV", "V", "vi", "viio"]
    # Minor keys use the major dominant (raised leading tone).
    assert [c.symbol for c in diatonic_chords(parse_key("A minor"))] == ["i", "iio", "III", "iv", "V", "VI", "VII"]
    assert triad(parse_key("A minor"), 4).pitch_classes == (4, 8, 11)  # E G# B
    assert triad(parse_key("A minor"), 4, harmonic_dominant=False).quality == "min"


@pytest.mark.parametrize(("text", "beats", "compound"), [("4/4", 4.0, False), ("3/4", 3.0, False),
                                                        ("6/8", 3.0, True), ("2/2", 4.0, False),
                                                        ("5/4", 5.0, False), ("7/8", 3.5, False)])
def test_meters(text: str, beats: float, compound: bool) -> None:
    meter = parse_meter(text)
    assert meter.beats_per_bar == beats and meter.compound == compound and meter.label == text.replace(" ", "")


@pytest.mark.parametrize("text", ["4", "4/3", "0/4", "17/4", "four/four", "4/4/4"])
def test_bad_meters(text: str) -> None:
    with pytest.raises(BadInputError, match="meter"):
        parse_meter(text)


@pytest.mark.parametrize("bpm", [0, 10000, 19.9, 300.1, -120, "fast", None])
def test_tempo_out_of_range_or_not_a_number(bpm: object) -> None:
    with pytest.raises(BadInputError, match="tempo"):
        validate_bpm(bpm)


def test_tempo_limits_are_inclusive() -> None:
    assert validate_bpm(20) == 20.0 and validate_bpm("300") == 300.0


@pytest.mark.parametrize("bars", [0, 129, -1, 2.5, "eight"])
def test_bad_bars(bars: object) -> None:
    with pytest.raises(BadInputError, match="bars"):
        validate_bars(bars)


def test_good_bars() -> None:
    assert validate_bars(1) == 1 and validate_bars("128") == 128 and validate_bars(8.0) == 8


def test_clip_length_of_the_issue_example() -> None:
    # 8 bars of 4/4 at 120 bpm are 16 s.
    assert clip_samples(8, parse_meter("4/4"), 120, 44100) == 16 * 44100


@given(
    bars=st.integers(1, 128),
    meter=st.sampled_from(["4/4", "3/4", "6/8", "2/4", "5/4", "7/8", "12/8"]),
    bpm=st.integers(2000, 30000).map(lambda centi: centi / 100),
    rate=st.sampled_from([44100, 48000]),
)
def test_clip_length_is_bars_times_beats_times_60_over_bpm(bars: int, meter: str, bpm: float, rate: int) -> None:
    m = parse_meter(meter)
    exact = Fraction(bars) * Fraction(m.numerator * 4, m.denominator) * 60 * rate / Fraction(str(bpm))
    assert abs(clip_samples(bars, m, bpm, rate) - exact) <= Fraction(1, 2)
