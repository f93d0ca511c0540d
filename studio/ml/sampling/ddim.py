"""Noise schedules and the DDIM sampler (Song et al. 2021) with classifier-free guidance, kept apart from the UNet.

The network is any callable ``out = net(x_t, t, label)`` whose ``null_label`` attribute is the "no class" index
it was trained with (the class is hidden for a fraction of training steps, so the network also learns the
unconditional prediction that guidance extrapolates from) and whose ``prediction`` attribute says what ``out``
is: the noise (``"eps"``) or the velocity ``v = sqrt(a) * eps - sqrt(1 - a) * x0`` (``"v"``, Salimans & Ho 2022).
With few sampling steps v is the better target: at the noisiest step (a close to 0) recovering x0 from a predicted
eps divides its error by sqrt(a), while from v it does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

StepCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class NoiseSchedule:
    """``alphas_cumprod[t]``: the share of signal variance left at step t (t = 0 is the least noisy)."""

    alphas_cumprod: torch.Tensor

    @classmethod
    def cosine(cls, timesteps: int, offset: float = 0.008) -> NoiseSchedule:
        """Nichol & Dhariwal 2021: signal falls off along a cosine; betas capped at 0.999."""
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        return cls(torch.cumprod(1 - betas, dim=0).float())

    @classmethod
    def linear(cls, timesteps: int, start: float = 1e-4, end: float = 0.02) -> NoiseSchedule:
        """Ho et al. 2020, with the betas rescaled for schedules shorter than 1000 steps."""
        scale = 1000 / timesteps
        betas = torch.linspace(start * scale, min(end * scale, 0.999), timesteps, dtype=torch.float64)
        return cls(torch.cumprod(1 - betas, dim=0).float())

    @classmethod
    def named(cls, name: str, timesteps: int) -> NoiseSchedule:
        if name == "cosine":
            return cls.cosine(timesteps)
        if name == "linear":
            return cls.linear(timesteps)
        raise ValueError(f"unknown noise schedule {name!r} (cosine, linear)")

    @property
    def timesteps(self) -> int:
        return len(self.alphas_cumprod)

    def alpha_at(self, t: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``alphas_cumprod[t]`` shaped (N, 1, 1, 1) for broadcasting over images."""
        return self.alphas_cumprod.to(device)[t.to(device)].view(-1, 1, 1, 1)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Sample ``x_t ~ q(x_t | x_0)``."""
        a = self.alpha_at(t, x0.device)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The v-prediction target for ``x_t = add_noise(x0, noise, t)``."""
        a = self.alpha_at(t, x0.device)
        return a.sqrt() * noise - (1 - a).sqrt() * x0


def split_prediction(
    out: torch.Tensor, x: torch.Tensor, a: torch.Tensor, prediction: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) from the network's output at signal level ``a`` (alphas_cumprod[t], broadcastable to x)."""
    if prediction == "v":
        return a.sqrt() * x - (1 - a).sqrt() * out, (1 - a).sqrt() * x + a.sqrt() * out
    if prediction == "eps":
        return (x - (1 - a).sqrt() * out) / a.sqrt(), out
    raise ValueError(f"unknown prediction type {prediction!r} (eps, v)")


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` training timesteps, evenly spaced and starting at the noisiest ("trailing" spacing)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be 1..{timesteps}, not {steps}")
    return [round(timesteps - i * timesteps / steps) - 1 for i in range(steps)]


def guided(
    net: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor,
    guidance: float | torch.Tensor,
    tags: torch.Tensor | None = None,
) -> torch.Tensor:
    """Classifier-free guidance: ``out_uncond + g * (out_cond - out_uncond)`` in one batched call.

    ``guidance`` is a float or an (N,) tensor (per-sprite guidance); a float 1.0 needs only the conditional pass.
    The unconditional pass has neither class (the null label) nor tags (all zero). ``tags`` is passed to ``net``
    only when given, so networks without tags keep their three-argument call.
    """
    if isinstance(guidance, float | int) and guidance == 1.0:
        return net(x, t, labels) if tags is None else net(x, t, labels, tags)
    null = torch.full_like(labels, net.null_label)
    both = (torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
    out = net(*both) if tags is None else net(*both, torch.cat([tags, torch.zeros_like(tags)]))
    n = x.shape[0]
    cond, uncond = out[:n], out[n:]  # slicing, not chunk: chunk exports as SplitToSequence
    g = guidance.view(-1, 1, 1, 1) if isinstance(guidance, torch.Tensor) else guidance
    return uncond + g * (cond - uncond)


@torch.no_grad()
def ddim_sample(
    net: nn.Module,
    schedule: NoiseSchedule,
    noise: torch.Tensor,
    labels: torch.Tensor,
    steps: int = 10,
    guidance: float = 2.0,
    eta: float = 0.0,
    generators: list[torch.Generator] | None = None,
    known: torch.Tensor | None = None,
    redraw: torch.Tensor | None = None,
    on_step: StepCallback | None = None,
    tags: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoise ``noise`` (N, C, H, W) into samples in [-1, 1] for class ``labels`` (N,) and multi-hot ``tags``.

    ``eta`` > 0 adds fresh noise each step (needs ``generators``, one per sample, for reproducibility).
    Inpainting: ``known`` images and a ``redraw`` mask (N, 1, H, W), 1 where new content is wanted; outside
    the mask the sample is pulled back to a noised copy of ``known`` at every step (and equals it at the end).
    """
    if eta > 0 and generators is None:
        raise ValueError("eta > 0 needs one generator per sample")
    if (known is None) != (redraw is None):
        raise ValueError("inpainting needs both the known images and the redraw mask")
    device = noise.device
    prediction = getattr(net, "prediction", "eps")
    x = noise
    labels = labels.to(device)
    tags = tags.to(device) if tags is not None else None
    times = ddim_timesteps(schedule.timesteps, steps)
    alphas = schedule.alphas_cumprod.to(device)
    for i, step in enumerate(times):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=device)
        if known is not None:
            x = redraw * x + (1 - redraw) * schedule.add_noise(known, _fresh_noise(noise, generators), t)
        a_t = alphas[step]
        a_prev = alphas[times[i + 1]] if i + 1 < len(times) else torch.ones((), device=device)
        x0, _ = split_prediction(guided(net, x, t, labels, guidance, tags), x, a_t, prediction)
        x0 = x0.clamp(-1, 1)
        eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).clamp(min=0).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0:
            x = x + sigma * _fresh_noise(noise, generators)
        if on_step is not None:
            on_step(i + 1, len(times))
    if known is not None:
        x = redraw * x + (1 - redraw) * known
    return x


def _fresh_noise(like: torch.Tensor, generators: list[torch.Generator] | None) -> torch.Tensor:
    if generators is None:
        raise ValueError("this sampling mode needs one generator per sample")
    return torch.stack([torch.randn(like.shape[1:], generator=g) for g in generators]).to(like.device)
