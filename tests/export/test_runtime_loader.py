"""One runtime loader for every task: each registered runtime adapter loads its models on torch and on onnxruntime
as the setting says; sprites honour it (and tiles stay on torch, saying so); the registry names an adapter for every
architecture a generation task runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from studio.core import paths
from studio.core.context import JobContext
from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.core.modalities import all_modalities, runtime_adapter
from studio.core.settings import Settings
from studio.ml.export.pipeline import export_model
from studio.ml.resources import Resources
from studio.ml.runtime.gqa_lm import GqaLanguageModel
from studio.ml.runtime.ort_music import OrtMusicModel
from studio.ml.runtime.sprites import SpriteRuntime
from studio.ml.tasks import all_tasks
from studio.ml.tasks.runner import run_task
from studio.ml.text.lm import LanguageModel
from tests.export.conftest import LM, MUSIC
from tests.ml.sprite_helpers import save_tiny_model


def _resources(runtime: str) -> Resources:
    return Resources.from_settings(Settings(device="cpu", runtime=runtime, cpu_threads=1))


def test_every_generating_architecture_has_a_runtime_adapter() -> None:
    for modality in all_modalities():
        for arch, ref in modality.runtimes.items():
            adapter = ref.load()
            assert runtime_adapter(arch) == ref
            assert adapter.runtimes and adapter.key
    assert runtime_adapter("no-such-arch") is None


@pytest.mark.parametrize(("name", "torch_type", "onnx_type"), [
    (LM, LanguageModel, GqaLanguageModel),  # the CPU's first export: the fused int4 graph
    (MUSIC, nn.Module, OrtMusicModel),
])
def test_the_loader_follows_the_runtime_setting(exported_home: Path, name: str, torch_type: type,
                                                onnx_type: type) -> None:
    assert isinstance(_resources("torch").runtimes.load(name, "cpu"), torch_type)
    resources = _resources("onnxruntime")
    model = resources.runtimes.load(name, "cpu")
    assert isinstance(model, onnx_type)
    assert resources.runtimes.load(name, "cpu") is model  # kept in the worker's model cache
    assert isinstance(resources.runtimes.load(name, "cpu", runtime="torch"), torch_type)  # a task may insist


def _sprite_job(resources: Resources, params: dict) -> tuple[list[dict], list[JobEvent]]:
    events: list[JobEvent] = []
    spec = JobSpec("sprite.generate", params, seed=4, model="tiny-gan")
    return run_task(all_tasks()["sprite.generate"], spec, JobContext(spec, events.append, None, "cpu", resources)), \
        events


def test_sprites_run_on_the_runtime_the_settings_choose(studio_home: Path) -> None:
    models = paths.user_models_dir()
    save_tiny_model("gan", models, "tiny-gan")
    sidecar = models / "tiny-gan.json"  # the crawl's category names, so that floors may tile
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "categories": ["items", "floor", "wall"]}))
    export_model("tiny-gan", "fp32")
    params = {"category": "floor", "count": 3, "finish": {"enabled": False}}
    on_torch, _ = _sprite_job(_resources("torch"), params)
    resources = _resources("onnxruntime")
    assert isinstance(resources.runtimes.load("tiny-gan", "cpu"), SpriteRuntime)
    assert resources.runtimes.load("tiny-gan", "cpu").runtime == "onnxruntime"
    on_ort, _ = _sprite_job(resources, params)
    for a, b in zip(on_torch, on_ort, strict=True):  # the same sprites, up to rounding
        assert np.abs(a["raw"].astype(int) - b["raw"].astype(int)).max() <= 2
        assert a["recipe"]["seed"] == b["recipe"]["seed"]
    tiled, events = _sprite_job(resources, {**params, "tile": True})
    notes = [e.message for e in events if e.type is EventType.PROGRESS]
    assert any("drawn with PyTorch" in note for note in notes)  # tiles need the torch model's padding
    assert tiled[0]["recipe"]["params"]["tile"] is True
    held = resources.cache.keys()
    assert any(key.startswith("sprite:tiny-gan") for key in held)


def test_auto_measures_sprites_once_and_remembers(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.ml.runtime import sprites
    from studio.ml.runtime.select import CHOICES_FILE

    save_tiny_model("gan", paths.user_models_dir(), "tiny-gan")
    export_model("tiny-gan", "fp32")
    timed: list[str] = []

    def fake_seconds(self: object, model: SpriteRuntime) -> float:
        timed.append(model.runtime)
        return {"torch": 0.2, "onnxruntime": 0.1}[model.runtime]

    monkeypatch.setattr(sprites.SpriteModels, "seconds", fake_seconds)
    assert _resources("auto").runtimes.load("tiny-gan", "cpu").runtime == "onnxruntime"
    assert _resources("auto").runtimes.load("tiny-gan", "cpu").runtime == "onnxruntime"
    assert timed == ["torch", "onnxruntime"]  # measured once per machine
    choices = json.loads((paths.cache_dir() / CHOICES_FILE).read_text())
    assert list(choices.values()) == ["onnxruntime:fp32"]
