"""Sprite evaluation: the metrics, the encoder and its training, the reference, and `studio eval sprite`."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli import main
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.paths import user_models_dir
from studio.ml import registry
from studio.ml.checkpoint import load_model
from studio.ml.data.pixel_space import NEAR_COPY_L1
from studio.ml.eval.sprite_metrics import (
    SpriteReference,
    evaluate_sprites,
    frechet_distance,
    kernel_distance,
    mean_pairwise_cosine_distance,
    mean_pairwise_pixel_l1,
)
from studio.ml.eval.sprite_reference import build_reference, category_shares, validation_subset
from studio.ml.models.sprite_encoder import SpriteEncoder, SpriteEncoderConfig
from studio.ml.store import ModelStore
from studio.ml.train.sprite_encoder import EncoderTraining, train_sprite_encoder
from tests.ml.sprite_samples import distinct_sprites, small_dataset

TINY = EncoderTraining(epochs=1, batch_size=8, width=4, learning_rate=1e-2)

# --- metrics ----------------------------------------------------------------------------------------------------


def test_frechet_distance_matches_its_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(300, 6)) * 1.5 + 0.3
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.arange(6) / 10.0
    assert frechet_distance(a, a + shift) == pytest.approx((shift**2).sum(), rel=1e-6)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert frechet_distance(a @ rotation, b @ rotation) == pytest.approx(frechet_distance(a, b), rel=1e-6)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    x, y = a[:, :1], b[:, :1]
    closed = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(x, y) == pytest.approx(closed, rel=1e-6)


def test_kernel_distance_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    same, _ = kernel_distance(a, b, subsets=20, subset_size=200)
    moved, _ = kernel_distance(a, b + 0.5, subsets=20, subset_size=200)
    further, _ = kernel_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.1 * moved
    assert 0 < moved < further


def test_diversity_is_zero_for_copies_and_positive_for_different_sprites():
    sprites = distinct_sprites(6)
    assert mean_pairwise_pixel_l1(np.repeat(sprites[:1], 5, axis=0)) == 0.0
    assert mean_pairwise_pixel_l1(sprites) > NEAR_COPY_L1
    features = np.eye(4)
    assert mean_pairwise_cosine_distance(np.ones((3, 4))) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_cosine_distance(features) == pytest.approx(1.0)


def _fake_reference(train: np.ndarray) -> SpriteReference:
    """An 'encoder' that reads each sprite's mean colour: enough to check the bookkeeping."""

    def embed(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = images.reshape(len(images), -1, 4).mean(axis=1).astype(np.float64)
        logits = np.stack([features[:, 0], features[:, 2]], axis=1)  # red-ish -> 0, blue-ish -> 1
        return logits, features

    return SpriteReference(["red", "blue"], train, embed(train)[1], embed)


def test_evaluate_sprites_flags_near_copies_only():
    train = distinct_sprites(30, seed=1)
    reference = _fake_reference(train)
    noisy = train[:4].astype(int)
    noisy[..., :3] += np.random.default_rng(2).integers(-5, 6, size=noisy[..., :3].shape)
    copies = np.where(train[:4, ..., 3:] > 0, np.clip(noisy, 0, 255), 0).astype(np.uint8)
    fresh = distinct_sprites(16, seed=99)
    samples = np.concatenate([copies, fresh])
    labels = np.zeros(len(samples), dtype=np.int64)
    result = evaluate_sprites(samples, labels, reference)
    memo = result["memorisation"]
    assert memo["near_copies"] == 4 and memo["near_copy_fraction"] == pytest.approx(4 / 20)
    assert [f["sample"] for f in memo["flagged"]] == [0, 1, 2, 3]
    assert [f["train_index"] for f in memo["flagged"]] == [0, 1, 2, 3]
    assert set(result) >= {"fid", "kid", "kid_std", "category_accuracy", "diversity_pixel_l1",
                           "diversity_feature_cosine", "per_category"}
    assert result["per_category"]["red"]["count"] == 20
    expected = (reference.embed(samples)[0].argmax(1) == 0).mean()
    assert result["category_accuracy"] == pytest.approx(expected)


def test_flat_dark_tiles_are_not_copied_by_any_dark_output():
    train = distinct_sprites(10, seed=4)
    train[0] = (12, 12, 12, 255)  # a near-black floor tile: nothing to copy but its colour
    train[0, ::3, ::5, :3] = 16
    reference = _fake_reference(train)
    dark = np.full((2, 32, 32, 4), (14, 14, 14, 255), dtype=np.uint8)  # a dark smooth output...
    dark[1] = train[0]  # ...and a real copy of the tile
    memo = evaluate_sprites(dark, np.zeros(2, np.int64), reference)["memorisation"]
    assert memo["nearest_pixel_l1"]["min"] == 0.0 and memo["nearest_pixel_l1"]["mean"] < NEAR_COPY_L1
    assert [f["sample"] for f in memo["flagged"]] == [1]


# --- the encoder ----------------------------------------------------------------------------------------------------


def test_encoder_is_registered_small_and_returns_logits_and_features():
    arch = registry.get("sprite-encoder")
    assert arch.modality == "eval" and arch.onnx
    model = SpriteEncoder(SpriteEncoderConfig.tiny()).eval()
    logits, features = model(torch.zeros(5, 4, 32, 32))
    assert logits.shape == (5, 3) and features.shape == (5, SpriteEncoderConfig.tiny().feature_dim)
    full = sum(p.numel() for p in SpriteEncoder(SpriteEncoderConfig()).parameters())
    assert 200_000 <= full <= 1_000_000


def test_training_saves_a_loadable_seeded_model_with_its_metrics(tmp_path):
    dataset = small_dataset(tmp_path / "set")
    events = []
    out = tmp_path / "a" / "sprite-encoder.safetensors"
    result = train_sprite_encoder(dataset.folder, out, TINY, events.append, CancelToken())
    assert 0.0 <= result["val_accuracy"] <= 1.0
    assert events[-1]["step"] == events[-1]["total"] == TINY.epochs * -(-len(dataset.train_labels) // 8)
    module, config, meta = load_model(out, expect_arch="sprite-encoder")
    assert config.num_classes == 3 and meta["categories"] == ["a", "b", "c"]
    assert meta["modality"] == "eval" and meta["training"]["data_sha256"] == dataset.manifest["sha256"]
    assert set(meta["metrics"]["val_accuracy_per_category"]) <= {"a", "b", "c"}
    again = tmp_path / "b" / "sprite-encoder.safetensors"
    train_sprite_encoder(dataset.folder, again, TINY, lambda e: None, CancelToken())
    other, _, _ = load_model(again)
    for (name, x), (_, y) in zip(module.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_a_paused_training_resumes_exactly_where_it_stopped(tmp_path):
    dataset = small_dataset(tmp_path / "set")
    out = tmp_path / "paused" / "sprite-encoder.safetensors"
    token = CancelToken()

    def pause_after_three(event):
        if event.get("step") == 3:
            token.cancel()

    with pytest.raises(JobCancelled):
        train_sprite_encoder(dataset.folder, out, TINY, pause_after_three, token)
    checkpoint = out.with_name("sprite-encoder.resume.pt")
    assert checkpoint.exists() and not out.exists()
    steps = []
    train_sprite_encoder(dataset.folder, out, TINY, lambda e: steps.append(e.get("step")), CancelToken(),
                         resume=True)
    assert out.exists() and not checkpoint.exists()
    assert steps[0] == 4  # went on after the third step
    straight = tmp_path / "straight" / "sprite-encoder.safetensors"
    train_sprite_encoder(dataset.folder, straight, TINY, lambda e: None, CancelToken())
    resumed, _, _ = load_model(out)
    uninterrupted, _, _ = load_model(straight)
    for (name, x), (_, y) in zip(resumed.state_dict().items(), uninterrupted.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


# --- the reference and the command ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_files(tmp_path_factory):
    """A small data set and a tiny encoder trained on it, once for the module."""
    folder = tmp_path_factory.mktemp("trained")
    dataset = small_dataset(folder / "set", per_category=16)
    weights = folder / "sprite-encoder.safetensors"
    train_sprite_encoder(dataset.folder, weights, TINY, lambda e: None, CancelToken())
    return dataset, weights


@pytest.fixture
def trained(trained_files):
    """The data set, with the encoder in this test's user model folder, where the store finds it."""
    dataset, weights = trained_files
    for path in (weights, weights.with_suffix(".json")):
        shutil.copy(path, user_models_dir() / path.name)
    return dataset


def test_reference_and_validation_subset(trained):
    reference = build_reference(trained, store=ModelStore())
    assert reference.train_features.shape == (len(trained.train_labels), SpriteEncoderConfig(width=4).feature_dim)
    cached = build_reference(trained, store=ModelStore())  # second time from the feature cache
    assert np.array_equal(cached.train_features, reference.train_features)
    shares = category_shares(trained, 7)
    assert sum(shares.values()) == 7
    images, labels = validation_subset(trained, 6, seed=0)
    assert len(images) == len(labels) <= 6
    on_train = evaluate_sprites(trained.train_images[:10], trained.train_labels[:10], reference)
    assert on_train["memorisation"]["near_copy_fraction"] == 1.0
    on_val = evaluate_sprites(trained.val_images, trained.val_labels, reference)
    assert on_val["memorisation"]["near_copy_fraction"] == 0.0


def test_eval_command_writes_json_and_updates_the_card(trained, tmp_path, capsys):
    report_path, card = tmp_path / "eval.json", tmp_path / "card.md"
    card.write_text("# A model\n\nSome words.\n")
    args = ["eval", "sprite", "--reference", "--data", str(trained.folder), "--count", "6", "--json",
            str(report_path), "--card", str(card)]
    assert main(args) == 0
    report = json.loads(report_path.read_text())
    assert report["baseline"]["count"] <= 6 and "model" not in report
    assert main(args) == 0  # a second run replaces the table instead of adding one
    text = card.read_text()
    assert text.startswith("# A model") and text.count("<!-- studio-eval:sprite -->") == 1
    assert "validation split (reference)" in text and "FID" in text
    assert main(["eval", "sprite", "--data", str(trained.folder)]) == 1
    assert "--model" in capsys.readouterr().err


def test_eval_command_generates_through_the_sprite_task(trained, tmp_path, monkeypatch):
    import studio.cli.console as console

    SpriteEncoder_meta = {"name": "fake-gen", "categories": ["a", "c"]}
    from studio.ml.checkpoint import save_model

    save_model(SpriteEncoder(SpriteEncoderConfig.tiny()), "sprite-encoder", SpriteEncoderConfig.tiny(),
               user_models_dir() / "fake-gen.safetensors", SpriteEncoder_meta)
    specs = []

    def fake_run(spec, device=None, quiet=False, resources=None):
        specs.append(spec)
        count = spec.params["count"]
        return [{"index": i, "rgba": distinct_sprites(1, seed=spec.seed + i)[0], "recipe": {}} for i in range(count)]

    monkeypatch.setattr(console, "run_in_console", fake_run)
    out = tmp_path / "eval.json"
    assert main(["eval", "sprite", "--model", "fake-gen", "--data", str(trained.folder), "--count", "9",
                 "--json", str(out), "--quiet"]) == 0
    assert [s.params["category"] for s in specs] == ["a", "c"]  # "b" is not a category of the model
    assert all(s.kind == "sprite.generate" and s.model == "fake-gen" for s in specs)
    assert len({s.seed for s in specs}) == 2
    report = json.loads(out.read_text())
    assert report["model"]["count"] == sum(s.params["count"] for s in specs)
    assert report["model"]["memorisation"]["near_copies"] == 0
    assert Path(report["data"]).name == "synthetic" or report["data"] == "synthetic"


def test_a_users_own_categories_are_measured_in_feature_space_without_an_accuracy(trained):
    """A fine-tuned model's data set has categories the encoder never saw: realism, diversity and memorisation are
    still measured; the category accuracy is reported as not measurable instead of as a failure."""
    from studio.cli.eval_sprite import to_markdown

    theirs = dataclasses.replace(trained, categories=[f"my-{c}" for c in trained.categories])
    reference = build_reference(theirs, store=ModelStore())
    result = evaluate_sprites(theirs.val_images, theirs.val_labels, reference)
    assert result["category_accuracy"] is None
    assert all(entry["accuracy"] is None for entry in result["per_category"].values())
    assert np.isfinite(result["fid"]) and result["memorisation"]["near_copy_fraction"] == 0.0
    table = to_markdown({"baseline": result, "command": "studio eval sprite", "train_count": 3, "data": "mine",
                         "encoder": "sprite-encoder"})
    assert "| category accuracy (encoder classifier) | n/a |" in table and "trained on other categories" in table
    alone = to_markdown({"model": result, "model_name": "my-gan", "command": "studio train sprite", "train_count": 3,
                         "data": "mine", "encoder": "sprite-encoder"})
    assert "| metric | my-gan |" in alone and "fewer than two validation sprites" in alone


def test_the_measures_tell_damaged_tiles_from_real_ones(trained, tmp_path):
    """Blurred, noised and specked copies of the validation tiles score far from the tiles themselves (the encoder
    distances are checked on the real data set: its card's table; a 1-epoch tiny encoder here proves nothing)."""
    report_path = tmp_path / "eval.json"
    assert main(["eval", "sprite", "--reference", "--damaged", "--data", str(trained.folder), "--count", "40",
                 "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    clean, damaged = report["baseline"], report["damaged"]
    assert set(damaged) == {"blurred", "noisy", "specked"}

    def colours(result):
        return np.mean([row["colours"] for row in result["artist"].values()])

    def speckles(result):
        return np.mean([row["speckle"] for row in result["artist"].values()])

    def fragments(result):
        return np.mean([row["fragments"] for row in result["artist"].values()])

    assert colours(damaged["blurred"]) > 3 * colours(clean) and colours(damaged["noisy"]) > 3 * colours(clean)
    assert speckles(damaged["noisy"]) > 2 * speckles(clean)
    assert fragments(damaged["specked"]) > fragments(clean) + 1.0
