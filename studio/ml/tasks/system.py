"""System tasks: a device self-test that measures matrix throughput (also the engine's CPU-load probe)."""

from __future__ import annotations

import time

import torch

from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from studio.ml.tasks import task


@task("system.selftest")
def selftest(spec: JobSpec, ctx: JobContext) -> dict[str, float]:
    """Multiply matrices for ``steps`` steps on the job's device; returns the measured GFLOP/s."""
    size = int(spec.params.get("size", 256))
    steps = int(spec.params.get("steps", 50))
    generator = torch.Generator().manual_seed(spec.seed)
    a = torch.randn(size, size, generator=generator).to(ctx.device)
    b = torch.randn(size, size, generator=generator).to(ctx.device)
    start = time.perf_counter()
    for step in range(steps):
        a = torch.tanh(a @ b)
        ctx.progress((step + 1) / steps, f"step {step + 1}/{steps}")
    if ctx.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"gflops": 2 * size**3 * steps / seconds / 1e9, "seconds": seconds, "checksum": float(a.sum())}
