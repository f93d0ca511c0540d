"""Sprite jobs through the task table, as the engine and the CLI run them: payload contract, seeds, palettes,
variations, blends, inpainting and clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from studio.cli import main
from studio.core import paths
from studio.core.cancel import CancelToken, JobCancelled
from studio.core.context import JobContext
from studio.core.errors import BadInputError, ModelFileError
from studio.core.formats.png_meta import read_recipe
from studio.core.jobs import EventType, JobEvent, JobSpec
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
        assert set(item) == {"index", "rgba", "recipe"} and item["index"] == i
        assert item["rgba"].shape == (32, 32, 4) and item["rgba"].dtype == np.uint8
        assert set(np.unique(item["rgba"][..., 3])) <= {0, 255}, "alpha is snapped for pixel art"
        recipe = item["recipe"]
        assert set(recipe) == {"model", "model_sha256", "kind", "seed", "params", "size"}
        assert recipe["model"] == MODELS[family] and recipe["kind"] == "sprite.generate"
        assert recipe["seed"] == 7 + i and recipe["size"] == "32x32" and len(recipe["model_sha256"]) == 64
        assert recipe["params"] == params
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
