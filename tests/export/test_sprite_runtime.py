"""Sprites through a graph runner (what the sprite task calls to honour the runtime setting) equal the torch
sampler's, on torch and on onnxruntime, for each tiny sprite family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.ml import registry
from studio.ml.export.onnx_export import export_architecture
from studio.ml.models.sprite_common import TagEmbedding
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import OrtGraphRunner, TorchGraphRunner
from studio.ml.runtime.sprites import GRAPHS, sample_sprites
from studio.ml.sampling.sprites import generate, seeded_generators


@pytest.mark.parametrize("arch_name", ["sprite-gan", "sprite-vae", "sprite-diffusion"])
def test_runners_make_the_sprites_the_torch_sampler_makes(arch_name: str, tmp_path: Path) -> None:
    arch = registry.get(arch_name)
    config = arch.tiny_config()
    torch.manual_seed(0)
    module = arch.build(config).eval()
    graph = next(g for g in arch.onnx if g.name == GRAPHS[module.family])
    for table in (m for m in module.modules() if isinstance(m, TagEmbedding)):
        torch.nn.init.normal_(table.weight)  # learnt tags, not the zero start
    if module.family == "diffusion":
        torch.nn.init.normal_(module.conv_out.weight, std=0.05)  # zero at the start: the tags would not show
    export = export_architecture(arch, module, config, tmp_path, graphs=[graph.name])[0]
    labels = torch.arange(5) % config.num_classes
    tags = torch.zeros(5, config.num_tags)
    tags[0, 1] = tags[1, 2] = tags[1, 3] = 1.0  # two sprites with words, three by category alone
    want = generate(module, labels, seeded_generators(7, 5), steps=3, guidance=2.0, tags=tags)
    assert not torch.allclose(want, generate(module, labels, seeded_generators(7, 5), steps=3, guidance=2.0))
    steps: list[tuple[int, int]] = []
    eager = sample_sprites(TorchGraphRunner(module, graph, "cpu"), module, labels, seeded_generators(7, 5), 3, 2.0,
                           on_step=lambda done, total: steps.append((done, total)), tags=tags)
    torch.testing.assert_close(eager, want, atol=5e-4, rtol=1e-3)  # eps converted in the graph, back in DDIM
    assert steps[-1] == ((3, 3) if module.family == "diffusion" else (1, 1))
    ort = OrtGraphRunner(open_session(export.path, "cpu", graph=graph), graph.inputs_for(config), "cpu")
    got = sample_sprites(ort, module, labels, seeded_generators(7, 5), 3, 2.0, tags=tags)
    torch.testing.assert_close(got, want, atol=2e-3, rtol=1e-3)


def test_a_model_with_words_runs_on_onnxruntime_without_any(tmp_path: Path) -> None:
    arch = registry.get("sprite-gan")
    config = arch.tiny_config()
    module = arch.build(config).eval()
    graph = arch.onnx[0]
    export = export_architecture(arch, module, config, tmp_path, graphs=[graph.name])[0]
    ort = OrtGraphRunner(open_session(export.path, "cpu", graph=graph), graph.inputs_for(config), "cpu")
    labels = torch.arange(3) % config.num_classes
    got = sample_sprites(ort, module, labels, seeded_generators(1, 3), 3, 2.0)  # no tags: the category alone
    want = generate(module, labels, seeded_generators(1, 3), steps=3, guidance=2.0)
    torch.testing.assert_close(got, want, atol=2e-3, rtol=1e-3)
