"""Fine-tuning sprite models: a run that starts from a trained model, with the user's own categories."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from studio.cli import main
from studio.core import paths
from studio.core.errors import BadInputError, ModelFileError
from studio.ml import registry
from studio.ml.checkpoint import load_model
from studio.ml.train.sprite import FINE_TUNE_LR_SCALE, PRESETS, SpriteTrainConfig, train_sprite
from studio.ml.train.warm_start import load_base_weights, read_base_model
from tests.ml.sprite_helpers import ARCHS, CATEGORIES, make_dataset, save_tiny_model, synthetic_sprites

# The user's categories: "discs" is one the base knows (under another case), "robots" is new.
USER_CATEGORIES = ["Discs", "robots"]


def user_dataset(folder: Path) -> Path:
    """A data set with the user's categories (discs and bars relabelled)."""
    make_dataset(folder)
    for split in ("train", "val"):
        arrays = dict(np.load(folder / f"{split}.npz"))
        arrays["labels"] = (arrays["labels"] == 2).astype(np.int64)  # squares+discs -> Discs, bars -> robots
        np.savez(folder / f"{split}.npz", **arrays)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "categories": USER_CATEGORIES}))
    return folder


def tiny_config(family: str, data: Path, run: Path, base: Path | None, **changes) -> SpriteTrainConfig:
    settings = SpriteTrainConfig(
        family=family, data=data, run_dir=run, preset="quick", max_steps=2, batch_size=4, sample_every=2,
        checkpoint_every=2, device="cpu", init_from=base,
    )
    return dataclasses.replace(settings, **changes)


@pytest.mark.parametrize("family", ["gan", "vae", "diffusion"])
def test_base_weights_carry_over_and_category_rows_follow_the_names(family: str, tmp_path: Path) -> None:
    base_path = save_tiny_model(family, tmp_path, "base", seed=3)
    base = read_base_model(base_path, ARCHS[family])
    arch = registry.get(ARCHS[family])
    config = dataclasses.replace(arch.config_cls(**base.config), num_classes=len(USER_CATEGORIES))
    model = arch.build(config)

    origin = load_base_weights(model, base, USER_CATEGORIES)

    assert origin == {"Discs": "discs", "robots": "mean"}
    state = model.state_dict()
    remapped = [k for k in state if state[k].shape != base.state[k].shape]
    assert remapped, "the category tables shrink from 3 to 2 rows"
    for key, value in state.items():
        source = base.state[key]
        if key in remapped:
            assert torch.equal(value[0], source[1])  # Discs keeps the base's "discs" row
            assert torch.allclose(value[1], source[:3].mean(dim=0))  # robots starts from the mean category
            assert torch.equal(value[2:], source[3:])  # a "no class" row (diffusion) is kept
        else:
            assert torch.equal(value, source), key


@pytest.mark.parametrize("family", ["gan", "diffusion"])
def test_a_fine_tune_run_starts_from_the_base_keeps_its_size_and_records_it(family: str, tmp_path: Path) -> None:
    base_path = save_tiny_model(family, tmp_path, "base")
    events: list[dict] = []
    data = user_dataset(tmp_path / "mine")
    result = train_sprite(tiny_config(family, data, tmp_path / "run", base_path), events.append)

    assert events[0] == {"event": "info", "message": "fine-tuning base (Discs from discs, robots new)"}
    assert [e["step"] for e in events[1:]] == [1, 2]
    _, config, meta = load_model(result.model_path)
    base_config = json.loads(base_path.with_suffix(".json").read_text())["config"]
    words = json.loads((data / "manifest.json").read_text())["tags"]["words"]
    assert config.num_tags == len(words) and meta["tags"]["words"] == words  # the data's vocabulary, not the base's
    assert {**dataclasses.asdict(config), "num_classes": 3, "num_tags": base_config["num_tags"]} == base_config
    assert meta["categories"] == USER_CATEGORIES
    init = meta["training"]["init_from"]
    assert init["sha256"] == hashlib.sha256(base_path.read_bytes()).hexdigest()
    assert init["categories"] == CATEGORIES
    assert meta["training"]["hyper"]["lr"] == pytest.approx(PRESETS[family]["quick"].hyper.lr * FINE_TUNE_LR_SCALE)


def test_resuming_a_fine_tune_continues_it_and_another_base_is_refused(tmp_path: Path) -> None:
    data = user_dataset(tmp_path / "mine")
    base_path = save_tiny_model("vae", tmp_path, "base")
    events: list[dict] = []
    on_event = events.append
    first = tiny_config("vae", data, tmp_path / "run", base_path, max_steps=1)
    train_sprite(first, on_event)
    resumed = train_sprite(dataclasses.replace(first, max_steps=2, resume=True), on_event)
    assert resumed.steps == 2
    assert not any(e.get("event") == "info" for e in events[2:])  # a resume loads the checkpoint
    other = save_tiny_model("vae", tmp_path, "other", seed=9)
    with pytest.raises(BadInputError, match="init_from"):
        train_sprite(dataclasses.replace(first, max_steps=3, resume=True, init_from=other), on_event)


def test_bad_bases_get_clear_messages(tmp_path: Path) -> None:
    data = user_dataset(tmp_path / "mine")
    gan = save_tiny_model("gan", tmp_path, "a-gan")
    with pytest.raises(ModelFileError, match="a 'sprite-gan' model: a sprite-vae run cannot start from it"):
        train_sprite(tiny_config("vae", data, tmp_path / "run", gan), lambda e: None)
    with pytest.raises(BadInputError, match="--set cannot change a model you fine-tune"):
        train_sprite(tiny_config("gan", data, tmp_path / "run2", gan, model={"g_width": 8}), lambda e: None)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    broken.with_suffix(".json").write_text(gan.with_suffix(".json").read_text())
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        train_sprite(tiny_config("gan", data, tmp_path / "run3", broken), lambda e: None)


def write_png_folder(folder: Path, count: int) -> Path:
    images, _ = synthetic_sprites(count, seed=5)
    (folder / "knights").mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image, "RGBA").save(folder / "knights" / f"{i}.png")
    return folder


def test_cli_fine_tunes_the_bundled_model_on_your_own_pngs_unless_scratch(tmp_path: Path, capsys) -> None:
    pngs = write_png_folder(tmp_path / "my-sprites", 24)
    bundled = paths.repo_root() / "models" / "sprite-gan.safetensors"
    common = ["train", "sprite", "--model", "gan", "--data", str(pngs), "--preset", "quick", "--max-steps", "1",
              "--batch-size", "2", "--events"]
    assert main([*common, "--out", str(tmp_path / "tuned"), "--name", "my-knights"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # A category the bundled model lacks starts from the one the bundled encoder files the user's sprites under.
    started = re.fullmatch(r"fine-tuning sprite-gan \(knights from (\w+) \(closest\)\)", lines[0]["message"])
    assert lines[0]["event"] == "info" and started, lines[0]
    _, _, meta = load_model(tmp_path / "tuned" / "model.safetensors")
    assert meta["training"]["init_from"]["sha256"] == hashlib.sha256(bundled.read_bytes()).hexdigest()
    base_rows = load_file(str(bundled))["generator.embed.weight"]
    tuned_rows = load_file(str(tmp_path / "tuned" / "model.safetensors"))["generator.embed.weight"]
    assert tuned_rows.shape[0] == 1
    nearest = int((base_rows - tuned_rows[0]).norm(dim=1).argmin())  # one small step keeps it next to its start
    assert json.loads(bundled.with_suffix(".json").read_text())["categories"][nearest] == started[1]
    card = (paths.user_models_dir() / "my-knights.md").read_text(encoding="utf-8")
    assert "fine-tuned from `sprite-gan`" in card

    assert main([*common, "--scratch", "--out", str(tmp_path / "fresh")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(line["event"] != "info" for line in lines)
    _, _, meta = load_model(tmp_path / "fresh" / "model.safetensors")
    assert "init_from" not in meta["training"]


def test_tag_tables_carry_over_by_word_and_new_words_start_at_zero(tmp_path: Path) -> None:
    base_path = save_tiny_model("diffusion", tmp_path, "base")
    base = read_base_model(base_path, "sprite-diffusion")
    torch.manual_seed(1)
    base.state["tag_embed.weight"].normal_()
    words = ["blue", "striped", "red"]  # two words the base knows (in another order) and one it does not
    arch = registry.get("sprite-diffusion")
    model = arch.build(dataclasses.replace(arch.tiny_config(), num_classes=3, num_tags=len(words)))
    load_base_weights(model, base, CATEGORIES, tags=words)
    table = model.tag_embed.weight.detach()
    assert torch.equal(table[0], base.state["tag_embed.weight"][base.tags.index("blue")])
    assert torch.equal(table[1], torch.zeros_like(table[1]))
    assert torch.equal(table[2], base.state["tag_embed.weight"][base.tags.index("red")])
