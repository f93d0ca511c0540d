"""Sprites through the runtime selector: the sampling of :mod:`studio.ml.sampling.sprites`, with every network call
going to the graph runner (torch or onnxruntime) that ``resources.runtimes`` picks for the model.

The diffusion graph is the guided step (classifier-free guidance inside the graph, one batched call), so DDIM runs
it as a plain noise predictor with guidance 1.0. Latents and noise still come from the torch model's seeded
generators, so sprite ``i`` is the same sprite on either runtime.

Usage (what the ``sprite.generate`` task calls)::

    images = generate_sprites(ctx.resources, spec.model, labels, seeded_generators(seed, count), steps, guidance,
                              on_step=...)   # (N, 4, 32, 32) in [-1, 1], as sampling.sprites.generate returns
"""

from __future__ import annotations

from typing import Any

import torch

from studio.ml.runtime.runners import GraphRunner
from studio.ml.sampling.ddim import ddim_sample
from studio.ml.sampling.sprites import StepCallback, family_of

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


def generate_sprites(
    resources: Any,
    name: str,
    labels: torch.Tensor,
    generators: list[torch.Generator],
    steps: int = 10,
    guidance: float = 2.0,
    on_step: StepCallback | None = None,
    device: str | None = None,
    tags: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sprites of store model ``name`` on the runtime the settings choose (see studio.ml.runtime.select)."""
    device = device or resources.device
    module, _, _ = resources.runtimes.load_module(name, device)
    runner = resources.runtimes.runner(name, GRAPHS[family_of(module)], device)
    tags = tags.to(runner.device) if tags is not None else None
    return sample_sprites(runner, module, labels.to(runner.device), generators, steps, guidance, on_step, tags)
