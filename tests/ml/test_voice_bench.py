"""``studio bench voice``: the real-time factor of each voice and the spot's targets, judged from what the jobs
return (the jobs here are stand-ins: a tone voice, and a spot whose mix is noise at a given loudness)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec
from studio.core.voice import VoiceRequest
from studio.ml.bench.voice import SPOT_LENGTH, bench_voice, markdown, reference_lufs
from studio.ml.voice.speak import speak
from tests.ml.voice_fixtures import ToneVoice

RATE = 16000
MIXES = {"online": {"lufs": -16.2, "voice_over_bed_db": 12.5}, "broadcast": {"lufs": -22.2, "voice_over_bed_db": 7.0}}


def noise_at(lufs: float) -> np.ndarray:
    audio = np.random.default_rng(0).normal(0, 0.1, (3 * RATE, 2)).astype(np.float32)
    return audio * np.float32(10 ** ((lufs - reference_lufs(audio, RATE)) / 20))


MIXES_AUDIO = {preset: noise_at(mix["lufs"]) for preset, mix in MIXES.items()}


def run(spec: JobSpec) -> object:
    if spec.kind == "voice.speak":
        return speak(ToneVoice(), VoiceRequest.from_spec(spec), lambda f, m: None, lambda: None)
    preset = spec.params["loudness"]
    recipe = {**MIXES[preset], "true_peak_dbtp": -1.0, "duck_db": -14.0, "music": {"model": "rules"}}
    return SimpleNamespace(mix=MIXES_AUDIO[preset], rate=RATE, recipe=recipe)


def test_each_voice_and_each_preset_is_judged_against_its_target() -> None:
    report = bench_voice(run, ["tone"], [], 1, "cpu", 2)
    (voice,) = report["results"]
    assert voice["audio_s"] > 10 and voice["realtime_factor"] >= 10 and voice["target_10x_met"]
    spots = {row["preset"]: row for row in report["spots"]}
    assert spots["online"]["lufs_error_lu"] == pytest.approx(-0.2, abs=0.01) and spots["online"]["loudness_target_met"]
    assert spots["broadcast"]["lufs_error_lu"] == pytest.approx(0.8, abs=0.01)
    assert not spots["broadcast"]["loudness_target_met"]
    assert spots["online"]["margin_target_met"] and not spots["broadcast"]["margin_target_met"]
    table = markdown(report)
    assert f"## {SPOT_LENGTH} s ad spot" in table and "+0.80 LU (missed)" in table and "7.0 dB (missed)" in table


def test_no_voice_or_an_unknown_one_is_said() -> None:
    with pytest.raises(BadInputError, match="No voice is installed"):
        bench_voice(run, [], [], 1, "cpu", 2)
    with pytest.raises(BadInputError, match="no voice named piper-jane"):
        bench_voice(run, ["tone"], ["piper-jane"], 1, "cpu", 2)
