"""The music Transformer's tiny config: shapes, KV cache, files, and the training loop (steps, resume, EMA)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.cancel import CancelToken, JobCancelled
from studio.core.errors import BadInputError
from studio.ml import registry
from studio.ml.checkpoint import load_model, save_model
from studio.ml.data.music import MusicData
from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
from studio.ml.music import tokens
from studio.ml.train.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint
from studio.ml.train.music import TrainOptions, learning_rate, make_batch, train, validation_nll
from tests.ml.music_fixtures import synthetic_data, write_midi

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 96, "dropout": 0.0}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registered_with_a_tiny_config_and_an_onnx_graph() -> None:
    arch = registry.get("music-transformer")
    assert (arch.modality, arch.family) == ("music", "transformer")
    assert arch.tiny_config().vocab_size == tokens.VOCAB_SIZE
    assert [g.name for g in arch.onnx] == ["decoder_with_past"]
    ids, past = arch.onnx[0].example_inputs(arch.tiny_config(), 3)
    logits, present = arch.onnx[0].wrap(arch.build(arch.tiny_config()).eval())(ids, past)
    assert logits.shape == (3, ids.shape[1], tokens.VOCAB_SIZE)
    assert present.shape[4] == past.shape[4] + ids.shape[1]


def test_forward_shapes_and_the_cache_matches_a_full_pass() -> None:
    torch.manual_seed(0)
    config = MusicTransformerConfig.tiny()
    model = MusicTransformer(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 20))
    full, present = model(ids)
    assert full.shape == (2, 20, config.vocab_size)
    assert present.shape == (config.n_layer, 2, 2, config.n_head, 20, config.head_dim)
    head, past = model(ids[:, :12])
    steps = [head]
    for i in range(12, 20):
        step, past = model(ids[:, i : i + 1], past)
        steps.append(step)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    empty = model.empty_past(2)
    assert torch.allclose(model(ids, empty)[0], full, atol=1e-6)


def test_longer_than_the_context_is_refused() -> None:
    config = MusicTransformerConfig.tiny()
    model = MusicTransformer(config)
    with pytest.raises(ValueError, match="exceeds"):
        model(torch.zeros(1, config.block_size + 1, dtype=torch.long))


def test_two_training_steps_lower_a_finite_loss() -> None:
    torch.manual_seed(0)
    config = MusicTransformerConfig.tiny()
    model = MusicTransformer(config).train()
    seq = np.array([*tokens.Header(0, "major", "4/4", "fast", 1).tokens(), tokens.BAR,
                    tokens.pos_token(0), tokens.pitch_token(60), tokens.dur_token(48), tokens.EOS])
    x, y = make_batch([seq, seq[:-2]], "cpu")
    assert (y[:, : tokens.HEADER_LEN - 1] == -100).all() and (y[1, -2:] == -100).all()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(2):
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config.vocab_size), y.reshape(-1),
                                                 ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[1] < losses[0]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = MusicTransformerConfig.tiny()
    model = MusicTransformer(config).eval()
    path = save_model(model, "music-transformer", config, tmp_path / "m.safetensors", {"name": "m"})
    loaded, loaded_config, meta = load_model(path, expect_arch="music-transformer")
    ids = torch.randint(0, config.vocab_size, (1, 9))
    assert loaded_config == config and meta["name"] == "m"
    assert torch.equal(loaded(ids)[0], model(ids)[0])


def test_learning_rate_warms_up_then_decays() -> None:
    from studio.ml.train.music import PRESETS

    preset = PRESETS["quick"]
    rates = [learning_rate(s, preset, s / 300) for s in range(300)]
    assert rates[0] < rates[preset.warmup - 1] == pytest.approx(preset.lr)
    assert rates[-1] < rates[preset.warmup] and min(rates[preset.warmup :]) >= 0.1 * preset.lr - 1e-12


def test_train_resume_and_write_a_model(tmp_path: Path) -> None:
    data = synthetic_data(tmp_path / "data")
    runs, out = tmp_path / "runs", tmp_path / "models"
    options = TrainOptions(data=data, preset="quick", max_steps=3, name="tiny-music", out_dir=out, run_dir=runs,
                           model_overrides=TINY)
    path = train(options)
    assert path == out / "tiny-music.safetensors"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["name"] == "tiny-music" and meta["modality"] == "music" and meta["vocab"] == tokens.VOCAB_VERSION
    assert math.isfinite(meta["metrics"]["val_nll"]) and meta["training"]["steps"] == 3
    saved = load_checkpoint(latest_checkpoint(runs))
    assert saved.step == 3 and [e["step"] for e in saved.extra["log"]] == [3]
    assert set(saved.groups) == {"model", "ema"} and saved.optimizers["adamw"]["state"]

    seen: list[int] = []
    resumed = TrainOptions(data=data, preset="quick", max_steps=5, name="tiny-music", out_dir=out, run_dir=runs,
                           model_overrides=TINY, resume=True)
    train(resumed, on_progress=lambda step, _total, _m: seen.append(step))
    assert seen == [4, 5]
    saved = load_checkpoint(latest_checkpoint(runs))
    assert saved.step == 5 and [e["step"] for e in saved.extra["log"]] == [3, 5]
    train(TrainOptions(data=data, preset="quick", max_steps=6, name="tiny-music", out_dir=out, run_dir=runs,
                       model_overrides=TINY, resume=True))
    assert [p.name for p in list_checkpoints(runs)] == ["step-00000005.safetensors", "step-00000006.safetensors"]
    model, _, _ = load_model(path, expect_arch="music-transformer")
    nll, count = validation_nll(model, MusicData.load(data, "val").validation_sequences(96), "cpu")
    assert count > 0 and math.isfinite(nll)


def test_pause_saves_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    data = synthetic_data(tmp_path / "data")
    token = CancelToken()

    def pause_after_two(step: int, _total: int, _metrics: dict) -> None:
        if step == 2:
            token.cancel()

    options = TrainOptions(data=data, preset="quick", max_steps=4, out_dir=tmp_path, run_dir=tmp_path / "r",
                           model_overrides=TINY, name="paused")
    with pytest.raises(JobCancelled):
        train(options, on_progress=pause_after_two, cancel=token)
    assert load_checkpoint(latest_checkpoint(tmp_path / "r")).step == 2
    assert not (tmp_path / "paused.safetensors").exists()
    seen: list[int] = []
    path = train(replace(options, resume=True), on_progress=lambda step, _t, _m: seen.append(step))
    assert seen == [3, 4] and path.exists()
    card = path.with_suffix(".md").read_text()
    for heading in ("# paused", "## Data", "## Training", "## Metrics", "## Known limits"):
        assert heading in card
    assert "val_nll" in card and "synthetic" in card


def test_cli_fine_tunes_on_your_own_tunes_and_speaks_json_events(tmp_path: Path, capsys) -> None:
    from studio.cli import main

    tunes = tmp_path / "tunes"
    tunes.mkdir()
    for i in range(3):
        write_midi(tunes / f"t{i}.mid", [(64 + (i + k) % 5, k * 0.5, 0.5) for k in range(24)])
    (tunes / "notes.txt").write_text("not a tune")
    base = tmp_path / "base"
    torch.manual_seed(0)
    config = MusicTransformerConfig(**TINY)
    save_model(MusicTransformer(config), "music-transformer", config, base / "base.safetensors", {"name": "b"})
    code = main(["train", "music", "--data", str(tunes), "--preset", "quick", "--max-steps", "2", "--name", "mine",
                 "--init", str(base / "base.safetensors"), "--licence", "CC0", "--events", "--threads", "1"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "info" and "built a training set of 3 tune(s)" in events[0]["message"]
    assert [e["step"] for e in events if e["event"] == "progress"] == [1, 2]
    assert "validation" in events[-2]["loss"] and events[-2]["total"] == 2
    finished = events[-1]
    assert finished["event"] == "finished" and finished["model"] == "mine"
    meta = json.loads(Path(finished["model_path"]).with_suffix(".json").read_text())
    assert meta["licence"] == "CC0" and meta["training"]["init_from"].endswith("base.safetensors")
    assert Path(finished["card"]).exists()


def test_cli_eval_writes_metrics_and_a_card(tmp_path: Path, capsys) -> None:
    from studio.cli import main

    data = synthetic_data(tmp_path / "data")
    path = train(TrainOptions(data=data, preset="quick", max_steps=2, out_dir=tmp_path, run_dir=tmp_path / "r",
                              model_overrides=TINY, name="judged"))
    report = tmp_path / "eval.json"
    assert main(["eval", "music", "--model", str(path), "--data", str(data), "--samples", "3", "--json",
                 str(report), "--card"]) == 0
    metrics = json.loads(report.read_text())
    for key in ("val_nll", "in_key_ratio", "pitch_class_tv", "duration_tv", "onset_tv", "repeated_bars"):
        assert math.isfinite(metrics[key])
    assert 0 <= metrics["in_key_ratio"] <= 1 and metrics["repeated_bars_val"] > 0  # synthetic tunes repeat a bar
    card = path.with_suffix(".md").read_text()
    assert "| in-key ratio |" in card and "## Sample output" in card and "A minor, 4/4" in card
    assert "in_key_ratio" in capsys.readouterr().out


def test_a_time_budget_ends_the_run(tmp_path: Path) -> None:
    data = synthetic_data(tmp_path / "data")
    options = TrainOptions(data=data, preset="quick", max_steps=10_000, max_minutes=1e-9, out_dir=tmp_path,
                           run_dir=tmp_path / "r", model_overrides=TINY)
    seen: list[dict] = []
    train(options, on_progress=lambda _s, _t, m: seen.append(m))
    assert len(seen) == 1 and seen[0]["progress"] >= 1.0 and "val_nll" in seen[0]


def test_resume_without_a_checkpoint_and_unknown_presets_are_refused(tmp_path: Path) -> None:
    data = synthetic_data(tmp_path / "data")
    with pytest.raises(BadInputError, match="nothing to resume"):
        train(TrainOptions(data=data, preset="quick", run_dir=tmp_path / "none", resume=True,
                           model_overrides=TINY))
    with pytest.raises(BadInputError, match="preset"):
        train(TrainOptions(data=data, preset="huge"))


def test_training_learns_the_synthetic_tunes(tmp_path: Path) -> None:
    """Training must actually fit data: within 80 steps the loss falls by more than a nat."""
    data = synthetic_data(tmp_path / "data", tunes=12)
    options = TrainOptions(data=data, preset="quick", max_steps=80, out_dir=tmp_path, run_dir=tmp_path / "r",
                           model_overrides=TINY)
    losses: list[float] = []
    train(options, on_progress=lambda _s, _t, m: losses.append(m["loss"]))
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 1.0


def test_metric_functions() -> None:
    from studio.ml.eval.music_metrics import in_key_ratio, repeated_bar_fraction, tv_distance

    e = tokens.Event
    clip = [e(0, 0, 60, 12), e(0, 12, 61, 12), e(1, 0, 60, 12), e(1, 12, 61, 12), e(2, 0, 64, 24)]
    assert in_key_ratio(clip, 0, "major") == pytest.approx(3 / 5)
    assert repeated_bar_fraction(clip) == pytest.approx(1 / 3)
    assert tv_distance(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == 1.0
    assert tv_distance(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == 0.0


def test_a_fresh_run_over_an_earlier_run_of_that_name_is_refused(tmp_path: Path) -> None:
    """Starting afresh in a folder with checkpoints would mix two runs (and a later resume would pick the old)."""
    data = synthetic_data(tmp_path / "data")
    options = TrainOptions(data=data, preset="quick", max_steps=2, name="twice", out_dir=tmp_path,
                           run_dir=tmp_path / "r", model_overrides=TINY)
    train(options)
    with pytest.raises(BadInputError, match=r"already holds a run.*resume it, or pick another name"):
        train(options)
    assert load_checkpoint(latest_checkpoint(tmp_path / "r")).step == 2
