"""Runs one task with the fallbacks every job gets: CUDA out-of-memory -> smaller batches -> CPU."""

from __future__ import annotations

from typing import Any

import torch

from studio.core.context import JobContext
from studio.core.errors import StudioError
from studio.core.jobs import JobSpec
from studio.ml.device import is_out_of_memory
from studio.ml.doctor import remember_gpu_fallback
from studio.ml.tasks import Task


def run_task(fn: Task, spec: JobSpec, ctx: JobContext) -> Any:
    """Run ``fn``; on CUDA OOM retry with half-size batches, then on the CPU, telling the user each time."""
    try:
        return fn(spec, ctx)
    except Exception as exc:
        if ctx.device != "cuda" or not is_out_of_memory(exc):
            raise
    torch.cuda.empty_cache()
    ctx.batch_scale = 0.5
    ctx.note("The GPU ran out of memory: retrying in smaller batches.")
    try:
        return fn(spec, ctx)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
    torch.cuda.empty_cache()
    ctx.device = "cpu"
    ctx.note("The GPU ran out of memory again: running this job on the CPU (slower).")
    remember_gpu_fallback(spec.kind, "the GPU ran out of memory, even with smaller batches")
    return fn(spec, ctx)


def describe_error(exc: BaseException) -> str:
    """A sentence for a person; tracebacks go to the log, not the status bar."""
    if isinstance(exc, StudioError):
        return str(exc)
    if is_out_of_memory(exc):
        return "Out of memory even on the CPU: try fewer items, a smaller model or close other programs."
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {exc.filename}"
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename}"
    if isinstance(exc, OSError) and exc.errno == 28:
        return "The disk is full: free some space and try again."
    return f"{type(exc).__name__}: {exc}"
