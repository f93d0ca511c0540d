"""A full disk in the middle of a training run: a clear message, the earlier checkpoint intact, and a resume that
finishes the run. Also the model file itself: a failed save keeps the earlier model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

from studio.cli.train_runner import run_trainer
from studio.core.errors import DiskWriteError
from studio.ml import checkpoint as model_files
from studio.ml.checkpoint import load_model, save_model
from studio.ml.train.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint
from studio.ml.train.sprite import SpriteTrainConfig, train_sprite
from tests.faults import FULL_TEXT, leftovers
from tests.ml.sprite_helpers import make_dataset, save_tiny_model, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models train fastest on one thread


def _config(data: Path, run: Path, resume: bool = False) -> SpriteTrainConfig:
    return SpriteTrainConfig(family="gan", data=data, run_dir=run, preset="quick", max_steps=4, batch_size=4,
                             sample_every=4, checkpoint_every=2, model=tiny_overrides("gan"), device="cpu",
                             resume=resume)


def _full_disk_at(call: int, real):
    """safetensors' writer as it behaves on a full disk on its ``call``-th use: half a file written, then its own
    SafetensorError (not an OSError), which the project's disk-full path must recognise."""
    calls = {"n": 0}

    def save_file(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == call:
            Path(filename).write_bytes(b"\0" * 100)
            raise SafetensorError(FULL_TEXT)
        return real(tensors, filename, metadata=metadata)

    return save_file


def test_disk_full_at_the_second_checkpoint_stops_clearly_and_resumes(tmp_path: Path, monkeypatch) -> None:
    data = make_dataset(tmp_path / "sprites", train=12, val=4)
    run = tmp_path / "run"
    events: list[dict] = []
    with monkeypatch.context() as full_disk, \
            pytest.raises(DiskWriteError, match=r"disk full.*step-00000004.*Free some space and resume"):
        full_disk.setattr(model_files, "save_file", _full_disk_at(2, model_files.save_file))
        train_sprite(_config(data, run), events.append)
    assert [e["step"] for e in events] == [1, 2, 3]  # step 4's checkpoint failed before it was reported

    folder = run / "checkpoints"
    assert [p.name for p in list_checkpoints(folder)] == ["step-00000002.safetensors"]
    assert leftovers(folder) == [], "the half-written temporary file must be removed"
    kept = load_checkpoint(latest_checkpoint(folder))
    assert kept.step == 2 and kept.groups["model"] and kept.optimizers

    # space was freed: the same run resumes from step 2

    resumed: list[dict] = []
    result = train_sprite(_config(data, run, resume=True), resumed.append)
    assert [e["step"] for e in resumed] == [3, 4]
    assert result.steps == 4 and load_model(result.model_path)[0] is not None


def test_the_app_gets_the_disk_full_message_as_an_error_event(tmp_path: Path, monkeypatch, capsys) -> None:
    data = make_dataset(tmp_path / "sprites", train=12, val=4)
    monkeypatch.setattr(model_files, "save_file", _full_disk_at(2, model_files.save_file))
    code = run_trainer(lambda on_event, cancel: train_sprite(_config(data, tmp_path / "run"), on_event, cancel),
                       events=True)
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and last["event"] == "error"
    assert last["message"].startswith("disk full:") and "resume" in last["message"]


def test_a_failed_model_save_keeps_the_earlier_model(tmp_path: Path, monkeypatch) -> None:
    weights = save_tiny_model("gan", tmp_path, "kept", seed=0)
    before = weights.read_bytes(), weights.with_suffix(".json").read_text()
    model, config, _ = load_model(weights)
    monkeypatch.setattr(model_files, "save_file", _full_disk_at(1, model_files.save_file))
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    with pytest.raises(DiskWriteError, match="disk full"):
        save_model(model, "sprite-gan", config, weights, {"name": "kept"})
    assert (weights.read_bytes(), weights.with_suffix(".json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json", "kept.safetensors"]
