"""Voice-over: how a script is read (lines, sentences, pieces), what a voice cannot say, each line's timing, pitch
and pace, cancelling a long script, the seeded Piper graph, and the bad cases (empty script, missing or damaged
voice, no voice installed)."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from studio.core import paths
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.context import JobContext
from studio.core.errors import BadInputError, ModelFileError
from studio.core.jobs import EventType, JobEvent
from studio.core.settings import Settings
from studio.core.voice import VoiceRequest, check_script, script_pieces, unsayable
from studio.ml.resources import Resources
from studio.ml.tasks import all_tasks
from studio.ml.tasks.runner import run_task
from studio.ml.voice.piper import SEED_INPUT, seedable
from studio.ml.voice.speak import OUTPUT_RATE, speak
from tests.ml.voice_fixtures import ToneVoice, install_fake_flite, install_tiny_piper, tiny_piper_graph

HAS_PHONEMISER = importlib.util.find_spec("piper") is not None


def _speak(text: str, voice: ToneVoice | None = None, **fields):
    steps: list[tuple[float, str]] = []
    speech = speak(voice or ToneVoice(), VoiceRequest(text=text, **fields), lambda f, m: steps.append((f, m)),
                   lambda: None, workers=2)
    return speech, steps


def test_a_script_is_read_line_by_line_and_sentence_by_sentence() -> None:
    pieces = script_pieces("Hello there. How are you?\n\n  Buy now!  \n", line_pause=0.5, sentence_pause=0.2)
    assert [(p.line, p.text, p.pause_after) for p in pieces] == [
        (0, "Hello there.", 0.2), (0, "How are you?", 0.5), (1, "Buy now!", 0.0)]


def test_every_line_is_timed_where_it_is_heard() -> None:
    speech, steps = _speak("One line here.\nA second, longer line here.\nThree.", line_pause=0.5)
    assert [t.number for t in speech.lines] == [1, 2, 3]
    starts = [t.start for t in speech.lines]
    ends = [t.end for t in speech.lines]
    assert starts[0] == 0.0 and all(a < b for a, b in itertools.pairwise(starts))
    for before, after in itertools.pairwise(speech.lines):
        assert after.start - before.end == pytest.approx(0.5, abs=2 / OUTPUT_RATE)  # the pause between lines
    for timing in speech.lines:  # sound inside each line's span, silence in the pauses
        inside = speech.audio[int(timing.start * OUTPUT_RATE) + 400: int(timing.end * OUTPUT_RATE) - 400]
        assert np.abs(inside).max() > 0.01
    gap = speech.audio[int(ends[0] * OUTPUT_RATE) + 100: int(starts[1] * OUTPUT_RATE) - 100]
    assert np.abs(gap).max() == 0.0
    assert speech.duration == pytest.approx(ends[-1], abs=1e-3)
    assert steps[-1][0] == pytest.approx(1.0) and [f for f, _ in steps] == sorted(f for f, _ in steps)


def test_speed_and_pitch() -> None:
    slow, _ = _speak("A tone to measure.", speed=1.0)
    fast, _ = _speak("A tone to measure.", speed=1.5)
    assert fast.duration == pytest.approx(slow.duration / 1.5, rel=0.03)
    up, _ = _speak("A tone to measure.", pitch=5.0)
    assert up.duration == pytest.approx(slow.duration, rel=0.03)  # the pace stays

    def frequency(audio: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        return float(np.argmax(spectrum) * OUTPUT_RATE / len(audio))

    assert frequency(slow.audio) == pytest.approx(200, rel=0.02)
    assert frequency(up.audio) == pytest.approx(200 * 2 ** (5 / 12), rel=0.02)  # five semitones up


@pytest.mark.parametrize(("text", "message"), [
    ("", "the script is empty"),
    ("   \n\t\n", "the script is empty"),
    ("Launch day 🚀 is here", "cannot say 1 character"),
    ("Ürün 日本 sale", "cannot say 2 character"),
    ("x" * 100_001, "Studio speaks up to 100,000"),
])
def test_bad_scripts_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        check_script(text, skip_unsayable=False)


def test_what_cannot_be_said_is_located_or_left_out_on_request() -> None:
    found = unsayable("Fine.\nLaunch 🚀 now ™")
    assert [(u.char, u.line, u.column) for u in found] == [("🚀", 2, 8), ("™", 2, 14)]
    with pytest.raises(BadInputError, match=r"line 2, column 8"):
        check_script("Fine.\nLaunch 🚀 now ™", skip_unsayable=False)
    text, note = check_script("Fine.\nLaunch 🚀 now ™", skip_unsayable=True)
    assert "🚀" not in text and "Left out" in note and text.count("\n") == 1
    assert check_script("Café crème, 20% off: $5 — naïve!", skip_unsayable=False)[1] == ""


def test_a_20000_character_script_is_split_reports_progress_and_cancels_between_pieces() -> None:
    script = "\n".join(f"Line {i}: fresh coffee, delivered to your door, every single week, without fail."
                       for i in range(260))
    assert len(script) > 20_000
    voice = ToneVoice()
    token = CancelToken()
    steps: list[float] = []

    def progress(fraction: float, message: str) -> None:
        steps.append(fraction)
        if len(steps) == 10:
            token.cancel()

    with pytest.raises(JobCancelled):
        speak(voice, VoiceRequest(text=script), progress, token.check, workers=2)
    assert len(steps) == 10 and len(voice.calls) < 40  # stopped within a couple of pieces, not at the end


def test_the_seeded_piper_graph_is_reproducible_and_normal(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = seedable(tiny_piper_graph())
    assert not any(n.op_type == "RandomNormalLike" for n in model.graph.node)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.ones((1, 400), np.int64)

    def run(seed: float, noise: float = 1.0) -> np.ndarray:
        feed = {"input": ids, "input_lengths": np.array([400]), SEED_INPUT: np.array([seed], np.float64),
                "scales": np.array([noise, 1.0, 0.8], np.float32)}
        return session.run(None, feed)[0].reshape(-1)

    assert np.array_equal(run(3), run(3)) and not np.array_equal(run(3), run(4))
    noise = (run(3) - run(3, noise=0.0)) / 0.1
    assert abs(noise.mean()) < 0.02 and noise.std() == pytest.approx(1.0, abs=0.03)


def _resources() -> Resources:
    return Resources.from_settings(Settings(device="cpu", cpu_threads=2))


def _run(resources: Resources, request: VoiceRequest, model: str) -> tuple[object, list[JobEvent]]:
    events: list[JobEvent] = []
    spec = request.spec(model)
    return run_task(all_tasks()["voice.speak"], spec, JobContext(spec, events.append, None, "cpu", resources)), events


def test_no_voice_installed_says_how_to_get_one(studio_home: Path) -> None:
    with pytest.raises(ModelFileError, match=r"No voice is installed: run set-up"):
        _run(_resources(), VoiceRequest(text="Hello."), "")


@pytest.mark.skipif(not HAS_PHONEMISER, reason="piper-tts (the phonemiser) is not installed")
def test_a_piper_voice_speaks_through_the_runtime_loader(studio_home: Path) -> None:
    install_tiny_piper(paths.user_models_dir() / "voice")
    resources = _resources()
    speech, events = _run(resources, VoiceRequest(text="Hello there.\nBuy now!", seed=5), "tiny-piper")
    again, _ = _run(resources, VoiceRequest(text="Hello there.\nBuy now!", seed=5), "tiny-piper")
    assert np.array_equal(speech.audio, again.audio)  # same seed, same voice-over
    assert len(speech.lines) == 2 and speech.recipe["model"] == "tiny-piper" and speech.recipe["seed"] == 5
    held = resources.cache.keys()
    assert any(k.startswith("voice:tiny-piper") for k in held)
    assert events[-1].type is EventType.PROGRESS


def test_a_damaged_or_missing_voice_file_is_named(studio_home: Path) -> None:
    weights = install_tiny_piper(paths.user_models_dir() / "voice")
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelFileError, match=r"is damaged .* run set-up again"):
        _run(_resources(), VoiceRequest(text="Hello."), "tiny-piper")
    weights.unlink()
    with pytest.raises(ModelFileError, match=r"the voice file tiny-piper\.onnx of tiny-piper is missing: run set-up"):
        _run(_resources(), VoiceRequest(text="Hello."), "tiny-piper")


def test_a_flite_voice_speaks_through_the_runtime_loader(studio_home: Path) -> None:
    program = install_fake_flite(paths.user_models_dir() / "voice")
    resources = _resources()
    speech, _ = _run(resources, VoiceRequest(text="Hello there.\nBuy now!", line_pause=0.5), "fake-flite")
    assert speech.recipe["engine"] == "flite" and [t.text for t in speech.lines] == ["Hello there.", "Buy now!"]
    assert speech.lines[0].end - speech.lines[0].start == pytest.approx(12 * 0.05, abs=0.05)  # 12 characters
    slower, _ = _run(resources, VoiceRequest(text="Hello there.", speed=0.5), "fake-flite")
    assert slower.duration == pytest.approx(2 * 12 * 0.05, abs=0.05)  # the speed reaches the program
    held = resources.cache.keys()
    assert any(k.startswith("voice:fake-flite") for k in held)
    with pytest.raises(BadInputError, match=r"fake-flite could not speak 'crash now.*segmentation fault"):
        _run(resources, VoiceRequest(text="crash now"), "fake-flite")
    program.write_text(program.read_text() + "\n# changed\n")
    with pytest.raises(ModelFileError, match=r"flite of the voice fake-flite is damaged .* run set-up again"):
        _run(_resources(), VoiceRequest(text="Hello."), "fake-flite")
