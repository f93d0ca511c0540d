"""Export each graph of a registered architecture with the dynamo exporter, then validate it against torch.

Validation runs at a batch size different from the export's, so a graph that silently baked in a shape is caught.
A graph whose outputs drift beyond the architecture's tolerance is refused (the file is deleted, never recorded).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.core.errors import ExportDriftError, StudioError
from studio.core.safe_write import write_atomic
from studio.ml.export.greedy import check_greedy
from studio.ml.registry import Architecture, OnnxGraph

log = logging.getLogger(__name__)

OPSET = 18
EXPORT_BATCH = 2
VALIDATE_BATCH = 3


@dataclass(frozen=True)
class GraphExport:
    graph: str
    path: Path
    opset: int
    max_abs_error: float
    max_rel_error: float
    seconds: float
    greedy_steps: int | None = None  # Transformers: greedy tokens checked equal to torch's for this many steps


def _as_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _flatten(outputs: Any) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat: list[torch.Tensor] = []
    for item in outputs:
        flat.extend(_flatten(item))
    return flat


def export_graph(module: nn.Module, config: Any, graph: OnnxGraph, path: Path) -> float:
    """Write ``graph`` of ``module`` to ``path`` (opset 18, dynamic axes named); returns seconds taken."""
    wrapped = graph.wrap(module).eval()
    inputs = graph.example_inputs(config, EXPORT_BATCH)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapped,
            tuple(inputs),
            dynamo=True,
            opset_version=OPSET,
            input_names=graph.inputs_for(config),
            output_names=list(graph.output_names),
            dynamic_axes=graph.axes_for(config) or None,
            verbose=False,
        )
    write_atomic(path, program.model_proto.SerializeToString(), f"the ONNX graph {path.name}")
    return time.perf_counter() - start


def compare_outputs(expected: list[np.ndarray], actual: list[np.ndarray]) -> tuple[float, float]:
    if len(expected) != len(actual):
        raise ExportDriftError(f"the graph returns {len(actual)} outputs, torch returns {len(expected)}")
    max_abs = max_rel = 0.0
    for want, got in zip(expected, actual, strict=True):
        if want.shape != got.shape:
            raise ExportDriftError(f"output shape {got.shape} differs from torch's {want.shape}")
        diff = np.abs(want.astype(np.float64) - got.astype(np.float64))
        max_abs = max(max_abs, float(diff.max(initial=0.0)))
        scale = np.abs(want.astype(np.float64)).max(initial=0.0) + 1e-12
        max_rel = max(max_rel, float(diff.max(initial=0.0) / scale))
    return max_abs, max_rel


def validate_graph(module: nn.Module, config: Any, graph: OnnxGraph, path: Path) -> tuple[float, float]:
    """Run torch and onnxruntime (CPU) on fresh inputs at another batch size; raise if they drift."""
    import onnxruntime as ort

    wrapped = graph.wrap(module).eval()
    inputs = graph.example_inputs(config, VALIDATE_BATCH)
    with torch.no_grad():
        expected = [_as_numpy(t) for t in _flatten(wrapped(*inputs))]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: _as_numpy(value) for name, value in zip(graph.inputs_for(config), inputs, strict=True)}
    actual = session.run(None, feed)
    max_abs, max_rel = compare_outputs(expected, actual)
    if max_abs > graph.atol and max_rel > graph.rtol:
        raise ExportDriftError(
            f"graph {graph.name!r} drifts from torch: max abs error {max_abs:.3g} > {graph.atol:g} "
            f"and relative {max_rel:.3g} > {graph.rtol:g}; the export was refused"
        )
    return max_abs, max_rel


def export_architecture(
    arch: Architecture, module: nn.Module, config: Any, out_dir: Path, graphs: list[str] | None = None
) -> list[GraphExport]:
    """Export and validate every graph (or the named ones) of a model into ``out_dir``."""
    if not arch.onnx:
        raise StudioError(f"{arch.name} has no ONNX graphs registered")
    module = module.float().cpu().eval()
    results = []
    for graph in arch.onnx:
        if graphs and graph.name not in graphs:
            continue
        path = out_dir / f"{graph.name}.onnx"
        seconds = export_graph(module, config, graph, path)
        try:
            max_abs, max_rel = validate_graph(module, config, graph, path)
            greedy = check_greedy(arch, module, config, graph, path)
        except Exception:
            path.unlink(missing_ok=True)
            raise
        log.info("exported %s/%s in %.1fs (max abs error %.2g)", arch.name, graph.name, seconds, max_abs)
        results.append(GraphExport(graph.name, path, OPSET, max_abs, max_rel, seconds, greedy))
    return results
