"""The music tasks through run_in_console / a JobContext: reproducibility, payload, fallbacks, exports, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from studio.cli import main
from studio.cli.console import run_in_console
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.context import JobContext
from studio.core.errors import BadInputError, ModelFileError
from studio.core.formats.audio import read_audio, read_audio_recipe
from studio.core.formats.midi import read_midi
from studio.core.jobs import EventType, JobSpec
from studio.core.music_export import export_audio, export_midi, export_stems
from studio.core.music_theory import clip_samples, parse_meter
from studio.ml.audio import soundfont
from studio.ml.tasks import all_tasks
from studio.ml.tasks.music import RULES_CHOSEN, RULES_FALLBACK

PARAMS = {"style": "chiptune", "key": "A minor", "bpm": 150, "bars": 2}


@pytest.fixture(autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def no_bundled_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("STUDIO_BUNDLED_MODELS", str(empty))


def _run(kind: str = "music.generate", params: dict | None = None, seed: int = 3, model: str = "rules") -> dict:
    return run_in_console(JobSpec(kind, params or PARAMS, seed=seed, model=model), device="cpu", quiet=True)


@pytest.fixture(scope="module")
def clip() -> dict:
    torch.set_num_threads(1)
    return _run()


def test_payload_follows_the_contract(clip: dict) -> None:
    assert set(clip) >= {"rate", "mix", "stems", "notes", "bpm", "bars", "meter", "key", "recipe"}
    expected = clip_samples(2, parse_meter("4/4"), 150, 44100)
    assert clip["rate"] == 44100 and clip["mix"].shape == (expected, 2) and clip["mix"].dtype == np.float32
    assert set(clip["stems"]) == {"melody", "chords", "bass", "drums"}
    assert all(s.shape == (expected, 2) and s.dtype == np.float32 for s in clip["stems"].values())
    assert np.allclose(sum(clip["stems"].values()), clip["mix"], atol=1e-4)
    assert (clip["bpm"], clip["bars"], clip["meter"], clip["key"]) == (150.0, 2, "4/4", "A minor")
    note = clip["notes"][0]
    assert set(note) == {"part", "pitch", "start", "duration", "velocity"}
    recipe = clip["recipe"]
    assert recipe["melody_source"] == RULES_CHOSEN and recipe["seed"] == 3
    assert (recipe["style"], recipe["key"], recipe["bpm"], recipe["bars"]) == ("chiptune-adventure", "A minor",
                                                                               150.0, 2)
    assert recipe["lufs"] == pytest.approx(-14.0, abs=0.5)


def test_same_seed_gives_identical_audio_and_another_seed_does_not(clip: dict) -> None:
    again = _run()
    assert np.array_equal(again["mix"], clip["mix"]) and again["notes"] == clip["notes"]
    assert not np.array_equal(_run(seed=4)["mix"], clip["mix"])


def test_without_a_music_model_the_rules_compose_and_the_recipe_says_so(no_bundled_models: None) -> None:
    result = _run(model="")
    assert result["recipe"]["melody_source"] == RULES_FALLBACK == "rules (no music model installed)"
    assert result["recipe"]["model"] == "" and result["notes"]


def test_a_named_model_that_is_not_installed_is_an_error(no_bundled_models: None) -> None:
    with pytest.raises(ModelFileError, match="no model named 'my-tune-model'"):
        _run(model="my-tune-model")


@pytest.mark.parametrize(
    ("change", "message"),
    [({"bpm": 0}, "tempo 0 bpm"), ({"bpm": 10000}, "out of range"), ({"bars": 0}, "0 bars"),
     ({"key": "H minor"}, "unknown key"), ({"meter": "4/3"}, "meter"), ({"style": "polka"}, "not a known style")],
)
def test_bad_input_is_refused_with_a_clear_message(change: dict, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        _run(params={**PARAMS, **change})


def test_progress_and_cancel() -> None:
    events = []
    spec = JobSpec("music.generate", PARAMS, seed=1, model="rules")
    all_tasks()["music.generate"](spec, JobContext(spec, events.append))
    fractions = [e.fraction for e in events if e.type is EventType.PROGRESS]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("rendering" in e.message for e in events)
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        all_tasks()["music.generate"](spec, JobContext(spec, events.append, token))


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"])
def test_audio_exports_round_trip(clip: dict, tmp_path: Path, ext: str) -> None:
    path = export_audio(tmp_path / f"clip{ext}", clip)
    audio, rate = read_audio(path)
    assert rate == 44100 and audio.shape[1] == 2
    assert read_audio_recipe(path)["seed"] == 3
    if ext == ".ogg":  # lossy: same length (give or take codec padding), same waveform shape
        n = min(len(audio), len(clip["mix"]))
        assert abs(len(audio) - len(clip["mix"])) < 2048
        assert np.corrcoef(audio[:n, 0], clip["mix"][:n, 0])[0, 1] > 0.95
    else:  # 16-bit PCM: exact length, within one quantisation step
        assert audio.shape == clip["mix"].shape
        assert np.abs(audio - clip["mix"]).max() <= 1.5 / 32768
    assert sf.info(str(path)).samplerate == 44100


def test_stems_export_one_file_per_part(clip: dict, tmp_path: Path) -> None:
    paths = export_stems(tmp_path / "stems", clip, write_metadata=False)
    assert sorted(p.name for p in paths) == ["bass.wav", "chords.wav", "drums.wav", "melody.wav"]
    assert read_audio_recipe(paths[0]) is None  # metadata off: nothing written


def test_midi_export_parses_back_to_the_same_notes(clip: dict, tmp_path: Path) -> None:
    back = read_midi(export_midi(tmp_path / "clip.mid", clip))

    def norm(notes: list[dict]) -> list[tuple]:
        return sorted((n["part"], n["pitch"], round(n["start"] * 480), round(n["duration"] * 480), n["velocity"])
                      for n in notes)

    assert norm(back.notes) == norm(clip["notes"])
    assert back.bpm == 150.0 and back.key is not None and back.key.label == "A minor"
    assert back.length_beats == 8.0
    assert back.programs == {"melody": 80, "chords": 81, "bass": 38}  # the style's GM programs


def test_continue_keeps_the_opening_and_extends_the_clip(clip: dict) -> None:
    result = _run("music.continue", {**PARAMS, "notes": clip["notes"], "bars_to": 4})
    assert result["bars"] == 4 and result["recipe"]["bars_from"] == 3
    assert len(result["mix"]) == clip_samples(4, parse_meter("4/4"), 150, 44100)
    old = [n for n in clip["notes"] if n["part"] == "melody"]
    new = [n for n in result["notes"] if n["part"] == "melody"]
    assert [n for n in new if n["start"] < 8] == old
    assert any(n["start"] >= 8 for n in new)


def test_vary_regenerates_only_the_chosen_bars() -> None:
    base = _run(params={**PARAMS, "bars": 4})
    result = _run("music.vary", {**PARAMS, "bars": 4, "notes": base["notes"], "bars_from": 2, "bars_to": 3})
    melody = {k: [n for n in r["notes"] if n["part"] == "melody"] for k, r in (("old", base), ("new", result))}

    def outside(notes: list[dict]) -> list[dict]:
        return [n for n in notes if n["start"] < 4 or n["start"] >= 12]

    assert outside(melody["new"]) == outside(melody["old"])
    assert melody["new"] != melody["old"]
    assert result["bars"] == 4
    with pytest.raises(BadInputError, match="only 4 bars"):
        _run("music.vary", {**PARAMS, "bars": 4, "notes": base["notes"], "bars_from": 3, "bars_to": 6})


def test_vary_without_notes_is_refused() -> None:
    with pytest.raises(BadInputError, match="no melody"):
        _run("music.vary", {**PARAMS, "notes": [], "bars_from": 1, "bars_to": 1})


def test_a_file_that_is_not_a_soundfont_is_reported_and_the_synth_renders(tmp_path: Path) -> None:
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot a soundfont")
    events = []
    params = {**PARAMS, "bars": 1, "renderer": "soundfont", "soundfont": str(fake)}
    spec = JobSpec("music.generate", params, seed=1, model="rules")
    result = all_tasks()["music.generate"](spec, JobContext(spec, events.append))
    assert result["recipe"]["renderer"].startswith("synth (")
    problem = soundfont.find_soundfont(fake).problem
    assert "not a SoundFont" in problem or "midirenderer" in problem
    assert any(problem in e.message for e in events)
    assert np.abs(result["mix"]).max() > 0.1


def _usable_soundfont() -> Path | None:
    status = soundfont.find_soundfont()
    return status.path if status.usable else None


@pytest.mark.slow
@pytest.mark.skipif(_usable_soundfont() is None, reason="needs midirenderer and a General MIDI SoundFont")
def test_soundfont_rendering_when_available() -> None:
    result = _run(params={**PARAMS, "renderer": "soundfont"})
    assert result["recipe"]["renderer"].startswith("soundfont ")
    assert result["mix"].shape == (clip_samples(2, parse_meter("4/4"), 150, 44100), 2)
    assert result["recipe"]["lufs"] == pytest.approx(-14.0, abs=0.5)


def test_cli_generate_writes_audio_midi_and_refuses_bad_tempo(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, mid = tmp_path / "clip.flac", tmp_path / "clip.mid"
    code = main(["generate", "music", "--style", "calm", "--key", "F# major", "--bpm", "140", "--bars", "2",
                 "--seed", "3", "--model", "rules", "--out", str(out), "--midi", str(mid), "--quiet"])
    assert code == 0
    audio, _ = read_audio(out)
    assert len(audio) == clip_samples(2, parse_meter("3/4"), 140, 44100)
    clip = read_midi(mid)
    assert clip.key is not None and clip.key.label == "F# major" and clip.meter.label == "3/4"
    assert main(["generate", "music", "--bpm", "0", "--quiet"]) == 1
    assert "tempo 0 bpm is out of range" in capsys.readouterr().err
    code = main(["generate", "music", "--from", str(mid), "--vary", "2-2", "--model", "rules",
                 "--out", str(tmp_path / "v.wav"), "--quiet"])
    assert code == 0 and read_audio_recipe(tmp_path / "v.wav")["kind"] == "music.vary"


def test_cli_bench_writes_json_and_markdown(tmp_path: Path) -> None:
    code = main(["bench", "music", "--bars", "1", "--repeats", "1", "--warmup", "0", "--model", "rules",
                 "--json", str(tmp_path / "b.json"), "--md", str(tmp_path / "b.md")])
    assert code == 0
    report = json.loads((tmp_path / "b.json").read_text())
    row = report["results"][0]
    # the rule melody runs no network, so no neural runtime is named for it
    assert row["length_exact"] and row["runtime"] == "-" and row["realtime_factor"] > 0
    assert "| - | rules" in (tmp_path / "b.md").read_text()


@pytest.mark.parametrize(("bars_from", "bars_to", "message"), [(0, 1, "0 bars"), (2, 1, "comes before"),
                                                               (1, None, "bars_to")])
def test_continue_with_bad_bar_numbers_is_refused(clip: dict, bars_from: int, bars_to: int | None,
                                                  message: str) -> None:
    params = {**PARAMS, "notes": clip["notes"], "bars_from": bars_from}
    if bars_to is not None:
        params["bars_to"] = bars_to
    with pytest.raises(BadInputError, match=message):
        _run("music.continue", params)


@pytest.fixture
def tiny_music_model(no_bundled_models: None) -> str:
    """An untrained tiny music-transformer installed as a user model: exercises the model path end to end."""
    from studio.core.paths import user_models_dir
    from studio.ml import registry
    from studio.ml.checkpoint import save_model

    arch = registry.get("music-transformer")
    config = arch.tiny_config()
    torch.manual_seed(0)
    save_model(arch.build(config), arch.name, config, user_models_dir() / "tiny-tunes.safetensors",
               {"name": "tiny-tunes", "modality": "music"})
    return "tiny-tunes"


def test_an_installed_music_model_writes_the_melody(tiny_music_model: str) -> None:
    params = {**PARAMS, "bars": 2}
    result = _run(params=params, model=tiny_music_model)
    recipe = result["recipe"]
    assert recipe["melody_source"] == "model tiny-tunes" and recipe["model"] == "tiny-tunes"
    assert len(recipe["model_sha256"]) == 64
    melody = [n for n in result["notes"] if n["part"] == "melody"]
    assert melody and all(n["start"] < 8 for n in melody)
    assert np.array_equal(_run(params=params, model=tiny_music_model)["mix"], result["mix"])
    longer = _run("music.continue", {**params, "notes": result["notes"], "bars_to": 3}, model=tiny_music_model)
    kept = [n for n in longer["notes"] if n["part"] == "melody" and n["start"] < 8]
    assert kept == melody and longer["bars"] == 3
    varied = _run("music.vary", {**params, "notes": result["notes"], "bars_from": 2, "bars_to": 2},
                  model=tiny_music_model)
    assert [n for n in varied["notes"] if n["part"] == "melody" and n["start"] < 4] == \
        [n for n in melody if n["start"] < 4]


def test_the_style_form_repeats_the_opening_and_a_request_can_override_it(tiny_music_model: str) -> None:
    def melody_bar(notes: list[dict], bar: int) -> list[tuple]:
        return [(n["pitch"], round(n["start"] - 4 * bar, 6), round(n["duration"], 6)) for n in notes
                if n["part"] == "melody" and 4 * bar <= n["start"] < 4 * (bar + 1)]

    params = {**PARAMS, "bars": 8}  # chiptune-adventure is written as a period
    period = _run(params=params, model=tiny_music_model)["notes"]
    assert [melody_bar(period, b) for b in (4, 5)] == [melody_bar(period, b) for b in (0, 1)]
    through = _run(params={**params, "form": "through"}, model=tiny_music_model)["notes"]
    assert [melody_bar(through, b) for b in range(4)] != [melody_bar(through, b) for b in range(4, 8)]
    with pytest.raises(BadInputError, match="melody form"):
        _run(params={**params, "form": "rondo"}, model=tiny_music_model)
