"""Timing shared by every benchmark: warm-up, repeated runs, median and inter-quartile range; and the description
of the machine that goes next to the numbers."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Timing:
    median_s: float
    iqr_s: float  # spread of the middle half of the runs (a busy machine shows here)
    runs: int

    def as_dict(self, scale: float = 1000.0, unit: str = "ms") -> dict[str, Any]:
        return {f"median_{unit}": round(self.median_s * scale, 3), f"iqr_{unit}": round(self.iqr_s * scale, 3),
                "runs": self.runs}


def summarise(seconds: list[float]) -> Timing:
    if not seconds:
        raise ValueError("no runs to summarise")
    if len(seconds) < 2:
        return Timing(seconds[0], 0.0, 1)
    q1, _, q3 = statistics.quantiles(seconds, n=4, method="inclusive")
    return Timing(statistics.median(seconds), q3 - q1, len(seconds))


def measure(fn: Callable[[], Any], repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (``sync`` waits for a GPU to finish)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - start)
    return summarise(times)


def cuda_sync(device: str) -> Callable[[], None] | None:
    return torch.cuda.synchronize if device == "cuda" and torch.cuda.is_available() else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def machine_description(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, GPU, library versions, threads, load and date."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads or torch.get_num_threads(),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def machine_line(info: dict[str, Any]) -> str:
    gpu = f", GPU {info['gpu']}" if info.get("gpu") else ""
    return (f"{info['date']}; {info['cpu']} ({info['cores']} cores{gpu}); {info['threads']} threads; "
            f"torch {info['torch']}, onnxruntime {info['onnxruntime']}, Python {info['python']}; "
            f"load average {info['load_average']} at the start")

