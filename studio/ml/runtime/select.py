"""Choosing torch or onnxruntime for a model's graph: forced by settings, or measured once and cached.

"auto" uses onnxruntime only when a verified export of the *same* weights exists and was faster when measured on
this machine (the measurement is cached in the user cache folder, keyed by weights hash, graph and device).
Forcing "onnxruntime" exports the model on first use when no export exists yet.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from studio.core import paths
from studio.core.errors import StudioError
from studio.ml import registry
from studio.ml.checkpoint import load_model, sha256_file
from studio.ml.export.records import read_record, verify_record
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import GraphRunner, OrtGraphRunner, TorchGraphRunner

log = logging.getLogger(__name__)

MEASURE_BATCH = 16
CHOICES_FILE = "runtime_choices.json"


def _choices_path() -> Path:
    return paths.cache_dir() / CHOICES_FILE


def _read_choices() -> dict[str, str]:
    try:
        return json.loads(_choices_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _remember(key: str, runtime: str) -> None:
    choices = _read_choices()
    choices[key] = runtime
    _choices_path().write_text(json.dumps(choices, indent=2), encoding="utf-8")


def _median_seconds(runner: GraphRunner, inputs: tuple[torch.Tensor, ...], repeats: int = 5) -> float:
    runner(*inputs)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(*inputs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class RuntimeSelector:
    """Owned by the worker's Resources; caches modules, sessions and weight hashes."""

    def __init__(self, resources: Any) -> None:
        self.resources = resources
        self._hashes: dict[Path, str] = {}

    def _weights_hash(self, path: Path) -> str:
        if path not in self._hashes:
            self._hashes[path] = sha256_file(path)
        return self._hashes[path]

    def load_module(self, name: str, device: str) -> tuple[Any, Any, dict[str, Any]]:
        """(module, config, sidecar) of a model, verified and cached by the worker's model cache."""
        store = self.resources.store
        entry = store.find(name)
        store.verify(entry)
        return self.resources.cache.get(
            f"torch:{name}:{device}", lambda: load_model(entry.weights, expect_arch=entry.arch, device=device)
        )

    def _export_folder(self, name: str, device: str) -> Path | None:
        from studio.ml.export.pipeline import default_export_dir

        variants = ("fp16", "fp32") if device == "cuda" else ("fp32",)
        for variant in variants:
            folder = default_export_dir(name, variant)
            if (folder / "export.json").exists():
                return folder
        return None

    def _ort_runner(self, name: str, graph_name: str, device: str, export_if_missing: bool) -> OrtGraphRunner | None:
        entry = self.resources.store.find(name)
        arch = registry.get(entry.arch)
        graph = next((g for g in arch.onnx if g.name == graph_name), None)
        if graph is None:
            raise StudioError(f"{entry.arch} has no ONNX graph {graph_name!r}")
        folder = self._export_folder(name, device)
        record = read_record(folder) if folder else None
        if record is not None and record.source_sha256 != self._weights_hash(entry.weights):
            log.warning("ONNX export of %s is of older weights; ignoring it", name)
            record = None
        if record is None:
            if not export_if_missing:
                return None
            from studio.ml.export.pipeline import export_model

            record = export_model(name, "fp32", store=self.resources.store)
        verify_record(record)
        key = f"ort:{name}:{graph_name}:{device}:{record.variant}"
        session = self.resources.cache.get(
            key,
            lambda: open_session(record.graph_path(graph_name), device, self.resources.cpu_threads, graph),
        )
        return OrtGraphRunner(session, graph.input_names, device)

    def runner(self, name: str, graph_name: str, device: str) -> GraphRunner:
        """The runner the settings ask for; 'auto' measures both once per machine and remembers the faster."""
        preference = self.resources.runtime
        entry = self.resources.store.find(name)
        arch = registry.get(entry.arch)
        graph = next((g for g in arch.onnx if g.name == graph_name), None)
        if graph is None:
            raise StudioError(f"{entry.arch} has no graph {graph_name!r}")
        module, config, _ = self.load_module(name, device)
        torch_runner = TorchGraphRunner(module, graph, device)
        if preference == "torch":
            return torch_runner
        ort_runner = self._ort_runner(name, graph_name, device, export_if_missing=preference == "onnxruntime")
        if ort_runner is None:
            return torch_runner
        if preference == "onnxruntime":
            return ort_runner
        key = f"{self._weights_hash(entry.weights)}:{graph_name}:{device}"
        choice = _read_choices().get(key)
        if choice is None:
            inputs = tuple(t.to(device) for t in graph.example_inputs(config, MEASURE_BATCH))
            torch_s = _median_seconds(torch_runner, inputs)
            ort_s = _median_seconds(ort_runner, inputs)
            choice = "onnxruntime" if ort_s < torch_s else "torch"
            log.info("%s/%s on %s: torch %.2f ms, onnxruntime %.2f ms -> %s",
                     name, graph_name, device, torch_s * 1e3, ort_s * 1e3, choice)
            _remember(key, choice)
        return ort_runner if choice == "onnxruntime" else torch_runner
