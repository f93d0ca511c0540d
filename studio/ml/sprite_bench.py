"""Speed of the sprite models: a 16-sprite grid and a 256-sprite batch, medians after warm-up.

Results are rows ``{model, arch, family, runtime, device, threads, params, grid16_ms, batch256_ms, ...}`` so that
other runtimes (onnxruntime) can add rows for the same models and the tables line up.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from studio.core.sprite_ops import snap_alpha
from studio.ml.models.sprite_common import tensor_to_images
from studio.ml.sampling.sprites import generate, seeded_generators

TARGETS_MS = {"gan": 300.0, "diffusion": 2000.0}  # a 16-sprite grid on a 2-core CPU (issue 3)


def machine_description() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def median_ms(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def make_sprites(model: nn.Module, count: int, steps: int, guidance: float, seed: int = 0) -> list:
    """What a generate job does minus the events: sample, convert to uint8, snap alpha."""
    labels = torch.arange(count) % model.config.num_classes
    images = tensor_to_images(generate(model, labels, seeded_generators(seed, count), steps, guidance))
    return [snap_alpha(rgba) for rgba in images]


def bench_model(
    name: str, model: nn.Module, repeats: int, warmup: int, steps: int, guidance: float, large: int = 256
) -> dict[str, Any]:
    family = model.family
    big_repeats = max(1, repeats // 4) if family == "diffusion" else repeats
    grid = median_ms(lambda: make_sprites(model, 16, steps, guidance), repeats, warmup)
    batch = median_ms(lambda: make_sprites(model, large, steps, guidance), big_repeats, 1)
    target = TARGETS_MS.get(family)
    return {
        "model": name,
        "family": family,
        "runtime": "torch-eager",
        "device": str(next(model.parameters()).device),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "steps": steps if family == "diffusion" else None,
        "guidance": guidance if family == "diffusion" else None,
        "grid16_ms": round(grid, 2),
        f"batch{large}_ms": round(batch, 2),
        "target_grid16_ms": target,
        "meets_target": None if target is None else grid <= target,
    }


def to_markdown(machine: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Sprite generation speed",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), Python {machine['python']}; load average at start "
        f"{machine.get('load_average')}.",
        "Medians over repeated runs after warm-up; sprites include the alpha snap.",
        "",
        "| model | runtime | params | 16-grid ms | 256-batch ms | target (16-grid) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        target = row.get("target_grid16_ms")
        verdict = "-" if target is None else f"{target:.0f} ms: {'met' if row['meets_target'] else 'MISSED'}"
        extra = f" ({row['steps']} steps, guidance {row['guidance']})" if row.get("steps") else ""
        lines.append(
            f"| {row['model']}{extra} | {row['runtime']} | {row['params'] / 1e6:.2f}M | {row['grid16_ms']:.1f} "
            f"| {row.get('batch256_ms', float('nan')):.1f} | {verdict} |"
        )
    return "\n".join(lines) + "\n"
