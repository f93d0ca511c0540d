"""`studio export onnx MODEL`: export, validate, optimise, optionally fp16/int8/int4, record.

fp16, int8 and int4 variants are converted from the model's fp32 export (made first when there is none of these
weights), so the slow step, exporting from torch, happens once per model. A GGUF language model is dequantised to
float32 and exported like any other model; its quantised variants record their quality cost (held-out perplexity
against fp32 and greedy-token agreement: the modality's export check, :mod:`studio.ml.eval.perplexity` for copy).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from studio.core.errors import BadInputError
from studio.core.modalities import export_check
from studio.core.safe_write import staged_folder
from studio.ml import registry
from studio.ml.checkpoint import load_model, sha256_file
from studio.ml.export import optimise
from studio.ml.export.greedy import check_greedy
from studio.ml.export.onnx_export import OPSET, export_architecture, validate_graph
from studio.ml.export.records import graph_entry, write_card, write_record
from studio.ml.runtime.exports import (
    FUSED_ONE_ROW_GRAPH,
    PER_TENSOR,
    PRODUCTS,
    SIGNED_WEIGHTS,
    ExportRecord,
    default_export_dir,
    find_export,
)
from studio.ml.store import ModelEntry, ModelStore
from studio.ml.text.lm import load_language_model

log = logging.getLogger(__name__)

VARIANTS = ("fp32", "fp16", "int8", "int4")
CONVERT = {"fp16": optimise.to_fp16, "int8": optimise.quantise_int8, "int4": optimise.quantise_int4}


def load_source(entry: ModelEntry) -> tuple[nn.Module, Any]:
    """The float32 torch module and config of a store entry (a GGUF language model is dequantised)."""
    if entry.meta.get("format") == "gguf":
        lm = load_language_model(entry.weights, "cpu", "fp32", name=entry.name)
        return lm.model, lm.config
    module, config, _ = load_model(entry.weights, expect_arch=entry.arch)
    return module, config


def _export_fp32(entry: ModelEntry, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Export from torch, validate, slim, optimise at onnxruntime's extended level and validate again."""
    module, config = load_source(entry)
    arch = registry.get(entry.arch)
    graphs = {}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        for result in export_architecture(arch, module.float().cpu().eval(), config, Path(tmp)):
            graph = next(g for g in arch.onnx if g.name == result.graph)
            final = out_dir / f"{result.graph}.onnx"
            staged = Path(tmp) / f"{result.graph}.opt.onnx"
            optimise.slim(result.path, staged)
            optimise.ort_optimise(staged, final)
            validate_graph(module, config, graph, final)  # the optimised graph must still match
            greedy = check_greedy(arch, module, config, graph, final)
            graphs[result.graph] = graph_entry(final, result.max_abs_error, result.max_rel_error, greedy)
    return graphs


def _export_fused(entry: ModelEntry, out_dir: Path, heldout: Path | None, store: ModelStore) -> ExportRecord:
    """The int4 language model: the fused graph built straight from the GGUF's blocks (seconds, no fp32 export
    first); its next-token logits after a chat prompt, held-out perplexity and greedy tokens are measured against
    the torch float32 model. A LoRA adapter is built on its base model's GGUF and merged twice: with per-tensor int8
    products smoothed on the merged model's activations over the app's copy prompts (prefills and candidate
    batches), and in 8-bit blocks (a single row, at several threads: :func:`studio.ml.runtime.cpu.one_row_graph`);
    both are measured against the float32 base with the adapter merged."""
    from studio.ml.export.calibration import calibrate
    from studio.ml.export.llama_graph import FORMAT, GRAPH, SMOOTHING, build_graph
    from studio.ml.runtime.cpu import signed_int8_weights
    from studio.ml.runtime.gqa_lm import load_gqa_language_model
    from studio.ml.runtime.lora_lm import base_model
    from studio.ml.train.lora import ARCH as LORA_ARCH
    from studio.ml.train.lora import adapter_low_rank, apply_adapter

    gguf, low_rank, calibration, extra = entry.weights, None, None, {"format": FORMAT}
    if entry.arch == LORA_ARCH:
        low_rank = adapter_low_rank(entry.weights)
        base = store.find(base_model(entry))
        store.verify(base)
        gguf = base.weights
        extra.update(base_model=base.name, base_sha256=sha256_file(gguf))
    reference = load_language_model(gguf, "cpu", "fp32", name=extra.get("base_model", entry.name))
    if low_rank is not None:
        reference = apply_adapter(reference, entry.weights, entry.name)
        calibration = calibrate(reference)
        signed = signed_int8_weights()
        extra.update({PRODUCTS: PER_TENSOR, SIGNED_WEIGHTS: "signed" if signed else "unsigned",
                      "smoothing": f"SmoothQuant alpha {SMOOTHING} on {calibration.source} "
                                   f"({calibration.tokens} tokens)"})
    with staged_folder(out_dir, f"the int4 ONNX export of {entry.name}") as staging:
        record = ExportRecord(model=entry.name, arch=entry.arch, variant="int4", folder=staging, graphs={},
                              source_sha256=sha256_file(entry.weights), opset=OPSET, extra=extra)
        path = staging / f"{GRAPH}.onnx"
        build_graph(gguf, path, low_rank=low_rank, calibration=calibration,
                    signed_weights=extra.get(SIGNED_WEIGHTS) != "unsigned")
        record.graphs[GRAPH] = graph_entry(path, 0.0, 0.0)
        if low_rank is not None:
            path = staging / f"{FUSED_ONE_ROW_GRAPH}.onnx"
            build_graph(gguf, path, low_rank=low_rank)
            record.graphs[FUSED_ONE_ROW_GRAPH] = graph_entry(path, 0.0, 0.0)
        fused = load_gqa_language_model(record, gguf, one_row=True)  # a single row on the blocks, as at 2+ threads
        for graph in record.graphs:
            record.graphs[graph].update(_logit_errors(reference, fused.on_graph(graph)))
        check = export_check(entry.arch).load()
        record.extra.update(quality=check(reference, fused, gguf, heldout),
                            note="built from the GGUF's own blocks; errors are of the next-token logits after a "
                                 "chat prompt against torch float32")
        if FUSED_ONE_ROW_GRAPH in record.graphs:  # what one stream runs on at several threads, measured alone
            record.extra["one_row_quality"] = check(reference, fused.on_graph(FUSED_ONE_ROW_GRAPH), gguf, heldout)
        write_record(record)
        write_card(record)
    return replace(record, folder=out_dir)


def _logit_errors(reference: Any, fused: Any) -> dict[str, float]:
    """The largest error of ``fused``'s next-token logits after the bench's chat prompt, absolute and relative to
    the largest logit of ``reference``."""
    from studio.ml.text.bench import MESSAGES

    prompt = reference.tokenizer.encode_chat(MESSAGES)
    want, got = reference.prefill(prompt, 1)[0], fused.prefill(prompt, 1)[0]
    error = float((want - got).abs().max())
    return {"max_abs_error": error, "max_rel_error": error / float(want.abs().max())}


def fp32_export(name: str, store: ModelStore) -> ExportRecord:
    """The verified fp32 export of the model's current weights, made now if there is none."""
    entry = store.find(name)
    record = find_export(name, ("fp32",), sha256_file(entry.weights))
    return record if record is not None else export_model(name, "fp32", store=store)


def export_model(
    name: str, variant: str = "fp32", out_dir: Path | None = None, store: ModelStore | None = None,
    heldout: Path | None = None,
) -> ExportRecord:
    """Export every graph of model ``name``; fp32 graphs are validated against torch before any conversion.

    ``heldout``: the package-description corpus whose slice measures a quantised language model's perplexity
    (default: one found under the data folder, else the built-in text)."""
    from studio.ml.train.lora import ARCH as LORA_ARCH

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    store = store or ModelStore()
    entry = store.find(name)
    store.verify(entry)
    out_dir = Path(out_dir) if out_dir else default_export_dir(name, variant)
    if variant == "int4" and (entry.meta.get("format") == "gguf" or entry.arch == LORA_ARCH):
        return _export_fused(entry, out_dir, heldout, store)
    if entry.arch == LORA_ARCH:
        raise BadInputError(f"{name} is a LoRA adapter: it exports as the CPU's int4 graph only (--int4)")
    base = fp32_export(name, store) if variant != "fp32" else None
    # The export is one unit (graphs, record, card): built beside out_dir and swapped in when complete, so a kill
    # or a full disk leaves the previous export whole and never a 0-byte graph.
    with staged_folder(out_dir, f"the {variant} ONNX export of {name}") as staging:
        extra: dict[str, Any] = {}
        if base is None:
            graphs = _export_fp32(entry, staging)
        else:
            graphs = {}
            for graph_name, info in base.graphs.items():
                final = staging / f"{graph_name}.onnx"
                CONVERT[variant](base.graph_path(graph_name), final)
                graphs[graph_name] = graph_entry(final, info["max_abs_error"], info["max_rel_error"])
            extra["note"] = "max errors are of the fp32 export this variant was converted from"
        record = ExportRecord(
            model=name,
            arch=entry.arch,
            variant=variant,
            folder=staging,
            graphs=graphs,
            source_sha256=sha256_file(entry.weights),
            opset=OPSET,
            extra=extra,
        )
        check = export_check(entry.arch)
        if base is not None and check is not None and variant in ("int8", "int4"):
            extra["quality"] = check.load()(base, record, entry.weights, heldout)
        write_record(record)
        write_card(record)
    return replace(record, folder=out_dir)
