"""Typed jobs: requests round-trip through the plain dicts of the recipe and the JobSpec, refuse what is not theirs,
and training events round-trip through the JSON lines of ``studio train --events``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.core.errors import BadInputError
from studio.core.music_request import MusicRequest
from studio.core.training_events import (
    TrainingError,
    TrainingFinished,
    TrainingInfo,
    TrainingProgress,
    event_from_dict,
    event_to_dict,
)

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
