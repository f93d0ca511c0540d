"""``train.estimate`` measures real training steps of every modality's preset: sprite networks, a LoRA adapter on
the chosen base language model with the user's lines, and the music Transformer the user's tunes fine-tune."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core import paths
from studio.core.context import JobContext
from studio.core.errors import BadInputError, ModelFileError
from studio.core.jobs import JobSpec
from studio.ml.cache import ModelCache
from studio.ml.resources import Resources
from studio.ml.store import ModelStore
from studio.ml.tasks import all_tasks
from studio.ml.tasks.runner import run_task
from studio.ml.text.lm import load_language_model
from studio.ml.train.music import PRESETS as MUSIC_PRESETS
from tests.ml.music_fixtures import synthetic_data, write_midi
from tests.ml.tiny_gguf import tiny_model, write_tiny_gguf

pytestmark = pytest.mark.usefixtures("one_thread")

LINES = [f"Brewly {verb} fresh {thing}!" for verb in ("pours", "brings", "roasts", "sends")
         for thing in ("coffee", "beans", "mornings", "cups", "joy")]


@pytest.fixture
def resources() -> Resources:
    return Resources(device="cpu", runtime="torch", store=ModelStore(), cache=ModelCache(), cpu_threads=1)


def estimate(resources: Resources, **params) -> dict:
    spec = JobSpec("train.estimate", params)
    return run_task(all_tasks()["train.estimate"], spec, JobContext(spec, lambda e: None, None, "cpu", resources))


def consistent(result: dict) -> None:
    """The time is the measured step time over the run's steps (plus evaluation), and memory is positive."""
    assert result["device"] == "cpu" and result["step_ms"] > 0 and result["memory_mb"] > 0
    assert result["seconds"] >= result["steps"] * result["step_ms"] / 1e3 * 0.999


def test_copy_presets_are_timed_on_the_chosen_base_model(resources: Resources, tmp_path: Path) -> None:
    gguf = write_tiny_gguf(paths.user_models_dir() / "lm" / "Tiny-LM.gguf", tiny_model(seed=3, max_seq_len=4096))
    load_language_model(gguf, name="tiny-lm")
    lines = tmp_path / "ours.txt"
    lines.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    common = {"modality": "copy", "path": str(lines), "base": "tiny-lm"}

    quick = estimate(resources, **common, preset="quick")
    best = estimate(resources, **common, preset="best")
    for result in (quick, best):
        consistent(result)
    # 16 of the 20 lines train: four 4-line examples, one of them validates, three train: one batch an epoch
    assert (quick["steps"], best["steps"]) == (2, 16), "epochs x batches: 2 epochs quick, 16 best"
    assert "LoRA rank 4 on tiny-lm" in quick["detail"] and "LoRA rank 16 on tiny-lm" in best["detail"]
    assert best["memory_mb"] > quick["memory_mb"], "a higher rank has more adapter weights and optimizer state"
    assert estimate(resources, **common, preset="best", max_steps=3)["steps"] == 3
    with pytest.raises(ModelFileError, match="no model named 'missing-lm'"):
        estimate(resources, **{**common, "base": "missing-lm"}, preset="quick")


def test_music_presets_time_the_model_the_tunes_would_train(resources: Resources, tmp_path: Path) -> None:
    tunes = tmp_path / "tunes"
    tunes.mkdir()
    write_midi(tunes / "walk.mid", [(60 + i % 8, i * 0.5, 0.5) for i in range(16)], key="C", meter=(4, 4))

    fine_tune = estimate(resources, modality="music", path=str(tunes), preset="quick", max_steps=5)
    consistent(fine_tune)
    assert fine_tune["steps"] == 5 and fine_tune["detail"].startswith("fine-tuning music-transformer")

    built = synthetic_data(tmp_path / "built", tunes=6)  # a built data set trains a new model of the preset's size
    quick = estimate(resources, modality="music", path=str(built), preset="quick")
    consistent(quick)
    assert quick["steps"] == MUSIC_PRESETS["quick"].steps and "a new model (2 layers, width 128)" in quick["detail"]
    assert fine_tune["memory_mb"] > quick["memory_mb"], "the installed model has 4 layers, quick's new one 2"


def test_sprite_estimates_follow_the_step_limit_and_unknown_modalities_are_refused(resources: Resources) -> None:
    result = estimate(resources, modality="sprite", family="gan", preset="quick", max_steps=7)
    consistent(result)
    assert result["steps"] == 7
    with pytest.raises(BadInputError, match="unknown modality"):
        estimate(resources, modality="video", preset="quick")
