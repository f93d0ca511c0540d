"""The one way a task gets its model: torch or onnxruntime, on the CPU or CUDA, the fastest measured or the user's
choice, for every modality.

Each architecture has a runtime adapter (named by its modality, see :mod:`studio.core.modalities`) that knows how
to load its models on each runtime and how to time one representative step. The loader does the rest the same way
for all of them:

* "torch": the torch model;
* "onnxruntime": the first usable export of these exact weights (exported now, once, when there is none);
* "auto": torch when no export of these weights exists; otherwise torch and every usable export are timed once on
  this machine and the fastest is remembered (:mod:`studio.ml.runtime.select`).

A model with one runtime only (a voice is an ONNX graph, a classic synthesiser is its own engine) is loaded on it
whatever the setting says. Loaded models stay in the worker's model cache, keyed by name, device and runtime.

Usage (what tasks do)::

    lm = ctx.resources.runtimes.load("smollm2-135m-instruct", ctx.device)   # settings decide
    melody = ctx.resources.runtimes.load("music-transformer", ctx.device, runtime="torch")
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from studio.core.errors import ModelFileError, StudioError
from studio.core.modalities import runtime_adapter
from studio.ml import registry
from studio.ml.checkpoint import load_model, sha256_file
from studio.ml.runtime.exports import ExportRecord, usable_exports, verify_record
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import GraphRunner, OrtGraphRunner, TorchGraphRunner
from studio.ml.runtime.select import fastest
from studio.ml.store import ModelEntry

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnxruntime")
MEASURE_BATCH = 16
Exporter = Callable[[str, Any], ExportRecord]  # (model name, store) -> its verified fp32 export, made now


class RuntimeAdapter(Protocol):
    """How the models of one architecture run."""

    key: str  # cache-key prefix ("lm", "music", "sprite", "voice")
    runtimes: tuple[str, ...]  # what can run them; the first is used when it is the only one

    def variants(self, device: str) -> tuple[str, ...]:
        """The export variants worth trying on ``device``, best first."""

    def accept(self, record: ExportRecord) -> bool:
        """Whether an export is good enough to use (a quantised one within its quality tolerance)."""

    def load_torch(self, loader: RuntimeLoader, entry: ModelEntry, device: str) -> Any: ...

    def load_onnx(self, loader: RuntimeLoader, entry: ModelEntry, record: ExportRecord, device: str) -> Any:
        """The model on onnxruntime from the export ``record``."""

    def seconds(self, model: Any) -> float:
        """Seconds of one representative step (what "auto" compares)."""

    def batch_seconds(self, model: Any) -> float:
        """Seconds of a step of a batch (what "auto" compares for purpose "batch")."""

    def load_native(self, loader: RuntimeLoader, entry: ModelEntry, device: str) -> Any:
        """The model on its one runtime (adapters whose ``runtimes`` has one entry)."""


class ExportedModels:
    """Defaults for torch models with ONNX exports: fp16 then fp32 on CUDA, fp32 on the CPU, every export fine."""

    runtimes: tuple[str, ...] = ("torch", "onnxruntime")

    def variants(self, device: str) -> tuple[str, ...]:
        return ("fp16", "fp32") if device == "cuda" else ("fp32",)

    def accept(self, record: ExportRecord) -> bool:
        return True

    def batch_seconds(self, model: Any) -> float:
        return self.seconds(model)  # type: ignore[attr-defined]  (the adapter's own step)


def median_seconds(step: Callable[[], Any], repeats: int = 5) -> float:
    """Median seconds of ``step`` after one warm-up call (CUDA synchronised)."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def choice_key(sha256: str, arch: str, device: str, threads: int, records: list[ExportRecord], purpose: str) -> str:
    """Where "auto"'s measured choice is remembered: per weights, architecture, device, what is timed, thread count
    and the exports there are (a new export, or one in a new format, is measured again)."""
    exports = "+".join(f"{r.variant}{r.extra.get('format', '')}" for r in records)
    return f"{sha256}:{arch}:{device}:{purpose}:{threads}t:{exports}"


class RuntimeLoader:
    """Owned by the worker's Resources (``resources.runtimes``); ``exporter`` makes a missing export when
    onnxruntime is forced (the Resources give it the export pipeline)."""

    def __init__(self, resources: Any, exporter: Exporter | None = None) -> None:
        self.resources = resources
        self.exporter = exporter
        self._hashes: dict[tuple[Path, int, int], str] = {}

    def weights_hash(self, path: Path) -> str:
        """sha256 of a weights file, remembered while its size and mtime stay the same."""
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = sha256_file(path)
        return self._hashes[key]

    def adapter(self, arch: str) -> RuntimeAdapter:
        ref = runtime_adapter(arch)
        if ref is None:
            raise ModelFileError(f"no runtime runs {arch} models")
        return ref.load()

    def load(self, name: str, device: str | None = None, runtime: str | None = None, purpose: str = "stream") -> Any:
        """Model ``name`` of the store on ``device``, on ``runtime`` (default: the settings'). "auto" times what
        ``purpose`` needs: "stream" (the adapter's ``seconds``) or "batch" (its ``batch_seconds``: many rows of one
        prompt, what the copy generator decodes), at the worker's thread count."""
        store = self.resources.store
        entry = store.find(name)
        store.verify(entry)
        adapter = self.adapter(entry.arch)
        device = device or self.resources.device
        preference = runtime or self.resources.runtime
        if preference not in RUNTIMES:
            raise StudioError(f"unknown runtime {preference!r}: use {', '.join(RUNTIMES)}")
        cache = self.resources.cache

        def torch_model() -> Any:
            return cache.get(f"{adapter.key}:{entry.name}:{device}", lambda: adapter.load_torch(self, entry, device))

        def onnx_model(record: ExportRecord, loaded: Any = None) -> Any:
            return cache.get(f"{adapter.key}-ort:{entry.name}:{device}:{record.variant}",
                             lambda: loaded or adapter.load_onnx(self, entry, record, device))

        if len(adapter.runtimes) == 1:  # e.g. a voice: an ONNX graph, or a program of its own
            if preference not in ("auto", adapter.runtimes[0]):
                log.info("%s runs on %s only", entry.name, adapter.runtimes[0])
            return cache.get(f"{adapter.key}:{entry.name}:{device}", lambda: adapter.load_native(self, entry, device))
        if preference == "torch":
            return torch_model()
        sha256 = self.weights_hash(entry.weights)
        records = usable_exports(entry.name, sha256, adapter.variants(device), preference, adapter.accept)
        if preference == "onnxruntime":
            return onnx_model(records[0] if records else self._export_now(entry.name))
        if not records:
            return torch_model()
        kept: dict[str, Any] = {}

        measure = adapter.batch_seconds if purpose == "batch" else adapter.seconds

        def timings() -> dict[str, float]:
            seconds = {"torch": measure(adapter.load_torch(self, entry, device))}
            for record in records:  # loaded one at a time; only the fastest so far is kept
                model = adapter.load_onnx(self, entry, record, device)
                seconds[f"onnxruntime:{record.variant}"] = measure(model)
                if min(seconds, key=seconds.__getitem__) == f"onnxruntime:{record.variant}":
                    kept.clear()
                    kept[record.variant] = model
            return seconds

        key = choice_key(sha256, entry.arch, device, self.resources.cpu_threads, records, purpose)
        choice = fastest(key, timings, f"{entry.name} ({purpose}) on {device}, {self.resources.cpu_threads} threads")
        record = next((r for r in records if f"onnxruntime:{r.variant}" == choice), None)
        return torch_model() if record is None else onnx_model(record, kept.get(record.variant))

    def _export_now(self, name: str) -> ExportRecord:
        if self.exporter is None:
            raise StudioError(f"{name} has no ONNX export: make one with `studio export onnx {name}`")
        log.warning("%s has no ONNX export yet: exporting it now (once)", name)
        record = self.exporter(name, self.resources.store)
        verify_record(record)
        return record

    # --- graphs of torch models (what sprite sampling and export checks call) ----------------------
    def load_module(self, name: str, device: str) -> tuple[Any, Any, dict[str, Any]]:
        """(module, config, sidecar) of a model, verified and kept in the worker's model cache."""
        store = self.resources.store
        entry = store.find(name)
        store.verify(entry)
        return self.resources.cache.get(
            f"torch:{name}:{device}", lambda: load_model(entry.weights, expect_arch=entry.arch, device=device)
        )

    def graph_runner(self, name: str, graph_name: str, device: str, record: ExportRecord | None) -> GraphRunner:
        """A runner of one graph of model ``name``: its export's on onnxruntime, else the torch module's."""
        entry = self.resources.store.find(name)
        graph = next((g for g in registry.get(entry.arch).onnx if g.name == graph_name), None)
        if graph is None:
            raise StudioError(f"{entry.arch} has no ONNX graph {graph_name!r}")
        if record is None:
            module, _, _ = self.load_module(name, device)
            return TorchGraphRunner(module, graph, device)
        session = self.resources.cache.get(
            f"ort:{name}:{graph_name}:{device}:{record.variant}",
            lambda: open_session(record.graph_path(graph_name), device, self.resources.cpu_threads, graph))
        return OrtGraphRunner(session, [i.name for i in session.get_inputs()], device)
