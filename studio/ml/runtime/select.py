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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from studio.core import paths
from studio.core.errors import BadInputError, DiskWriteError, ModelFileError, StudioError
from studio.core.formats.json_file import read_json
from studio.core.safe_write import write_atomic
from studio.ml import registry
from studio.ml.checkpoint import load_model, sha256_file
from studio.ml.export.records import ExportRecord, read_record, stale_reason, verify_record
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import GraphRunner, OrtGraphRunner, TorchGraphRunner

log = logging.getLogger(__name__)

MEASURE_BATCH = 16
CHOICES_FILE = "runtime_choices.json"


def _choices_path() -> Path:
    return paths.cache_dir() / CHOICES_FILE


def _read_choices() -> dict[str, str]:
    """Measured choices; a missing or damaged file is no choice yet (they are measured again)."""
    try:
        raw = read_json(_choices_path(), max_bytes=1 << 20)
    except BadInputError:
        return {}
    return {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}


def _remember(key: str, runtime: str) -> None:
    choices = _read_choices()
    choices[key] = runtime
    try:
        write_atomic(_choices_path(), json.dumps(choices, indent=2), "the runtime choices")
    except DiskWriteError as exc:  # only costs a measurement next time
        log.warning("%s", exc)


def fastest(key: str, timings: Callable[[], dict[str, float]], what: str) -> str:
    """The option remembered under ``key``; when this machine has no answer yet, ``timings()`` measures every
    option ({name: seconds}, lower is faster; the first wins a tie) and the fastest is remembered."""
    choice = _read_choices().get(key)
    if choice is None:
        seconds = timings()
        choice = min(seconds, key=seconds.__getitem__)
        log.info("%s: %s -> %s", what, ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in seconds.items()), choice)
        _remember(key, choice)
    return choice


def measured_choice(key: str, measure: Callable[[], tuple[float, float]], what: str) -> str:
    """"torch" or "onnxruntime", remembered under ``key``; measured once with ``measure() -> (torch_s,
    onnxruntime_s)`` when this machine has no answer yet."""
    return fastest(key, lambda: dict(zip(("torch", "onnxruntime"), measure(), strict=True)), what)


def find_export(name: str, variants: Sequence[str], source_sha256: str) -> ExportRecord | None:
    """The first of ``variants`` exported (by `studio export onnx`, or shipped in the bundle) from exactly these
    weights, verified."""
    from studio.ml.export.pipeline import export_dirs

    for variant in variants:
        for folder in export_dirs(name, variant):
            if not (folder / "export.json").exists():
                continue
            record = read_record(folder)
            if record.source_sha256 != source_sha256:
                log.warning("the %s ONNX export of %s in %s is of other weights; ignoring it", variant, name, folder)
                continue
            if (reason := stale_reason(record)) is not None:
                log.warning("the %s ONNX export of %s in %s %s; ignoring it (it is made again)", variant, name,
                            folder, reason)
                continue
            verify_record(record)
            return record
    return None


def has_export(name: str, variant: str, store: Any = None) -> bool:
    """Whether a verified ``variant`` export of model ``name``'s current weights is in the user model folder (a
    damaged one counts as missing: it is made again)."""
    from studio.ml.store import ModelStore

    try:
        weights = (store or ModelStore()).find(name).weights
        return find_export(name, (variant,), sha256_file(weights)) is not None
    except ModelFileError:
        return False


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


def usable_exports(
    name: str, sha256: str, variants: Sequence[str], preference: str,
    accept: Callable[[ExportRecord], bool] = lambda record: True,
) -> list[ExportRecord]:
    """The verified exports of these weights among ``variants`` (in that order) that ``accept`` takes. A damaged
    one is refused (ModelFileError) when onnxruntime is forced, else skipped with a warning."""
    found = []
    for variant in variants:
        try:
            record = find_export(name, (variant,), sha256)
        except ModelFileError as exc:
            if preference == "onnxruntime":
                raise
            log.warning("%s; not using it", exc)
            continue
        if record is not None and accept(record):
            found.append(record)
        elif record is not None:
            log.warning("not using the %s ONNX export of %s (its measured quality is not within tolerance)",
                        variant, name)
    return found


def pick_export(
    store: Any, name: str, sha256: str, variants: Sequence[str], preference: str,
    accept: Callable[[ExportRecord], bool] = lambda record: True,
) -> ExportRecord | None:
    """The first of :func:`usable_exports`; with none, None, except when onnxruntime is forced: then the fp32
    export is made now (once)."""
    found = usable_exports(name, sha256, variants, preference, accept)
    if found or preference != "onnxruntime":
        return found[0] if found else None
    from studio.ml.export.pipeline import export_model

    log.warning("%s has no ONNX export yet: exporting it now (once)", name)
    record = export_model(name, "fp32", store=store)
    verify_record(record)
    return record


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

    def _ort_runner(self, name: str, graph_name: str, device: str, export_if_missing: bool) -> OrtGraphRunner | None:
        entry = self.resources.store.find(name)
        arch = registry.get(entry.arch)
        graph = next((g for g in arch.onnx if g.name == graph_name), None)
        if graph is None:
            raise StudioError(f"{entry.arch} has no ONNX graph {graph_name!r}")
        variants = ("fp16", "fp32") if device == "cuda" else ("fp32",)
        preference = "onnxruntime" if export_if_missing else "auto"
        record = pick_export(self.resources.store, name, self._weights_hash(entry.weights), variants, preference)
        if record is None:
            return None
        key = f"ort:{name}:{graph_name}:{device}:{record.variant}"
        session = self.resources.cache.get(
            key,
            lambda: open_session(record.graph_path(graph_name), device, self.resources.cpu_threads, graph),
        )
        return OrtGraphRunner(session, [i.name for i in session.get_inputs()], device)

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

        def measure() -> tuple[float, float]:
            inputs = tuple(t.to(device) for t in graph.example_inputs(config, MEASURE_BATCH))
            return _median_seconds(torch_runner, inputs), _median_seconds(ort_runner, inputs)

        choice = measured_choice(key, measure, f"{name}/{graph_name} on {device}")
        return ort_runner if choice == "onnxruntime" else torch_runner
