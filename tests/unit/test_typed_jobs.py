"""Typed jobs: requests round-trip through the plain dicts of the recipe and the JobSpec, refuse what is not theirs,
and training events round-trip through the JSON lines of ``studio train --events``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.core.errors import BadInputError
from studio.core.music_request import MusicRequest
from studio.core.spot import SpotRequest
from studio.core.training_events import (
    TrainingError,
    TrainingFinished,
    TrainingInfo,
    TrainingProgress,
    event_from_dict,
    event_to_dict,
)
from studio.core.voice import VoiceRequest

music_requests = st.builds(
    MusicRequest,
    style=st.sampled_from(["chiptune-adventure", "calm-village"]),
    key=st.none() | st.sampled_from(["A minor", "F# major"]),
    bpm=st.none() | st.floats(20.0, 300.0),
    meter=st.none() | st.sampled_from(["4/4", "3/4", "6/8"]),
    bars=st.none() | st.integers(1, 64),
    temperature=st.floats(0.0, 2.0),
    top_p=st.floats(0.01, 1.0),
    arrange_seed=st.none() | st.integers(0, 2**31),
    seed=st.integers(0, 2**31),
)


voice_requests = st.builds(
    VoiceRequest, text=st.text(max_size=200), speed=st.floats(0.5, 2.0), pitch=st.floats(-6.0, 6.0),
    line_pause=st.floats(0.0, 3.0), sentence_pause=st.floats(0.0, 2.0), skip_unsayable=st.booleans(),
    seed=st.integers(0, 2**31))
spot_requests = st.builds(
    SpotRequest, voice=voice_requests, voice_model=st.sampled_from(["", "piper-joe", "flite-slt"]),
    music=music_requests, music_file=st.sampled_from(["", "clip.wav"]), loop_music=st.booleans(),
    length=st.sampled_from([15, 30]), loudness=st.sampled_from(["online", "broadcast"]),
    duck_db=st.floats(-30.0, -6.0), lead_in=st.floats(0.0, 3.0), seed=st.integers(0, 2**31))


@given(st.one_of(voice_requests, spot_requests))
def test_voice_and_spot_requests_round_trip(request: VoiceRequest | SpotRequest) -> None:
    recipe = json.loads(json.dumps(request.to_dict()))
    assert type(request).from_dict(recipe) == request
    assert type(request).from_spec(request.spec("x")) == request


def test_a_spot_is_fifteen_or_thirty_seconds_and_its_parts_are_checked() -> None:
    with pytest.raises(BadInputError, match="15 or 30 seconds"):
        SpotRequest(length=20)
    with pytest.raises(BadInputError, match=r"speed must be a number from 0\.5 to 2"):
        SpotRequest.from_dict({"voice": {"text": "hi", "speed": 9}})
    with pytest.raises(BadInputError, match="loudness must be one of online, broadcast"):
        SpotRequest.from_dict({"loudness": "loud"})


@given(music_requests)
def test_a_request_round_trips_through_its_recipe_and_its_spec(request: MusicRequest) -> None:
    recipe = json.loads(json.dumps(request.to_dict()))  # what a file keeps
    assert MusicRequest.from_dict(recipe) == request
    spec = request.spec("music-transformer")
    assert spec.kind == "music.generate" and spec.seed == request.seed and spec.model == "music-transformer"
    assert "seed" not in spec.params
    assert MusicRequest.from_spec(spec) == request


@pytest.mark.parametrize(("data", "message"), [
    ({"bpm": "fast"}, "bpm must be a number"),
    ({"bpm": 900}, "out of range"),
    ({"temperature": 3.5}, "temperature must be a number from 0 to 2"),
    ({"renderer": "tape"}, "renderer must be one of synth, soundfont"),
    ({"tempo": 120}, "has no field 'tempo'"),
    ({"seed": True}, "seed must be a whole number"),
    ([1, 2], "must be a mapping"),
])
def test_a_recipe_that_is_not_a_request_is_refused_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        MusicRequest.from_dict(data)


def test_training_events_round_trip_and_are_checked() -> None:
    events = [TrainingProgress(3, 10, {"g": 0.5}, 12.0, "/tmp/s.png"), TrainingInfo("fine-tuning x"),
              TrainingError("out of memory"), TrainingFinished("my-gan", {"fid": 1.5}, "card.md", {}, {"extra": 1})]
    for event in events:
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event
    odd = event_from_dict({"step": "x", "total": 4, "loss": {"g": "nan", "d": 0.25}, "eta_s": None})
    assert odd == TrainingProgress(0, 4, {"d": 0.25}, None, "")
    assert event_from_dict({"event": "something-new", "message": "hi"}) == TrainingInfo("hi")
