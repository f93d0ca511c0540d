"""Turning seeds and categories into sprites with any of the three sprite families (used by tasks and trainer).

Sprite ``i`` of a batch takes its noise from its own generator (seeded ``seed + i`` by the caller), so a sprite can
be made again alone, in any batch size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

StepCallback = Callable[[int, int], None]  # (step done, steps in total); may raise to cancel


def family_of(model: nn.Module) -> str:
    family = getattr(model, "family", None)
    if family not in ("gan", "vae", "diffusion"):
        raise ValueError(f"{type(model).__name__} is not a sprite model")
    return family


def seeded_generators(seed: int, count: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(count)]


@torch.no_grad()
def generate(
    model: nn.Module,
    labels: torch.Tensor,
    generators: list[torch.Generator],
    steps: int = 10,
    guidance: float = 2.0,
    on_step: StepCallback | None = None,
    tags: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, 4, 32, 32) sprites in [-1, 1] for class indices ``labels`` (N,) and multi-hot ``tags`` (N, T) on the
    model's device (``tags`` only for a model trained with a vocabulary)."""
    family = family_of(model)
    device = next(model.parameters()).device
    labels = labels.to(device)
    tags = tags.to(device) if tags is not None else None
    if family == "gan":
        out = model(model.sample_latents(generators).to(device), labels, tags)
    elif family == "vae":
        out = model.decode(model.sample_latents(generators).to(device), labels, tags)
    else:
        from studio.ml.sampling.ddim import ddim_sample

        noise = model.sample_noise(generators).to(device)
        out = ddim_sample(model, model.schedule(), noise, labels, steps=steps, guidance=guidance, on_step=on_step,
                          tags=tags)
    if on_step is not None and family != "diffusion":
        on_step(1, 1)
    return out
