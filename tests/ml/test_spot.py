"""The ad spot: music fitted in whole bars, the bed ducking under the voice (side-chain) with fades, the loudness
presets within ±0.5 LU, the voice at least 8 dB above the bed while it speaks, the project file that reopens the spot,
and the bad cases (a voice-over too long for the spot, music shorter than it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.core import paths
from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.formats.audio import read_audio, write_audio
from studio.core.music_request import MusicRequest
from studio.core.settings import Settings
from studio.core.spot import LOUDNESS_PRESETS, SpotRequest, export_spot, fit_bars, read_project
from studio.core.voice import VoiceRequest
from studio.ml.audio.spot_mix import (
    FRAME_S,
    MIN_VOICE_OVER_BED_DB,
    duck_gain,
    frame_db,
    loudness_lufs,
    mix_spot,
    speaking,
    voice_over_bed_db,
)
from studio.ml.resources import Resources
from studio.ml.tasks import all_tasks
from studio.ml.tasks.runner import run_task
from studio.ml.tasks.spot import music_bed
from tests.ml.voice_fixtures import ToneVoice

RATE = 44100


def speech_like(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Words (noise bursts of 0.2-0.6 s, shaped like syllables) and pauses, from 0.5 s to ``seconds`` - 2 s."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * rate), np.float32)
    t = 0.5
    while t < seconds - 2.0:
        length = rng.uniform(0.2, 0.6)
        n = round(length * rate)
        start = round(t * rate)
        out[start:start + n] = rng.normal(0, 0.1, n) * np.hanning(n)
        t += length + rng.uniform(0.05, 0.4)
    return out


def music_like(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
    return np.stack([left, np.roll(left, 50)], axis=1).astype(np.float32)


def test_music_is_fitted_to_the_spot_in_whole_bars() -> None:
    assert fit_bars(15, 120, 4) == (8, 128.0)  # 7.5 bars at 120 bpm: 8 bars at 128 bpm fill 15 s exactly
    assert fit_bars(30, 120, 4) == (15, 120.0)
    bars, bpm = fit_bars(30, 97, 3)
    assert bars * 3 * 60 / bpm == pytest.approx(30) and abs(bpm / 97 - 1) < 0.05


def test_the_bed_ducks_under_the_voice_and_comes_back_between_lines() -> None:
    voice = np.zeros(10 * RATE, np.float32)
    voice[2 * RATE: 4 * RATE] = np.random.default_rng(0).normal(0, 0.1, 2 * RATE)  # speaks from 2 s to 4 s
    gain_db = 20 * np.log10(duck_gain(voice, RATE, -14.0, len(voice)))
    assert gain_db[: int(1.5 * RATE)].max() == pytest.approx(0.0, abs=1e-6)  # untouched well before
    assert gain_db[int(2.2 * RATE): int(3.9 * RATE)].max() == pytest.approx(-14.0, abs=0.01)  # down while it speaks
    assert gain_db[int(1.98 * RATE)] < -10.0  # already down when the first word starts (lookahead)
    assert gain_db[int(5.5 * RATE):].min() == pytest.approx(0.0, abs=1e-6)  # back up after the release
    assert np.all(np.abs(np.diff(gain_db)) < 0.05)  # ramps, not steps (no clicks)
    active = speaking(voice, RATE)
    assert active[round(2.5 / FRAME_S)] and not active[round(1.0 / FRAME_S)]


@pytest.mark.parametrize("preset", sorted(LOUDNESS_PRESETS))
def test_a_spot_meets_its_loudness_preset_and_the_voice_stands_clear_of_the_bed(preset: str) -> None:
    request = SpotRequest(voice=VoiceRequest(text="x"), length=30, loudness=preset)
    voice, bed = speech_like(30), music_like(30)
    stems, measured = mix_spot(voice, bed, RATE, request)
    mix = stems["voice"] + stems["music"]
    assert loudness_lufs(mix, RATE) == pytest.approx(LOUDNESS_PRESETS[preset], abs=0.5)
    assert measured["lufs"] == pytest.approx(LOUDNESS_PRESETS[preset], abs=0.5)
    assert measured["true_peak_dbtp"] <= -1.0 + 0.1
    assert voice_over_bed_db(stems["voice"][:, 0], stems["music"], RATE) >= MIN_VOICE_OVER_BED_DB
    assert measured["voice_over_bed_db"] >= MIN_VOICE_OVER_BED_DB
    tail = frame_db(stems["music"][-int(0.05 * RATE):], RATE)
    assert tail.max() < frame_db(stems["music"][int(0.2 * RATE): int(0.4 * RATE)], RATE).mean() - 20  # faded out


def test_a_shallow_duck_is_deepened_until_the_voice_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.ml.audio import spot_mix

    monkeypatch.setattr(spot_mix, "BED_BELOW_VOICE_DB", 0.0)  # the bed as loud as the voice before ducking
    request = SpotRequest(voice=VoiceRequest(text="x"), length=15, duck_db=-6.0)
    _, measured = mix_spot(speech_like(15), music_like(15), RATE, request)
    assert measured["duck_db"] < -6.0 and measured["voice_over_bed_db"] >= MIN_VOICE_OVER_BED_DB


def _resources() -> Resources:
    return Resources.from_settings(Settings(device="cpu", cpu_threads=2))


def test_music_shorter_than_the_spot_is_refused_or_looped_on_request(studio_home: Path, tmp_path: Path) -> None:
    clip = write_audio(tmp_path / "short.wav", music_like(8.0), RATE)
    request = SpotRequest(voice=VoiceRequest(text="Buy now."), music_file=str(clip), length=15)
    ctx = JobContext(request.spec(), lambda e: None, None, "cpu", _resources())
    with pytest.raises(BadInputError, match=r"the music lasts 8\.0 s, shorter than the 15 s spot .* voice-over "
                                            r"alone lasts 6\.0 s.*loop the music"):
        music_bed(request, 6.0, ctx)
    bed, recipe = music_bed(SpotRequest(voice=request.voice, music_file=str(clip), loop_music=True, length=15),
                            6.0, ctx)
    assert bed.shape == (15 * RATE, 2) and recipe["file"] == "short.wav"
    assert np.allclose(bed[8 * RATE: 9 * RATE], read_audio(clip)[0][: RATE], atol=1e-3)  # the clip again


def test_a_voice_over_too_long_for_the_spot_says_what_to_do(studio_home: Path, monkeypatch) -> None:
    from studio.ml.tasks import spot

    monkeypatch.setattr(spot, "load_voice", lambda ctx, name: ToneVoice())
    request = SpotRequest(voice=VoiceRequest(text="A long line of copy that keeps going. " * 8), length=15)
    spec = request.spec()
    with pytest.raises(BadInputError, match=r"a 15 s spot has room for 13\.5 s of it .* choose 30 s"):
        run_task(all_tasks()["spot.render"], spec, JobContext(spec, lambda e: None, None, "cpu", _resources()))


def test_a_spot_renders_exports_and_reopens(studio_home: Path, monkeypatch, tmp_path: Path) -> None:
    from studio.ml.tasks import spot

    monkeypatch.setattr(spot, "load_voice", lambda ctx, name: ToneVoice())
    request = SpotRequest(voice=VoiceRequest(text="Fresh coffee every week.\nTry it today!", seed=2),
                          music=MusicRequest(style="upbeat-jingle", seed=4), music_model="rules", length=15, seed=2)
    spec = request.spec()
    result = run_task(all_tasks()["spot.render"], spec, JobContext(spec, lambda e: None, None, "cpu", _resources()))
    assert result.mix.shape == (15 * RATE, 2) and result.rate == RATE
    assert result.recipe["music"]["bars"] * 4 * 60 / result.recipe["music"]["bpm"] == pytest.approx(15)
    assert [t.number for t in result.lines] == [1, 2] and result.lines[0].start == pytest.approx(0.5, abs=0.03)
    assert abs(result.recipe["lufs"] - request.target_lufs) <= 0.5 and result.recipe["voice_over_bed_db"] >= 8
    written = export_spot(paths.default_output_dir() / "spot.flac", result, request)
    assert sorted(p.name for p in written) == ["spot.flac", "spot.flac.json", "spot.spot", "spot.txt"]
    assert (paths.default_output_dir() / "spot.txt").read_text() == "Fresh coffee every week.\nTry it today!\n"
    project = read_project(paths.default_output_dir() / "spot.spot")
    assert project.request == request and project.audio == paths.default_output_dir() / "spot.flac"
    assert [t.number for t in project.lines] == [1, 2]
    assert project.lines[1].start == pytest.approx(result.lines[1].start, abs=1e-3)
    assert project.recipe["lufs"] == result.recipe["lufs"]
    audio, rate = read_audio(project.audio)
    assert rate == RATE and audio.shape == (15 * RATE, 2)


def test_a_project_file_that_is_not_a_spot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.spot"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(BadInputError, match="not a Studio spot project"):
        read_project(path)
    path.write_text('{"format": "studio-spot", "version": 1, "request": {"length": 20}}')
    with pytest.raises(BadInputError, match="15 or 30 seconds"):
        read_project(path)
