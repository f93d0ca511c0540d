"""Sprite jobs through the task table, as the engine and the CLI run them: payload contract, seeds, palettes,
variations, blends, inpainting and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from studio.cli import main
from studio.core import paths
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.context import JobContext
from studio.core.errors import BadInputError, ModelFileError
from studio.core.formats.png_meta import read_recipe
from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.ml import registry
from studio.ml.cache import ModelCache
from studio.ml.resources import Resources
from studio.ml.store import ModelStore
from studio.ml.tasks import all_tasks
from studio.ml.tasks.runner import run_task
from tests.ml.sprite_helpers import save_tiny_model, synthetic_sprites

MODELS = {"gan": "tiny-gan", "vae": "tiny-vae", "diffusion": "tiny-diffusion"}


@pytest.fixture
def resources(tmp_path: Path) -> Resources:
    for family, name in MODELS.items():
        save_tiny_model(family, paths.user_models_dir(), name)
    store = ModelStore(bundled=tmp_path / "no-bundled-models")
    return Resources(device="cpu", runtime="torch", store=store, cache=ModelCache(), cpu_threads=1)


def run(kind: str, model: str, params: dict, resources: Resources, seed: int = 0, cancel=None):
    events: list[JobEvent] = []
    spec = JobSpec(kind, params, seed=seed, model=model)
    ctx = JobContext(spec, events.append, cancel, "cpu", resources)
    return run_task(all_tasks()[kind], spec, ctx), events


def sprite(seed: int = 0) -> np.ndarray:
    images, _ = synthetic_sprites(1, seed)
    return images[0]


@pytest.mark.parametrize("family", list(MODELS))
def test_generate_follows_the_payload_contract(family: str, resources: Resources) -> None:
    params = {"category": "discs", "count": 3, "palette": "none", "steps": 3, "guidance": 2.0}
    result, events = run("sprite.generate", MODELS[family], params, resources, seed=7)
    partials = [e.payload for e in events if e.type is EventType.PARTIAL]
    assert [p["index"] for p in partials] == [0, 1, 2]
    assert len(result) == 3
    for i, item in enumerate(result):
        assert set(item) == {"index", "rgba", "raw", "recipe"} and item["index"] == i
        assert item["rgba"].shape == (32, 32, 4) and item["rgba"].dtype == np.uint8
        assert set(np.unique(item["rgba"][..., 3])) <= {0, 255}, "alpha is snapped for pixel art"
        recipe = item["recipe"]
        assert set(recipe) == {"model", "model_sha256", "kind", "seed", "params", "size"}
        assert recipe["model"] == MODELS[family] and recipe["kind"] == "sprite.generate"
        assert recipe["seed"] == 7 + i and recipe["size"] == "32x32" and len(recipe["model_sha256"]) == 64
        finish = {"enabled": True, "max_colours": 16, "outline": False, "wrap": False}
        assert recipe["params"] == {**params, "prompt": "", "tags": [], "tile": False, "finish": finish}
        assert np.array_equal(item["rgba"], partials[i]["rgba"])
    assert any(e.type is EventType.PROGRESS for e in events)


@pytest.mark.parametrize("family", list(MODELS))
def test_sprite_i_is_reproducible_alone_from_seed_plus_i(family: str, resources: Resources) -> None:
    params = {"category": "bars", "count": 4, "steps": 2}
    batch, _ = run("sprite.generate", MODELS[family], params, resources, seed=20)
    again, _ = run("sprite.generate", MODELS[family], params, resources, seed=20)
    alone, _ = run("sprite.generate", MODELS[family], {**params, "count": 1}, resources, seed=22)
    assert all(np.array_equal(a["rgba"], b["rgba"]) for a, b in zip(batch, again, strict=True))
    assert np.array_equal(batch[2]["rgba"], alone[0]["rgba"])


def test_palettes_limit_the_colours(resources: Resources, tmp_path: Path) -> None:
    auto, _ = run("sprite.generate", "tiny-gan", {"category": "squares", "count": 2, "palette": "auto-3"}, resources)
    for item in auto:
        opaque = item["rgba"][item["rgba"][..., 3] == 255][:, :3]
        assert len(np.unique(opaque, axis=0)) <= 3
    palette_file = tmp_path / "two.hex"
    palette_file.write_text("ff0000\n0000ff\n")
    fixed, _ = run("sprite.generate", "tiny-gan",
                   {"category": "squares", "count": 2, "palette": str(palette_file)}, resources)
    colours = {tuple(c) for item in fixed for c in item["rgba"][item["rgba"][..., 3] == 255][:, :3]}
    assert colours <= {(255, 0, 0), (0, 0, 255)}


def test_variations_stay_near_the_sprite_and_strength_zero_repeats_it(resources: Resources) -> None:
    source = sprite()
    params = {"rgba": source, "category": "squares", "count": 3, "strength": 0.0}
    same, events = run("sprite.variations", "tiny-vae", params, resources, seed=1)
    assert len(same) == 3 and len([e for e in events if e.type is EventType.PARTIAL]) == 3
    assert all(np.array_equal(same[0]["rgba"], item["rgba"]) for item in same)
    varied, _ = run("sprite.variations", "tiny-vae", {**params, "strength": 1.0}, resources, seed=1)
    assert not all(np.array_equal(varied[0]["rgba"], item["rgba"]) for item in varied)
    recipe = varied[1]["recipe"]
    assert recipe["seed"] == 2 and recipe["params"]["rgba"].startswith("sha256:")
    assert recipe["params"]["strength"] == 1.0


def test_blend_gives_the_requested_frames(resources: Resources) -> None:
    params = {"a": sprite(0), "b": sprite(5), "category": "discs", "frames": 5}
    frames, events = run("sprite.blend", "tiny-vae", params, resources)
    assert [f["index"] for f in frames] == [0, 1, 2, 3, 4]
    assert len([e for e in events if e.type is EventType.PARTIAL]) == 5
    assert all(f["rgba"].shape == (32, 32, 4) for f in frames)


def test_inpaint_redraws_only_the_masked_pixels(resources: Resources) -> None:
    source = sprite(3)
    mask = np.zeros((32, 32), dtype=bool)
    mask[4:12, 4:20] = True
    result, _ = run("sprite.inpaint", "tiny-diffusion",
                    {"rgba": source, "mask": mask, "category": "squares", "steps": 3}, resources, seed=4)
    assert set(result) == {"rgba", "recipe"}
    assert np.array_equal(result["rgba"][~mask], source[~mask])
    assert not np.array_equal(result["rgba"][mask], source[mask])
    assert result["recipe"]["params"]["mask"].startswith("sha256:") and result["recipe"]["seed"] == 4


@pytest.mark.parametrize(
    ("kind", "model", "params", "error", "message"),
    [
        ("sprite.generate", "tiny-gan", {"category": "dragons"}, BadInputError, "knows: squares, discs, bars"),
        ("sprite.generate", "tiny-gan", {"category": "bars", "count": 0}, BadInputError, "count"),
        ("sprite.generate", "tiny-gan", {"category": "bars", "palette": "auto-1000"}, BadInputError, "palette"),
        ("sprite.generate", "nobody", {"category": "bars"}, ModelFileError, "no model named"),
        ("sprite.variations", "tiny-gan", {"rgba": sprite(), "category": "bars"}, BadInputError, "needs a VAE"),
        ("sprite.inpaint", "tiny-vae", {"rgba": sprite(), "mask": np.ones((32, 32), bool), "category": "bars"},
         BadInputError, "needs a DIFFUSION"),
        ("sprite.variations", "tiny-vae", {"rgba": np.zeros((16, 16, 4), np.uint8), "category": "bars"},
         BadInputError, "16x16"),
        ("sprite.inpaint", "tiny-diffusion", {"rgba": sprite(), "mask": np.ones((32, 32)), "category": "bars"},
         BadInputError, "mask"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kind, model, params, error, message, resources) -> None:
    with pytest.raises(error, match=message):
        run(kind, model, params, resources)


def test_a_model_file_of_another_architecture_is_refused(resources: Resources) -> None:
    weights = paths.user_models_dir() / "tiny-gan.safetensors"
    vae = paths.user_models_dir() / "tiny-vae.safetensors"
    save_file(load_file(str(vae)), str(weights))  # a GAN sidecar beside VAE weights that carry no sidecar inside
    with pytest.raises(ModelFileError, match="does not match the sprite-gan architecture"):
        run("sprite.generate", "tiny-gan", {"category": "bars"}, resources)


def test_the_loaded_model_is_cached_once(resources: Resources) -> None:
    run("sprite.generate", "tiny-gan", {"category": "bars", "count": 1}, resources)
    run("sprite.generate", "tiny-gan", {"category": "bars", "count": 1}, resources, seed=3)
    cached = resources.cache.keys()
    assert len([k for k in cached if "tiny-gan" in k]) == 1


def test_cancel_stops_between_sprites(resources: Resources) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        run("sprite.generate", "tiny-diffusion", {"category": "bars", "count": 4, "steps": 3}, resources,
            cancel=token)


def test_cli_writes_one_png_per_sprite_with_its_recipe(resources: Resources, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["generate", "sprite", "--model", "tiny-gan", "--category", "discs", "--count", "3",
                 "--seed", "7", "--out", str(out), "--quiet"])
    assert code == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"tiny-gan-discs-{s}.png" for s in (7, 8, 9)]
    assert read_recipe(files[1])["seed"] == 8
    main(["generate", "sprite", "--model", "tiny-gan", "--category", "discs", "--count", "1", "--out",
          str(tmp_path / "private"), "--no-metadata", "--quiet"])
    assert read_recipe(next((tmp_path / "private").glob("*.png"))) is None


@pytest.mark.slow  # a real side-by-side benchmark: exports every model to ONNX first (minutes on 2 cores)
def test_cli_bench_writes_json_and_markdown(resources: Resources, tmp_path: Path) -> None:
    import json

    code = main(["bench", "sprite", "--models", *MODELS.values(), "--repeats", "1", "--warmup", "0", "--no-compile",
                 "--steps", "2", "--json", str(tmp_path / "b.json"), "--md", str(tmp_path / "b.md")])
    assert code == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["machine"]
    rows = report["sprites"]["rows"]
    assert {r["model"] for r in rows} == set(MODELS.values())
    assert {r["runtime"] for r in rows} == {"torch eager", "onnxruntime"}
    assert all(r["status"] == "ok" and r["grid16"]["median_ms"] > 0 for r in rows)
    assert set(report["sprites"]["targets"]) == set(MODELS.values())
    assert "| tiny-diffusion (2 steps, guidance 2.0) |" in (tmp_path / "b.md").read_text()



def test_a_model_that_is_not_a_sprite_generator_is_refused(resources: Resources) -> None:
    from studio.ml import registry
    from studio.ml.checkpoint import save_model

    other = next(a for a in registry.all_architectures() if a.modality != "sprite")
    config = other.tiny_config()
    save_model(other.build(config), other.name, config, paths.user_models_dir() / "other.safetensors",
               {"name": "other", "modality": other.modality})
    with pytest.raises(BadInputError, match="not a sprite generator"):
        run("sprite.generate", "other", {"category": "bars"}, resources)


def _learnt_tags(resources: Resources, name: str) -> None:
    """Give a tiny model's tag tables values (they start at zero) so that words change its sprites."""
    import torch

    from studio.ml.models.sprite_common import TagEmbedding
    from studio.ml.tasks.sprite import _load

    spec = JobSpec("sprite.generate", {}, seed=0, model=name)
    model = _load(JobContext(spec, lambda e: None, None, "cpu", resources), name)
    torch.manual_seed(3)
    for table in (m for m in model.net.modules() if isinstance(m, TagEmbedding)):
        torch.nn.init.normal_(table.weight, std=2.0)
    if hasattr(model.net, "conv_out"):
        torch.nn.init.normal_(model.net.conv_out.weight, std=0.05)


@pytest.mark.parametrize("family", list(MODELS))
def test_prompt_words_condition_the_sprites_and_go_into_the_recipe(family: str, resources: Resources) -> None:
    _learnt_tags(resources, MODELS[family])
    params = {"category": "discs", "count": 2, "steps": 2}
    plain, _ = run("sprite.generate", MODELS[family], params, resources, seed=4)
    worded, events = run("sprite.generate", MODELS[family], {**params, "prompt": "Red, large and laser!"},
                         resources, seed=4)
    assert worded[0]["recipe"]["params"]["tags"] == ["red", "large"]
    assert worded[0]["recipe"]["params"]["prompt"] == "Red, large and laser!"
    assert any("'laser'" in e.message for e in events)  # the unknown word is reported, not fatal
    assert not np.array_equal(plain[0]["rgba"], worded[0]["rgba"])


def test_prompt_alone_infers_the_category_and_bad_prompts_are_explained(resources: Resources) -> None:
    result, _ = run("sprite.generate", "tiny-gan", {"prompt": "blue", "count": 1}, resources)
    assert result[0]["recipe"]["params"]["category"] == "bars"  # where "blue" occurs most (sprite_helpers)
    with pytest.raises(BadInputError, match=r"knows none of the words.*'dragn'.*Words it knows include: red"):
        run("sprite.generate", "tiny-gan", {"prompt": "dragn wizardry", "count": 1}, resources)
    with pytest.raises(BadInputError, match="pick a category or type a few words"):
        run("sprite.generate", "tiny-gan", {"prompt": "   ", "count": 1}, resources)
    long, _ = run("sprite.generate", "tiny-gan", {"prompt": "red " + "x" * 5000, "count": 1}, resources)
    assert long[0]["recipe"]["params"]["tags"] == ["red"] and len(long[0]["recipe"]["params"]["prompt"]) == 2000
    with pytest.raises(BadInputError, match="must be text"):
        run("sprite.generate", "tiny-gan", {"prompt": ["red"], "count": 1}, resources)


def test_cli_generates_from_a_prompt(resources: Resources, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["generate", "sprite", "--model", "tiny-vae", "--prompt", "green small", "--count", "2",
                 "--out", str(out), "--quiet"]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == ["tiny-vae-green-small-0.png", "tiny-vae-green-small-1.png"]
    assert read_recipe(files[0])["params"]["tags"] == ["green", "small"]


@pytest.mark.parametrize("family", list(MODELS))
def test_the_pixel_art_finish_runs_by_default_and_can_be_switched_off(family: str, resources: Resources) -> None:
    from studio.core.pixel_art import colour_counts, shape_counts

    params = {"category": "discs", "count": 4, "steps": 2}
    finished, _ = run("sprite.generate", MODELS[family], params, resources, seed=2)
    raw_rgba = np.stack([item["raw"] for item in finished])
    rgba = np.stack([item["rgba"] for item in finished])
    assert (colour_counts(rgba) <= 16).all() and colour_counts(raw_rgba).max() > 16  # untrained: noisy
    assert shape_counts(rgba)[1].sum() <= shape_counts(raw_rgba)[1].sum()
    off, _ = run("sprite.generate", MODELS[family], {**params, "finish": {"enabled": False}}, resources, seed=2)
    assert off[0]["recipe"]["params"]["finish"]["enabled"] is False
    assert np.array_equal(off[0]["raw"], finished[0]["raw"])  # same model output, finished or not
    visible = off[0]["rgba"][..., 3] == 255
    assert np.array_equal(off[0]["rgba"][visible, :3], off[0]["raw"][visible, :3])


def test_tiles_are_drawn_with_wrap_around_padding_and_only_for_tile_categories(tmp_path: Path) -> None:
    from studio.ml.models.sprite_common import circular_padding

    for family, name in MODELS.items():
        save_tiny_model(family, paths.user_models_dir(), name)
    sidecar = paths.user_models_dir() / "tiny-gan.json"  # call the tiny model's categories by the crawl names
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "categories": ["items", "floor", "wall"]}))
    store = ModelStore(bundled=tmp_path / "none")
    resources = Resources(device="cpu", runtime="torch", store=store, cache=ModelCache(), cpu_threads=1)
    tiled, _ = run("sprite.generate", "tiny-gan", {"category": "floor", "count": 1, "tile": True}, resources)
    plain, _ = run("sprite.generate", "tiny-gan", {"category": "floor", "count": 1}, resources)
    assert tiled[0]["recipe"]["params"]["tile"] is True and tiled[0]["recipe"]["params"]["finish"]["wrap"] is True
    assert not np.array_equal(tiled[0]["raw"], plain[0]["raw"])  # the edges were drawn knowing the other side
    with pytest.raises(BadInputError, match="only floor and wall sprites can tile"):
        run("sprite.generate", "tiny-gan", {"category": "items", "count": 1, "tile": True}, resources)
    arch = registry.get("sprite-gan")
    model = arch.build(arch.tiny_config())
    padded = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.padding != (0, 0)]
    with circular_padding(model):
        assert {m.padding_mode for m in padded} == {"circular"}
    assert {m.padding_mode for m in padded} == {"zeros"}


def test_cli_finish_and_tile_flags_reach_the_recipe(resources: Resources, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["generate", "sprite", "--model", "tiny-gan", "--category", "discs", "--raw", "--count", "1",
                 "--out", str(out), "--quiet"]) == 0
    assert read_recipe(next(out.glob("*.png")))["params"]["finish"]["enabled"] is False
    assert main(["generate", "sprite", "--model", "tiny-gan", "--category", "discs", "--tile", "--count", "1",
                 "--out", str(out), "--quiet"]) == 1  # discs are no tiles: refused with a message
