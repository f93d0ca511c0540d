"""The sprite trainer: events, sample grids, checkpoints, exact resume, cancel, user-model registration, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from studio.cli import main
from studio.core import paths
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.errors import BadInputError
from studio.ml.checkpoint import load_model
from studio.ml.train.checkpoints import list_checkpoints, load_checkpoint
from studio.ml.train.sprite import SpriteTrainConfig, train_sprite
from tests.ml.sprite_helpers import CATEGORIES, make_dataset, tiny_overrides


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "sprites")


def config(family: str, data: Path, run_dir: Path, **kwargs) -> SpriteTrainConfig:
    defaults = dict(
        family=family, data=data, run_dir=run_dir, preset="quick", max_steps=3, batch_size=4,
        sample_every=2, checkpoint_every=2, model=tiny_overrides(family), device="cpu",
    )
    return SpriteTrainConfig(**{**defaults, **kwargs})


@pytest.mark.parametrize("family", ["gan", "vae", "diffusion"])
def test_training_emits_events_writes_grids_checkpoints_and_the_model(family: str, data: Path, tmp_path: Path):
    events: list[dict] = []
    run = tmp_path / "run"
    result = train_sprite(config(family, data, run), events.append)
    assert [e["step"] for e in events] == [1, 2, 3]
    for event in events:
        assert set(event) == {"step", "total", "loss", "eta_s", "sample_grid"}
        assert event["total"] == 3 and event["eta_s"] >= 0
        assert event["loss"] and all(np.isfinite(v) for v in event["loss"].values())
    grids = [e["sample_grid"] for e in events if e["sample_grid"] is not None]
    assert len(grids) == 2  # at step 2 (every 2) and at the last step
    assert grids[0].shape == (256, 256, 4) and grids[0].dtype == np.uint8
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000002.png", "step-00000003.png"]
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == [
        "step-00000002.safetensors", "step-00000003.safetensors"]
    assert any(k.startswith("val_") for k in events[-1]["loss"])
    model, _, meta = load_model(result.model_path)
    assert model.family == family and meta["categories"] == CATEGORIES
    assert meta["modality"] == "sprite" and meta["family"] == family
    training = meta["training"]
    assert training["steps"] == 3 and training["preset"] == "quick"
    assert training["data"]["counts"] == {"train": 48, "val": 16}
    assert {"commit", "hardware", "wall_time_s"} <= set(training)
    assert result.metrics and result.registered_path is None


def test_saved_generator_carries_the_ema_weights(data: Path, tmp_path: Path) -> None:
    result = train_sprite(config("gan", data, tmp_path / "run", max_steps=2), lambda e: None)
    saved = load_file(str(result.model_path))
    checkpoint = load_checkpoint(list_checkpoints(tmp_path / "run" / "checkpoints")[-1])
    for key, value in checkpoint.groups["ema"].items():
        assert torch.equal(saved[f"generator.{key}"], value)
    trained = checkpoint.groups["model"]
    key = next(k for k in checkpoint.groups["ema"] if k.endswith("weight"))
    assert not torch.equal(trained[f"generator.{key}"], saved[f"generator.{key}"])
    disc = [k for k in saved if k.startswith("discriminator.")]
    assert disc and all(torch.equal(saved[k], trained[k]) for k in disc)


@pytest.mark.parametrize("family", ["gan", "diffusion"])
def test_resume_repeats_the_same_loss_curve_bit_for_bit(family: str, data: Path, tmp_path: Path) -> None:
    straight: list[dict] = []
    train_sprite(config(family, data, tmp_path / "a", max_steps=4), straight.append)
    first: list[dict] = []
    train_sprite(config(family, data, tmp_path / "b", max_steps=2), first.append)
    resumed: list[dict] = []
    result = train_sprite(config(family, data, tmp_path / "b", max_steps=4, resume=True), resumed.append)
    assert [e["step"] for e in resumed] == [3, 4]
    for a, b in zip(straight[2:], resumed, strict=True):
        assert a["loss"] == b["loss"]
    a_state = load_file(str(tmp_path / "a" / "model.safetensors"))
    b_state = load_file(str(result.model_path))
    assert all(torch.equal(a_state[k], b_state[k]) for k in a_state)


def test_a_run_folder_is_not_overwritten_or_resumed_with_other_settings(data: Path, tmp_path: Path) -> None:
    train_sprite(config("vae", data, tmp_path / "run", max_steps=2), lambda e: None)
    with pytest.raises(BadInputError, match="--resume"):
        train_sprite(config("vae", data, tmp_path / "run", max_steps=2), lambda e: None)
    with pytest.raises(BadInputError, match=r"other settings.*batch_size"):
        train_sprite(config("vae", data, tmp_path / "run", batch_size=8, resume=True), lambda e: None)


def test_cancel_saves_a_checkpoint_to_resume_from(data: Path, tmp_path: Path) -> None:
    token = CancelToken()

    def on_event(event: dict) -> None:
        if event["step"] == 1:
            token.cancel()

    with pytest.raises(JobCancelled):
        train_sprite(config("vae", data, tmp_path / "run", max_steps=50), on_event, token)
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step-00000001.safetensors"]
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_name_registers_a_user_model(data: Path, tmp_path: Path) -> None:
    result = train_sprite(config("vae", data, tmp_path / "run", max_steps=1, name="my-blobs"), lambda e: None)
    assert result.registered_path == paths.user_models_dir() / "my-blobs.safetensors"
    from studio.ml.store import ModelStore

    entry = ModelStore().find("my-blobs")
    assert entry.source == "user" and entry.arch == "sprite-vae" and entry.modality == "sprite"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"family": "pixelcnn"}, "unknown sprite model family"),
        ({"preset": "huge"}, "unknown preset"),
        ({"name": "../evil"}, "model name"),
        ({"model": {"z_dim": 8, "wings": 2}}, "do not fit"),
    ],
)
def test_bad_settings_get_clear_messages(changes: dict, message: str, data: Path, tmp_path: Path) -> None:
    settings = config("gan", data, tmp_path / "run")
    with pytest.raises(BadInputError, match=message):
        train_sprite(dataclasses.replace(settings, **changes), lambda e: None)


def test_a_folder_without_a_data_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not a sprite data set"):
        train_sprite(config("gan", tmp_path, tmp_path / "run"), lambda e: None)


def test_cli_trains_and_reports_json_events(data: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "cli-run"
    code = main(["train", "sprite", "--model", "gan", "--data", str(data), "--preset", "quick", "--max-steps", "2",
                 "--batch-size", "4", "--out", str(run), "--events", "--name", "cli-gan"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in lines] == ["progress", "progress", "info", "info", "finished"]
    assert "sample_path" in lines[1] and Path(lines[1]["sample_path"]).exists()
    assert lines[-1]["model_path"] == str(run / "model.safetensors")
    assert (paths.user_models_dir() / "cli-gan.safetensors").exists()
    # The finished model is evaluated against its training sprites, into its card.
    assert lines[3]["message"].startswith("cli-gan: FID ") and "near copies" in lines[3]["message"]
    assert set(lines[-1]["evaluation"]) == {"fid", "near_copy_fraction", "diversity_feature_cosine"}
    card = (paths.user_models_dir() / "cli-gan.md").read_text(encoding="utf-8")
    assert "<!-- studio-eval:sprite -->" in card and "| near copies of a training tile |" in card
    assert json.loads((run / "evaluation.json").read_text())["model"]["count"] == 256


@pytest.mark.slow
def test_runs_unchanged_under_torchrun_with_two_processes(data: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "studio", "train", "sprite", "--model", "gan", "--data", str(data), "--preset", "quick",
               "--max-steps", "2", "--batch-size", "4", "--device", "cpu", "--out", str(run), "--events"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=paths.repo_root())
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["progress", "progress", "finished"]  # rank 0 alone reports
    assert load_model(run / "model.safetensors")[2]["training"]["hardware"].endswith("world size 2")


def test_prefetch_workers_give_the_same_batches_as_the_loop(data: Path) -> None:
    from studio.ml.train.sprite import batches, load_data, make_plan

    loaded = load_data(data, "cpu")
    plan = make_plan(config("gan", data, data / "run"), loaded.categories, tags=list(loaded.vocabulary.words))
    with batches(loaded, plan, 0, 6, 0, workers=0) as inline, batches(loaded, plan, 0, 6, 0, workers=2) as ahead:
        for (a, b), _ in zip(zip(inline, ahead, strict=False), range(5), strict=False):
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_tags_reach_the_models_in_training_and_the_sidecar(data: Path, tmp_path: Path) -> None:
    from studio.ml.sampling.sprites import generate, seeded_generators

    result = train_sprite(config("diffusion", data, tmp_path / "run", max_steps=3), lambda e: None)
    model, model_config, meta = load_model(result.model_path)
    words = json.loads((data / "manifest.json").read_text())["tags"]["words"]
    assert model_config.num_tags == len(words) and meta["tags"]["words"] == words
    assert model.tag_embed.weight.abs().sum() > 0  # learnt from zero in three steps
    labels = torch.zeros(2, dtype=torch.long)
    tags = torch.zeros(2, len(words))
    tags[:, 0] = 1.0
    with_words = generate(model, labels, seeded_generators(0, 2), steps=2, tags=tags)
    assert not torch.allclose(with_words, generate(model, labels, seeded_generators(0, 2), steps=2))


def test_diff_augment_is_seeded_differentiable_and_makes_transparent_holes() -> None:
    from studio.ml.train.sprite_objectives import diff_augment

    x = torch.rand(4, 4, 32, 32) * 2 - 1
    x.requires_grad_(True)
    a = diff_augment(x, torch.Generator().manual_seed(1))
    b = diff_augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert ((a == -1).all(dim=1).sum(dim=(1, 2)) >= 64).all()  # an 8x8 transparent hole (plus shift fill)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
