"""System tasks: a device self-test that measures matrix throughput (also the engine's CPU-load probe), and the
machine report with each workspace's speed (``studio doctor``)."""

from __future__ import annotations

import time
from typing import Any

import torch

from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from studio.core.machine_report import MachineReport
from studio.core.modalities import all_modalities
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


@task("system.doctor")
def doctor(spec: JobSpec, ctx: JobContext) -> MachineReport:
    """What models run on here and why (``studio doctor``; the status bar and Settings show the same report)."""
    from studio.ml.doctor import diagnose

    return diagnose(ctx.resources)


@task("system.speed")
def measure_speeds(spec: JobSpec, ctx: JobContext) -> MachineReport:
    """Time each workspace's usual job on its default model (remembered for the report), then the report."""
    from studio.ml.doctor import diagnose, measure_speed
    from studio.ml.tasks import all_tasks
    from studio.ml.tasks.runner import run_task

    tasks = all_tasks()

    def run(probe: JobSpec) -> Any:
        return run_task(tasks[probe.kind], probe, JobContext(probe, lambda event: None, ctx.cancel, ctx.device,
                                                             ctx.resources))

    probed = [modality for modality in all_modalities() if modality.speed_probe is not None]
    for done, modality in enumerate(probed):
        ctx.progress(done / len(probed), f"measuring {modality.title}")
        measure_speed(ctx.resources, modality.name, run)
    return diagnose(ctx.resources)
