"""The CUDA paths, run on a machine with an NVIDIA GPU (`pytest -m gpu tests/gpu`, which packaging/gpu_check.sh
runs on the GPU machine): sprite sampling and training on the GPU, the task runner's out-of-memory fallbacks with a
real CUDA out-of-memory error, the language model on the GPU, and onnxruntime's CUDA provider where it is installed.

These modules import neither Qt nor the GGUF reader, so they also run where only torch is installed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core import paths
from studio.core.context import JobContext
from studio.core.jobs import EventType, JobEvent, JobSpec
from studio.ml import registry
from studio.ml.cache import ModelCache
from studio.ml.models.llama import Llama, LlamaConfig
from studio.ml.models.sprite_common import TagEmbedding
from studio.ml.resources import Resources
from studio.ml.sampling.sprites import generate, seeded_generators
from studio.ml.store import ModelStore
from studio.ml.tasks import all_tasks
from studio.ml.tasks.runner import run_task
from studio.ml.train.sprite import SpriteTrainConfig, train_sprite
from tests.ml.sprite_helpers import ARCHS, make_dataset, save_tiny_model, tiny_overrides

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _tiny(family: str) -> torch.nn.Module:
    arch = registry.get(ARCHS[family])
    torch.manual_seed(0)
    model = arch.build(arch.tiny_config()).eval()
    for table in (m for m in model.modules() if isinstance(m, TagEmbedding)):
        torch.nn.init.normal_(table.weight)
    if family == "diffusion":
        torch.nn.init.normal_(model.conv_out.weight, std=0.05)
    return model


@pytest.mark.parametrize("family", list(ARCHS))
def test_sprites_on_the_gpu_are_the_sprites_of_the_cpu(family: str) -> None:
    model = _tiny(family)
    labels = torch.arange(6) % model.config.num_classes
    tags = torch.zeros(6, model.config.num_tags)
    tags[::2, 1] = 1.0
    cpu = generate(model, labels, seeded_generators(3, 6), steps=4, guidance=2.0, tags=tags)
    gpu = generate(model.cuda(), labels, seeded_generators(3, 6), steps=4, guidance=2.0, tags=tags)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=5e-3, rtol=1e-2)  # cuDNN may use TF32 for convolutions


def _resources(tmp_path: Path, device: str) -> Resources:
    for family in ARCHS:
        save_tiny_model(family, paths.user_models_dir(), f"tiny-{family}")
    return Resources(device=device, runtime="torch", store=ModelStore(bundled=tmp_path / "none"), cache=ModelCache(),
                     cpu_threads=2)


@pytest.mark.parametrize("family", list(ARCHS))
def test_the_sprite_task_runs_on_the_gpu_with_a_prompt(family: str, tmp_path: Path) -> None:
    resources = _resources(tmp_path, "cuda")
    spec = JobSpec("sprite.generate", {"prompt": "red large", "count": 5, "steps": 3}, seed=1, model=f"tiny-{family}")
    events: list[JobEvent] = []
    ctx = JobContext(spec, events.append, None, "cuda", resources)
    result = run_task(all_tasks()["sprite.generate"], spec, ctx)
    assert len(result) == 5 and all(r["rgba"].dtype == np.uint8 for r in result)
    assert result[0]["recipe"]["params"]["tags"] == ["red", "large"]
    assert not any("CPU" in e.message for e in events)  # it stayed on the GPU


def _greedy_task(spec: JobSpec, ctx: JobContext) -> str:
    """Asks for far more GPU memory than exists unless its batch was made smaller (or it runs on the CPU)."""
    if ctx.device == "cuda":
        size = 1 << 45 if ctx.batch_scale >= 1.0 or spec.params.get("always") else 1 << 20
        torch.empty(size, dtype=torch.uint8, device="cuda")
    return f"{ctx.device} at {ctx.batch_scale}"


@pytest.mark.parametrize(("always", "expected"), [(False, "cuda at 0.5"), (True, "cpu at 0.5")])
def test_a_real_out_of_memory_error_is_retried_smaller_then_on_the_cpu(always: bool, expected: str) -> None:
    spec = JobSpec("test.greedy", {"always": always}, seed=0, model="none")
    events: list[JobEvent] = []
    ctx = JobContext(spec, events.append, None, "cuda", None)
    assert run_task(_greedy_task, spec, ctx) == expected
    notes = [e.message for e in events if e.type is EventType.PROGRESS]
    assert "The GPU ran out of memory: retrying in smaller batches." in notes
    assert ("running this job on the CPU" in " ".join(notes)) is always


@pytest.mark.parametrize("family", list(ARCHS))
def test_training_runs_on_the_gpu_with_tags(family: str, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data")
    settings = SpriteTrainConfig(family=family, data=data, run_dir=tmp_path / "run", preset="gpu", max_steps=3,
                                 batch_size=8, sample_every=3, checkpoint_every=3, device="cuda",
                                 model=tiny_overrides(family))
    events: list[dict] = []
    result = train_sprite(settings, events.append)
    assert [e["step"] for e in events] == [1, 2, 3]
    assert all(np.isfinite(v) for v in result.metrics.values())
    meta = json.loads(result.model_path.with_suffix(".json").read_text())
    assert meta["training"]["hardware"].startswith("CUDA: ") and meta["tags"]["words"]


def test_the_language_model_decodes_the_same_tokens_on_the_gpu() -> None:
    config = LlamaConfig(vocab_size=300, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=128, max_seq_len=64,
                         rope_theta=10000.0)
    torch.manual_seed(0)
    cpu = Llama(config).eval()
    gpu = Llama(dataclasses.replace(config)).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    tokens = torch.randint(0, 300, (1, 12))
    with torch.no_grad():
        want, _ = cpu(tokens)
        got, _ = gpu(tokens.cuda())
    torch.testing.assert_close(got.float().cpu(), want, atol=2e-3, rtol=2e-3)
    assert torch.equal(got.argmax(-1).cpu(), want.argmax(-1))


def test_onnxruntime_uses_the_cuda_provider_where_it_is_installed(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime has no CUDA provider ({', '.join(ort.get_available_providers())}); "
                    "Studio installs onnxruntime-gpu on NVIDIA machines")
    from studio.ml.export.onnx_export import export_architecture
    from studio.ml.runtime.ort_session import open_session
    from studio.ml.runtime.runners import OrtGraphRunner

    arch = registry.get("sprite-gan")
    model = _tiny("gan")
    graph = arch.onnx[0]
    export = export_architecture(arch, model, model.config, tmp_path, graphs=[graph.name])[0]
    session = open_session(export.path, "cuda", graph=graph)
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    inputs = graph.example_inputs(model.config, 4)
    got = OrtGraphRunner(session, graph.inputs_for(model.config), "cuda")(*inputs)[0]
    torch.testing.assert_close(got.cpu(), model(*inputs), atol=1e-3, rtol=1e-3)
