"""`studio export onnx MODEL`: export, validate, optimise, optionally fp16/int8/int4, record."""

from __future__ import annotations

import tempfile
from pathlib import Path

from studio.core import paths
from studio.ml import registry
from studio.ml.checkpoint import load_model, sha256_file
from studio.ml.export import optimise
from studio.ml.export.onnx_export import export_architecture, validate_graph
from studio.ml.export.records import ExportRecord, graph_entry, write_card, write_record
from studio.ml.store import ModelStore

VARIANTS = ("fp32", "fp16", "int8", "int4")


def default_export_dir(model: str, variant: str) -> Path:
    return paths.user_models_dir() / "onnx" / model / variant


def export_model(
    name: str, variant: str = "fp32", out_dir: Path | None = None, store: ModelStore | None = None
) -> ExportRecord:
    """Export every graph of model ``name``; fp32 graphs are validated against torch before any conversion."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    store = store or ModelStore()
    entry = store.find(name)
    store.verify(entry)
    module, config, _ = load_model(entry.weights, expect_arch=entry.arch)
    arch = registry.get(entry.arch)
    out_dir = Path(out_dir) if out_dir else default_export_dir(name, variant)
    out_dir.mkdir(parents=True, exist_ok=True)
    graphs = {}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        for result in export_architecture(arch, module, config, Path(tmp)):
            graph = next(g for g in arch.onnx if g.name == result.graph)
            final = out_dir / f"{result.graph}.onnx"
            staged = Path(tmp) / f"{result.graph}.opt.onnx"
            optimise.slim(result.path, staged)
            if variant == "fp16":
                optimise.to_fp16(staged, final)
            elif variant == "int8":
                optimise.quantise_int8(staged, final)
            elif variant == "int4":
                optimise.quantise_int4(staged, final)
            else:
                optimise.ort_optimise(staged, final)
                validate_graph(module, config, graph, final)  # the optimised graph must still match
            graphs[result.graph] = graph_entry(final, result.max_abs_error, result.max_rel_error)
    record = ExportRecord(
        model=name,
        arch=entry.arch,
        variant=variant,
        folder=out_dir,
        graphs=graphs,
        source_sha256=sha256_file(entry.weights),
        opset=18,
        extra={"note": "max errors are of the fp32 export; quantised variants are measured by `studio bench`"}
        if variant != "fp32"
        else {},
    )
    write_record(record)
    write_card(record)
    return record
