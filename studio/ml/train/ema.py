"""Exponential moving average of a module's weights: what gets saved for generation."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen shadow copy of ``module`` whose parameters follow the trained ones slowly.

    The effective decay ramps up as ``min(decay, (1 + step) / (10 + step))`` so that short runs are not dominated
    by the random initial weights. Buffers (batch-norm statistics, spectral-norm vectors) are copied as they are.
    """

    def __init__(self, module: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), not {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        weight = 1.0 - self.decay_at(step)
        for shadow, live in zip(self.module.parameters(), module.parameters(), strict=True):
            shadow.lerp_(live.detach(), weight)
        for shadow, live in zip(self.module.buffers(), module.buffers(), strict=True):
            shadow.copy_(live)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state, strict=True)
