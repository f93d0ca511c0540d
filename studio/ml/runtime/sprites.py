"""Sprite models on the runtime loader (:mod:`studio.ml.runtime.loader`): on torch the sampler of
:mod:`studio.ml.sampling.sprites` itself; on onnxruntime the same sampling with every network call going to the
exported graph (the GAN generator, the VAE decoder or the guided diffusion step).

The diffusion graph is the guided step (classifier-free guidance inside the graph, one batched call), so DDIM runs
it as a plain noise predictor with guidance 1.0. Latents and noise still come from the torch model's seeded
generators, so sprite ``i`` is the same sprite on either runtime. Seamless tiles need the torch model: an exported
graph's padding is fixed when it is exported, so it cannot wrap around.

Usage (what the ``sprite.generate`` task calls)::

    sprites = ctx.resources.runtimes.load(name, ctx.device)       # a SpriteRuntime, torch or onnxruntime
    images = sprites.generate(labels, seeded_generators(seed, count), steps, guidance, on_step=..., tags=...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from studio.ml import registry
from studio.ml.cache import module_bytes
from studio.ml.checkpoint import load_model
from studio.ml.runtime.exports import ExportRecord
from studio.ml.runtime.loader import MEASURE_BATCH, ExportedModels, RuntimeLoader, median_seconds
from studio.ml.runtime.runners import GraphRunner, TorchGraphRunner
from studio.ml.sampling.ddim import ddim_sample
from studio.ml.sampling.sprites import StepCallback, family_of, generate
from studio.ml.store import ModelEntry

GRAPHS = {"gan": "generator", "vae": "decoder", "diffusion": "unet_step"}


class GuidedStep:
    """The exported guided step as the noise predictor ``eps = net(x, t, labels)`` that DDIM calls."""

    def __init__(self, runner: GraphRunner, guidance: float) -> None:
        self.runner = runner
        self.guidance = guidance

    def __call__(
        self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, tags: torch.Tensor | None = None
    ) -> torch.Tensor:
        guidance = torch.full((x.shape[0],), float(self.guidance), device=x.device)
        extra = () if tags is None else (tags,)
        return self.runner(x, t, labels, guidance, *extra)[0].to(x.device)


@torch.no_grad()
def sample_sprites(
    runner: GraphRunner,
    module: Any,
    labels: torch.Tensor,
    generators: list[torch.Generator],
    steps: int = 10,
    guidance: float = 2.0,
    on_step: StepCallback | None = None,
    tags: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, 4, 32, 32) sprites in [-1, 1]: ``module`` (the torch model) draws the latents or noise, ``runner`` (its
    GAN generator, VAE decoder or guided diffusion step graph) does the network work. ``tags`` (N, T) goes to
    models with a vocabulary (the graphs' last input)."""
    family = family_of(module)
    words = int(getattr(module.config, "num_tags", 0))
    if tags is None and words:  # a graph with a tag input always takes one: no words is all zeros
        tags = torch.zeros(len(labels), words, device=runner.device)
    if family == "diffusion":
        noise = module.sample_noise(generators).to(runner.device)
        return ddim_sample(GuidedStep(runner, guidance), module.schedule(), noise, labels, steps=steps, guidance=1.0,
                           on_step=on_step, tags=tags)
    out = runner(module.sample_latents(generators), labels, *(() if tags is None else (tags,)))[0]
    if on_step is not None:
        on_step(1, 1)
    return out


@dataclass
class SpriteRuntime:
    """A sprite model ready to sample: the torch network (latents, noise, encoder, config), its sidecar, and the
    runner of its exported graph (None: the torch sampler runs it)."""

    net: nn.Module
    meta: dict[str, Any]
    runner: GraphRunner | None = None

    @property
    def runtime(self) -> str:
        return "torch" if self.runner is None else self.runner.runtime

    @property
    def nbytes(self) -> int:
        """What the worker's model cache budgets: the torch network when it runs (an export's network and session
        are cached on their own)."""
        return module_bytes(self.net) if self.runner is None else 0

    def generate(
        self,
        labels: torch.Tensor,
        generators: list[torch.Generator],
        steps: int = 10,
        guidance: float = 2.0,
        on_step: StepCallback | None = None,
        tags: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(N, 4, 32, 32) sprites in [-1, 1], as :func:`studio.ml.sampling.sprites.generate` returns them."""
        if self.runner is None:
            return generate(self.net, labels, generators, steps=steps, guidance=guidance, on_step=on_step, tags=tags)
        device = self.runner.device
        return sample_sprites(self.runner, self.net, labels.to(device), generators, steps, guidance, on_step,
                              None if tags is None else tags.to(device))


class SpriteModels(ExportedModels):
    key = "sprite"

    def load_torch(self, loader: RuntimeLoader, entry: ModelEntry, device: str) -> SpriteRuntime:
        net, _, meta = load_model(entry.weights, expect_arch=entry.arch, device=device)
        return SpriteRuntime(net, meta)

    def load_onnx(self, loader: RuntimeLoader, entry: ModelEntry, record: ExportRecord,
                  device: str) -> SpriteRuntime:
        net, _, meta = loader.load_module(entry.name, device)  # latents and noise come from the torch model
        return SpriteRuntime(net, meta, loader.graph_runner(entry.name, GRAPHS[family_of(net)], device, record))

    def seconds(self, model: SpriteRuntime) -> float:
        """A batch through the network's graph (what sampling repeats), on whichever runtime runs it."""
        graph = next(g for g in registry.get(model.meta["arch"]).onnx if g.name == GRAPHS[family_of(model.net)])
        device = str(next(model.net.parameters()).device)
        runner = model.runner or TorchGraphRunner(model.net, graph, device)
        inputs = tuple(t.to(device) for t in graph.example_inputs(model.net.config, MEASURE_BATCH))
        return median_seconds(lambda: runner(*inputs))


ADAPTER = SpriteModels()
