"""Constrained sampling: bar count, scale, a last bar that fills and resolves, continue and vary, determinism.

The constraints must hold whatever the network says, so these run an untrained tiny model and a deliberately
perverse one (it wants to end at once, or to leave the scale).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core.errors import BadInputError
from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
from studio.ml.music import tokens
from studio.ml.music.constraints import Grammar
from studio.ml.music.sample import continue_notes, generate_melody, generate_period, vary_bars


class Biased(MusicTransformer):
    """A tiny model whose logits are pushed towards chosen tokens."""

    def __init__(self, config: MusicTransformerConfig, favour: list[int], weight: float = 50.0) -> None:
        super().__init__(config)
        self.bias = torch.zeros(config.vocab_size)
        self.bias[favour] = weight

    def forward(self, ids: torch.Tensor, past: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits, present = super().forward(ids, past)
        return logits + self.bias, present


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> MusicTransformer:
    torch.manual_seed(0)
    return MusicTransformer(MusicTransformerConfig.tiny()).eval()


def bar_beats(meter: str) -> float:
    return tokens.bar_ticks(meter) / tokens.TICKS_PER_BEAT


def check_clip(notes: list[dict], bars: int, meter: str, tonic: int, mode: str, chromatic: bool) -> None:
    length = bar_beats(meter)
    assert notes, "a clip has notes"
    assert all(n["part"] == "melody" and n["duration"] > 0 for n in notes)
    assert notes[0]["start"] == 0.0, "a loop starts on its first downbeat"
    ends = [n["start"] + n["duration"] for n in notes]
    assert math.isclose(max(ends), bars * length), "exactly the requested bars: the last note ends the clip"
    for n, end in zip(notes, ends, strict=True):  # no note crosses a bar line
        assert math.floor(n["start"] / length + 1e-9) == math.floor((end - 1e-9) / length)
    if not chromatic:
        scale = tokens.scale_pitch_classes(tonic, mode)
        assert all(n["pitch"] % 12 in scale for n in notes)
    last_bar = [n for n in notes if n["start"] >= (bars - 1) * length - 1e-9]
    assert math.isclose(sum(n["duration"] for n in last_bar), length), "the last bar is filled"
    assert notes[-1]["pitch"] % 12 in tokens.tonic_chord_pitch_classes(tonic, mode)
    events = tokens.quantise(notes, meter)
    assert tokens.bar_count(events) == bars
    header = tokens.Header(tonic, mode, meter, "moderate", bars)
    assert tokens.decode(tokens.encode(notes, header))[1] == tokens.events_to_notes(events, meter)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31 - 1),
    tonic=st.integers(0, 11),
    mode=st.sampled_from(list(tokens.MODES)),
    meter=st.sampled_from(tokens.METERS),
    bars=st.integers(1, 6),
    chromatic=st.booleans(),
    temperature=st.sampled_from([0.0, 0.7, 1.3]),
)
def test_any_request_gives_a_well_formed_loop(
    model: MusicTransformer, seed: int, tonic: int, mode: str, meter: str, bars: int, chromatic: bool,
    temperature: float,
) -> None:
    key = f"{tokens.NOTE_NAMES[tonic]} {mode}"
    notes = generate_melody(model, key, mode, meter, 120, bars, seed, temperature=temperature, chromatic=chromatic)
    check_clip(notes, bars, meter, tonic, mode, chromatic)


def test_a_model_that_wants_to_stop_still_writes_every_bar() -> None:
    torch.manual_seed(1)
    eager = Biased(MusicTransformerConfig.tiny(), [tokens.EOS, tokens.BAR]).eval()
    notes = generate_melody(eager, "D", "major", "4/4", 100, 5, seed=3)
    check_clip(notes, 5, "4/4", 2, "major", False)


def test_a_model_that_wants_wrong_notes_is_kept_in_key_unless_chromatic_is_allowed() -> None:
    torch.manual_seed(2)
    wrong = [tokens.pitch_token(p) for p in range(61, 90, 12)]  # C# in C major
    model = Biased(MusicTransformerConfig.tiny(), wrong).eval()
    strict = generate_melody(model, "C", "major", "4/4", 100, 3, seed=5)
    check_clip(strict, 3, "4/4", 0, "major", False)
    free = generate_melody(model, "C", "major", "4/4", 100, 3, seed=5, chromatic=True)
    assert any(n["pitch"] % 12 == 1 for n in free)
    check_clip(free, 3, "4/4", 0, "major", True)  # the ending still resolves


def test_same_seed_same_notes_other_seed_other_notes(model: MusicTransformer) -> None:
    first = generate_melody(model, "A minor", "minor", "6/8", 120, 4, seed=11)
    assert generate_melody(model, "A minor", "minor", "6/8", 120, 4, seed=11) == first
    assert generate_melody(model, "A minor", "minor", "6/8", 120, 4, seed=12) != first


def test_clips_longer_than_the_context_slide_the_window(model: MusicTransformer) -> None:
    assert model.config.block_size == 64
    notes = generate_melody(model, "G", "mixolydian", "12/8", 140, 12, seed=4)
    check_clip(notes, 12, "12/8", 7, "mixolydian", False)


def test_continue_keeps_the_clip_and_adds_bars(model: MusicTransformer) -> None:
    clip = generate_melody(model, "E minor", "minor", "3/4", 90, 4, seed=1)
    drums = [{"part": "drums", "pitch": 36, "start": 0.0, "duration": 0.5, "velocity": 100}]
    longer = continue_notes(model, clip + drums, 3, "E minor", "minor", "3/4", 90, seed=2)
    assert drums[0] in longer
    melody = [n for n in longer if n["part"] == "melody"]
    assert melody[: len(clip)] == clip
    assert all(n["start"] >= 4 * 3.0 for n in melody[len(clip) :])
    check_clip(melody, 7, "3/4", 4, "minor", False)


def test_continue_respects_a_clip_that_ends_in_silence(model: MusicTransformer) -> None:
    clip = [{"part": "melody", "pitch": 60, "start": 0.0, "duration": 1.0, "velocity": 90}]
    longer = continue_notes(model, clip, 2, "C", "major", "4/4", 120, seed=0, clip_bars=2)
    assert all(n["start"] >= 8.0 for n in longer[1:])
    check_clip(longer, 4, "4/4", 0, "major", False)


def test_vary_regenerates_only_the_chosen_bars(model: MusicTransformer) -> None:
    clip = generate_melody(model, "F", "major", "4/4", 110, 6, seed=8)
    bass = [{"part": "bass", "pitch": 41, "start": 4.0 * b, "duration": 4.0, "velocity": 80} for b in range(6)]
    varied = vary_bars(model, clip + bass, 2, 3, "F", "major", "4/4", 110, seed=9)
    assert [n for n in varied if n["part"] == "bass"] == bass
    melody = [n for n in varied if n["part"] == "melody"]
    outside = [n for n in clip if n["start"] < 4.0 or n["start"] >= 12.0]
    assert [n for n in melody if n["start"] < 4.0 or n["start"] >= 12.0] == outside
    inside = [n for n in melody if 4.0 <= n["start"] < 12.0]
    assert all(n["start"] + n["duration"] <= 12.0 + 1e-9 for n in inside)
    assert inside != [n for n in clip if 4.0 <= n["start"] < 12.0]


def test_varying_the_last_bars_keeps_the_resolving_ending(model: MusicTransformer) -> None:
    clip = generate_melody(model, "B minor", "minor", "2/4", 100, 4, seed=3)
    varied = vary_bars(model, clip, 3, 4, "B minor", "minor", "2/4", 100, seed=4)
    check_clip(varied, 4, "2/4", 11, "minor", False)


def bar_notes(notes: list[dict], bar: int, meter: str) -> list[tuple[int, float, float]]:
    """(pitch, position in the bar, duration) of the notes starting in ``bar`` (0-based)."""
    length = bar_beats(meter)
    return [(n["pitch"], round(n["start"] - bar * length, 6), round(n["duration"], 6))
            for n in notes if bar * length - 1e-9 <= n["start"] < (bar + 1) * length - 1e-9]


@pytest.mark.parametrize(("meter", "bars"), [("4/4", 8), ("3/4", 8), ("6/8", 4), ("4/4", 12)])
def test_a_period_restates_its_opening_and_still_resolves(model: MusicTransformer, meter: str, bars: int) -> None:
    clip = generate_period(model, "D", "dorian", meter, 120, bars, seed=5)
    check_clip(clip, bars, meter, 2, "dorian", False)
    half, restated = bars // 2, bars // 4
    for bar in range(restated):  # the answer begins as the opening did
        assert bar_notes(clip, half + bar, meter) == bar_notes(clip, bar, meter)
    assert clip == generate_period(model, "D", "dorian", meter, 120, bars, seed=5)


def test_short_or_odd_clips_are_written_through(model: MusicTransformer) -> None:
    assert generate_period(model, "C", "major", "4/4", 120, 3, seed=2) == \
        generate_melody(model, "C", "major", "4/4", 120, 3, seed=2)


def test_bad_requests_are_refused(model: MusicTransformer) -> None:
    clip = generate_melody(model, "C", "major", "4/4", 120, 2, seed=0)
    with pytest.raises(BadInputError, match="bars"):
        vary_bars(model, clip, 2, 5, "C", "major", "4/4", 120, seed=0)
    with pytest.raises(BadInputError, match="bars"):
        generate_melody(model, "C", "major", "4/4", 120, 0, seed=0)
    with pytest.raises(BadInputError, match="top-p"):
        generate_melody(model, "C", "major", "4/4", 120, 2, seed=0, top_p=0.0)
    with pytest.raises(BadInputError, match="melody"):
        continue_notes(model, [], 2, "C", "major", "4/4", 120, seed=0)


def test_cancel_stops_sampling_and_progress_is_reported(model: MusicTransformer) -> None:
    class Stop(Exception):
        pass

    calls = {"n": 0}

    def cancel() -> None:
        calls["n"] += 1
        if calls["n"] > 20:
            raise Stop

    with pytest.raises(Stop):
        generate_melody(model, "C", "major", "4/4", 120, 16, seed=0, cancel=cancel)
    seen: list[float] = []
    generate_melody(model, "C", "major", "4/4", 120, 4, seed=0, on_progress=lambda f, _m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 4


@settings(max_examples=60, deadline=None)
@given(
    walk_seed=st.integers(0, 2**32 - 1),
    meter=st.sampled_from(tokens.METERS),
    bars=st.integers(1, 4),
    mode=st.sampled_from(list(tokens.MODES)),
    chromatic=st.booleans(),
)
def test_the_grammar_never_dead_ends(walk_seed: int, meter: str, bars: int, mode: str, chromatic: bool) -> None:
    """Any walk through allowed tokens ends with EOS after exactly ``bars`` bars, the last bar filled."""
    rng = np.random.default_rng(walk_seed)
    header = tokens.Header(3, mode, meter, "fast", bars)
    grammar = Grammar(header, end_bar=bars, chromatic=chromatic)
    walk: list[int] = []
    while not grammar.done:
        allowed = np.flatnonzero(grammar.allowed())
        assert len(allowed) > 0
        token = int(rng.choice(allowed))
        grammar.advance(token)
        walk.append(token)
        assert len(walk) < 4 * bars * tokens.MAX_BAR_TICKS
    assert walk[-1] == tokens.EOS and walk.count(tokens.BAR) == bars
    notes = tokens.events_to_notes(tokens.decode_events(walk)[0], meter)
    check_clip(notes, bars, meter, 3, mode, chromatic)
    with pytest.raises(ValueError):
        grammar.advance(tokens.BAR)
