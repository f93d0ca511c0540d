"""Choosing where models run, and keeping the desktop responsive on CPU."""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(preference: str = "auto") -> str:
    """'auto' -> cuda when present, else cpu. Asking for cuda without one falls back to cpu."""
    if preference == "cuda" and not cuda_available():
        return "cpu"
    if preference in ("cpu", "cuda"):
        return preference
    return "cuda" if cuda_available() else "cpu"


def configure_cpu_threads(threads: int) -> int:
    """Set torch's thread count (see ``Settings.model_threads``), clamped to 1..cores (a settings file from another
    machine may ask for more cores than this one has), and said when clamped."""
    from studio.ml.runtime.cpu import clamp_threads

    threads, said = clamp_threads(threads)
    if said:
        log.warning("%s", said)
    torch.set_num_threads(threads)
    return threads


def describe_device(device: str) -> str:
    if device == "cuda" and cuda_available():
        props = torch.cuda.get_device_properties(0)
        return f"CUDA: {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    return f"CPU ({cores} core{'s' * (cores != 1)}, {threads} thread{'s' * (threads != 1)} for models)"


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
