"""Brand-voice LoRA runs: a pause resumes exactly where it stopped, a run folder belongs to one recipe, and a full
disk at the adapter write leaves a run that --resume finishes without training again."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core import paths
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.errors import BadInputError, DiskWriteError
from studio.ml.train.copy_run import CopyTrainConfig, train_copy
from studio.ml.train.lora import LoRAConfig, RunFolder, TrainSettings, adapter_state, items_from_lines, train_lora
from tests.faults import inject_full_disk
from tests.ml.copy_fixtures import tiny_lm

LINES = [f"Brewly {verb} fresh {thing}!" for verb in ("pours", "brings", "roasts")
         for thing in ("coffee", "beans", "mornings", "cups", "joy")]
SETTINGS = TrainSettings(epochs=3, batch=2, validation=0.25, lr=1e-2, seed=0, lora=LoRAConfig(rank=4))

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models train fastest on one thread


def _items() -> tuple[list, list]:
    return items_from_lines(LINES[:12], "Write lines.", 2, 0), items_from_lines(LINES[12:], "Write lines.", 1, 0)


MEASURING_CHECKS = 2  # cancel checks before the first step: a batch of the held-out lines, one of the validation lines


def _pause_at(step: int, measuring: int = MEASURING_CHECKS):
    """A cancel check that pauses before the ``step``-th step (1-based; 0: while the lines are first measured)."""
    calls = {"n": 0}

    def check() -> None:
        calls["n"] += 1
        if calls["n"] == step + measuring or (step == 0 and calls["n"] == 1):
            raise JobCancelled()

    return check


def test_a_paused_run_resumes_exactly_where_it_stopped(tmp_path: Path) -> None:
    lm = tiny_lm(seed=1, embed_std=0.3)
    train, held = _items()
    straight = train_lora(lm, train, held, SETTINGS, system="You write ads.")
    assert straight.steps >= 5, "the pause below must fall in the middle of the second epoch"

    run = RunFolder(tmp_path / "checkpoints")
    with pytest.raises(JobCancelled):
        train_lora(lm, train, held, SETTINGS, system="You write ads.", cancel=_pause_at(5), run=run)
    steps: list[int] = []
    resumed = train_lora(lm, train, held, SETTINGS, system="You write ads.", run=RunFolder(run.checkpoints, True),
                         on_step=lambda step, _total, losses: steps.append(step) if "train" in losses else None)
    assert steps[0] == 5, "resume continues after the 4 steps already taken"
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    assert resumed.perplexity_after == pytest.approx(straight.perplexity_after, rel=1e-5)
    for key, value in adapter_state(straight.model).items():
        assert torch.allclose(adapter_state(resumed.model)[key], value, atol=1e-6), key


def test_a_run_folder_belongs_to_one_recipe(tmp_path: Path) -> None:
    lm = tiny_lm(seed=1)
    train, held = _items()
    run = RunFolder(tmp_path / "checkpoints")
    with pytest.raises(JobCancelled):
        train_lora(lm, train, held, SETTINGS, cancel=_pause_at(2), run=run)
    with pytest.raises(BadInputError, match="already holds a run"):
        train_lora(lm, train, held, SETTINGS, run=run)
    with pytest.raises(BadInputError, match="other lines, settings or base model"):
        train_lora(lm, train[1:], held, SETTINGS, run=RunFolder(run.checkpoints, resume=True))


def test_disk_full_at_the_adapter_write_then_resume_writes_it(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "ours.txt"
    data.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    lm = tiny_lm(seed=1, embed_std=0.3)
    config = CopyTrainConfig(name="our-voice", data=data, preset="quick", licence="our own lines")

    events: list[dict] = []
    with monkeypatch.context() as full_disk, pytest.raises(DiskWriteError, match=r"disk full.*our-voice.*resume"):
        inject_full_disk(full_disk, under=paths.user_models_dir())
        train_copy(lm, config, events.append, CancelToken())
    trained_steps = max(e["step"] for e in events if "step" in e)
    assert not list(paths.user_models_dir().glob("our-voice*")), "nothing half-written in the models folder"

    config.resume = True  # space was freed
    again: list[dict] = []
    outcome = train_copy(lm, config, again.append, CancelToken())
    assert not [e for e in again if "step" in e], "the finished loop is not run again"
    weights = Path(outcome["model_path"])
    assert weights == paths.user_models_dir() / "our-voice.safetensors" and weights.exists()
    card = Path(outcome["card"]).read_text(encoding="utf-8")
    assert "our own lines" in card and "base model `tiny`" in card and f"| steps | {trained_steps} |" in card


def test_a_pause_while_the_held_out_lines_are_first_measured_stops_before_any_step(tmp_path: Path) -> None:
    """Measuring hundreds of long prompts takes minutes on a CPU: a pause then stops at once, with nothing to keep."""
    from studio.ml.train.lora_state import has_state

    lm = tiny_lm(seed=1)
    train, held = _items()
    steps: list[int] = []
    run = RunFolder(tmp_path / "checkpoints")
    with pytest.raises(JobCancelled):
        train_lora(lm, train, held, SETTINGS, cancel=_pause_at(0), run=run,
                   on_step=lambda step, _total, _losses: steps.append(step))
    assert steps == [] and not has_state(run.checkpoints)
