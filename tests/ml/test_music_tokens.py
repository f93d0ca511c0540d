"""The note-event vocabulary: layout, header, quantisation and exact round trips of quantised notes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.errors import BadInputError
from studio.ml.music import tokens


def test_vocabulary_is_unique_and_ranges_are_contiguous() -> None:
    assert len(set(tokens.VOCAB)) == tokens.VOCAB_SIZE
    assert tokens.VOCAB[tokens.pos_token(0)] == "POS_0"
    assert tokens.VOCAB[tokens.pos_token(tokens.MAX_BAR_TICKS - 1)] == f"POS_{tokens.MAX_BAR_TICKS - 1}"
    assert tokens.VOCAB[tokens.pitch_token(60)] == "PITCH_60"
    assert tokens.VOCAB[tokens.dur_token(1)] == "DUR_1"
    assert tokens.VOCAB[tokens.dur_token(tokens.MAX_BAR_TICKS)] == f"DUR_{tokens.MAX_BAR_TICKS}"
    assert tokens.is_pitch(tokens.pitch_token(tokens.PITCH_HIGH)) and not tokens.is_pitch(tokens.dur_token(1))


@pytest.mark.parametrize(("meter", "ticks"), [("4/4", 48), ("3/4", 36), ("6/8", 36), ("12/8", 72), ("7/8", 42)])
def test_bar_lengths(meter: str, ticks: int) -> None:
    assert tokens.bar_ticks(meter) == ticks
    assert ticks <= tokens.MAX_BAR_TICKS


def test_header_round_trip_and_tempo_classes() -> None:
    header = tokens.Header.from_params("F# dorian", "major", "6/8", 150, 12, "bass")
    assert (header.tonic, header.mode, header.tempo, header.part) == (6, "dorian", "very_fast", "bass")
    assert tokens.decode_header(header.tokens()) == header
    assert tokens.tempo_class(60) == "slow" and tokens.tempo_class(100) == "moderate"
    assert tokens.tempo_class(120) == "fast"
    long = tokens.Header.from_params("C", "major", "4/4", 100, 100)
    assert tokens.VOCAB[long.tokens()[5]] == f"BARS_{tokens.MAX_BARS_TOKEN}"


@pytest.mark.parametrize(
    ("key", "mode", "expected"),
    [("A minor", None, (9, "minor")), ("Bb", "major", (10, "major")), ("A", "minor", (9, "minor")),
     ("E dorian", None, (4, "dorian")), ("G mix", None, (7, "mixolydian")), ("Am", None, (9, "minor")),
     ("Bb", "minor", (10, "minor")), ("C#m", "major", (1, "minor"))],
)
def test_keys_and_modes(key: str, mode: str | None, expected: tuple[int, str]) -> None:
    assert tokens.parse_key_mode(key, mode) == expected


def test_bad_conditioning_is_refused_clearly() -> None:
    with pytest.raises(BadInputError, match="unknown key"):
        tokens.parse_key_mode("H minor")
    with pytest.raises(BadInputError, match="mode"):
        tokens.parse_key_mode("C", "locrianish")
    with pytest.raises(BadInputError, match="meter"):
        tokens.Header.from_params("C", "major", "5/8", 120, 4)
    with pytest.raises(BadInputError, match="parts"):
        tokens.Header.from_params("C", "major", "4/4", 120, 4, part="drums")


def test_encode_layout() -> None:
    header = tokens.Header.from_params("C", "major", "4/4", 120, 2)
    notes = [{"part": "melody", "pitch": 60, "start": 0.0, "duration": 1.0, "velocity": 90},
             {"part": "melody", "pitch": 64, "start": 4.5, "duration": 0.5, "velocity": 90}]
    names = [tokens.VOCAB[t] for t in tokens.encode(notes, header)]
    assert names == ["BOS", "KEY_C", "MODE_major", "METER_4/4", "TEMPO_fast", "BARS_2", "PART_melody",
                     "BAR", "POS_0", "PITCH_60", "DUR_12", "BAR", "POS_6", "PITCH_64", "DUR_6", "EOS"]


def test_quantise_splits_bar_lines_keeps_one_voice_and_folds_range() -> None:
    notes = [
        {"part": "melody", "pitch": 60, "start": 3.0, "duration": 2.0},  # crosses into bar 2
        {"part": "melody", "pitch": 67, "start": 6.0, "duration": 1.0},
        {"part": "melody", "pitch": 72, "start": 6.0, "duration": 0.5},  # same onset: higher pitch wins
        {"part": "melody", "pitch": 130, "start": 6.5, "duration": 0.26},  # cut nothing, folded into range
        {"part": "bass", "pitch": 40, "start": 0.0, "duration": 4.0},  # another part: ignored
    ]
    events = tokens.quantise(notes, "4/4")
    assert events == [
        tokens.Event(0, 36, 60, 12), tokens.Event(1, 0, 60, 12), tokens.Event(1, 24, 72, 6),
        tokens.Event(1, 30, 130 - 24, 3),
    ]


def test_a_held_note_is_cut_by_the_next_onset() -> None:
    notes = [{"pitch": 60, "start": 0.0, "duration": 3.0}, {"pitch": 62, "start": 1.0, "duration": 1.0}]
    assert tokens.quantise(notes, "4/4") == [tokens.Event(0, 0, 60, 12), tokens.Event(0, 12, 62, 12)]


def test_bad_notes_are_refused() -> None:
    with pytest.raises(BadInputError, match="missing"):
        tokens.quantise([{"pitch": 60, "start": 0.0}], "4/4")
    with pytest.raises(BadInputError, match="before the clip"):
        tokens.quantise([{"pitch": 60, "start": -1.0, "duration": 1.0}], "4/4")


def test_malformed_bodies_are_rejected_by_the_decoder() -> None:
    with pytest.raises(ValueError):
        tokens.decode_events([tokens.pos_token(0), tokens.pitch_token(60), tokens.dur_token(3)])  # no BAR
    with pytest.raises(ValueError):
        tokens.decode_events([tokens.BAR, tokens.pos_token(0), tokens.dur_token(3), tokens.pitch_token(60)])
    with pytest.raises(ValueError):
        tokens.decode_header([tokens.BAR] * 7)


@st.composite
def quantised_clips(draw: st.DrawFn) -> tuple[str, int, list[dict]]:
    """Notes on the grid, inside their bars, in range, never overlapping."""
    meter = draw(st.sampled_from(tokens.METERS))
    length = tokens.bar_ticks(meter)
    bars = draw(st.integers(1, 6))
    notes = []
    for bar in range(bars):
        cursor = 0
        for _ in range(draw(st.integers(0, 6))):
            if cursor >= length:
                break
            pos = draw(st.integers(cursor, length - 1))
            dur = draw(st.integers(1, length - pos))
            pitch = draw(st.integers(tokens.PITCH_LOW, tokens.PITCH_HIGH))
            notes.append({"part": "melody", "pitch": pitch, "start": (bar * length + pos) / tokens.TICKS_PER_BEAT,
                          "duration": dur / tokens.TICKS_PER_BEAT})
            cursor = pos + dur
    return meter, bars, notes


@settings(max_examples=150, deadline=None)
@given(clip=quantised_clips(), tonic=st.integers(0, 11), mode=st.sampled_from(list(tokens.MODES)))
def test_round_trip_is_exact_for_quantised_notes(clip: tuple[str, int, list[dict]], tonic: int, mode: str) -> None:
    meter, bars, notes = clip
    header = tokens.Header(tonic, mode, meter, "moderate", bars)
    sequence = tokens.encode(notes, header)
    assert sequence.count(tokens.BAR) == bars and sequence[-1] == tokens.EOS
    decoded_header, decoded = tokens.decode(sequence)
    assert decoded_header == header
    strip = [(n["part"], n["pitch"], n["start"], n["duration"]) for n in notes]
    assert [(n["part"], n["pitch"], n["start"], n["duration"]) for n in decoded] == strip
    assert all(1 <= n["velocity"] <= 127 for n in decoded)


def test_accents_follow_the_meter() -> None:
    assert tokens.accent_velocity(0, "6/8") > tokens.accent_velocity(18, "6/8") > tokens.accent_velocity(6, "6/8")
    assert tokens.accent_velocity(12, "4/4") > tokens.accent_velocity(6, "4/4") > tokens.accent_velocity(3, "4/4")
