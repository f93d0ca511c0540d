"""What the Train workspace checks before a run, shared by every modality's preflight module (``*_preflight``):
the data path of a request and timing a few real training steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec

ESTIMATE_STEPS = 3
MB = 2**20
Estimate = dict[str, Any]


def data_path(spec: JobSpec) -> Path:
    raw = str(spec.params.get("path", "")).strip()
    if not raw:
        raise BadInputError("choose a data folder or file first")
    path = Path(raw).expanduser()
    if not path.exists():
        raise BadInputError(f"{path} does not exist")
    return path


def timed_steps(step: Callable[[], None], device: str) -> tuple[float, float | None]:
    """(seconds per ``step`` after one warm-up call, CUDA memory it allocated at peak in MB; None on the CPU)."""
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    before = 0
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    step()
    start = time.perf_counter()
    for _ in range(ESTIMATE_STEPS):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / ESTIMATE_STEPS
    return seconds, (torch.cuda.max_memory_allocated() - before) / MB if cuda else None


def parameter_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def estimate_result(seconds: float, step_s: float, steps: int, memory_mb: float, device: str,
                    detail: str) -> Estimate:
    return {"seconds": float(seconds), "steps": int(steps), "memory_mb": float(memory_mb), "device": device,
            "step_ms": float(step_s * 1e3), "detail": detail}
