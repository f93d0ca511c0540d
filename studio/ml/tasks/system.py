"""System tasks: a device self-test that measures matrix throughput (also the engine's CPU-load probe)."""

from __future__ import annotations

import time

import torch

from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from studio.ml.tasks import task


@task("system.selftest")
def selftest(spec: JobSpec, ctx: JobContext) -> dict[str, float]:
    """Multiply matrices for ``steps`` steps, and for at least ``min_seconds``, on the job's device.

    Returns the measured GFLOP/s. ``min_seconds`` makes it a load of known length whatever the machine's speed.
    """
    size = int(spec.params.get("size", 256))
    steps = int(spec.params.get("steps", 50))
    min_seconds = float(spec.params.get("min_seconds", 0.0))
    generator = torch.Generator().manual_seed(spec.seed)
    a = torch.randn(size, size, generator=generator).to(ctx.device)
    b = torch.randn(size, size, generator=generator).to(ctx.device)
    start = time.perf_counter()
    done = 0
    while done < steps or time.perf_counter() - start < min_seconds:
        a = torch.tanh(a @ b)
        done += 1
        ctx.progress(min(done / steps, 1.0), f"step {done}")
    if ctx.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"gflops": 2 * size**3 * done / seconds / 1e9, "seconds": seconds, "steps": done, "checksum": float(a.sum())}
