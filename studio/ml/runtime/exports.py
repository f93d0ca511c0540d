"""Finding a model's ONNX exports: the record written beside every export (files with sha256, opset, parity
error), read and verified before a session is opened on it. :mod:`studio.ml.export` writes them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import ModelFileError
from studio.core.formats.json_file import expect_object, read_json
from studio.ml.checkpoint import sha256_file
from studio.ml.runtime.cpu import signed_int8_weights
from studio.ml.store import ModelStore

log = logging.getLogger(__name__)

RECORD_NAME = "export.json"
# A language model's int4 export is the fused graph of studio.ml.export.llama_graph; its name, its inputs and the
# format of its layout (exports of another format are made again) live here, where exports are read.
FUSED_GRAPH = "decoder_gqa"
FUSED_FORMAT = 6  # 2: rotary positions and an attention bias are inputs (rows sharing a prefix); 3: 8-bit embedding;
# 4: an adapter merged into 8-bit blocks; 5: an adapter's Q/K/V, attention output and gate/up as smoothed per-tensor
# int8 products (DynamicQuantizeMatMul); 6: an adapter's export holds both, the blocks for a single row
FUSED_ONE_ROW_GRAPH = "decoder_gqa_one_row"  # an adapter's graph in 8-bit blocks: one stream at several threads
SIGNED_WEIGHTS = "int8_weights"  # the record's key: "signed" or "unsigned" (see studio.ml.runtime.cpu)
PRODUCTS = "products"  # the record's key: what an adapter's graphs multiply with
PER_TENSOR = "per-tensor int8; a single row also in 8-bit blocks"
FUSED_INPUTS = ("input_ids", "seqlens_k", "total_sequence_length", "logit_positions", "position_ids",
                "attention_bias")


@dataclass(frozen=True)
class ExportRecord:
    model: str
    arch: str
    variant: str  # "fp32" | "fp16" | "int8" | "int4"
    folder: Path
    graphs: dict[str, dict[str, Any]]  # graph -> {file, sha256, size_bytes, max_abs_error, max_rel_error}
    source_sha256: str
    opset: int
    extra: dict[str, Any]

    def graph_path(self, graph: str) -> Path:
        try:
            return self.folder / self.graphs[graph]["file"]
        except KeyError:
            raise ModelFileError(f"export {self.folder} has no graph {graph!r}") from None


def read_record(folder: Path) -> ExportRecord:
    path = folder / RECORD_NAME
    data = expect_object(read_json(path, str(path), error=ModelFileError), str(path), ModelFileError)
    graphs = data.get("graphs")
    if not isinstance(graphs, dict) or not all(
        isinstance(g, dict) and isinstance(g.get("file"), str) and Path(g["file"]).name == g["file"]
        and isinstance(g.get("sha256"), str) for g in graphs.values()
    ):
        raise ModelFileError(f"{path} is damaged (each graph needs a file name beside it and a sha256); "
                             "export the model again")
    try:
        return ExportRecord(
            model=data["model"],
            arch=data["arch"],
            variant=data["variant"],
            folder=folder,
            graphs=dict(data["graphs"]),
            source_sha256=data["source_sha256"],
            opset=int(data["opset"]),
            extra={k: v for k, v in data.items() if k not in {"model", "arch", "variant", "graphs", "opset"}},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path} is missing or damaged ({exc}); export the model again") from None


def verify_record(record: ExportRecord) -> None:
    """Every graph file must exist with its recorded sha256 before a session is opened on it."""
    for name, info in record.graphs.items():
        path = record.folder / info["file"]
        if not path.exists():
            raise ModelFileError(f"ONNX graph {name!r} of {record.model} is missing ({path.name})")
        if sha256_file(path) != info["sha256"]:
            raise ModelFileError(
                f"ONNX graph {name!r} of {record.model} does not match its recorded sha256: changed or damaged"
            )


def older_format(record: ExportRecord) -> bool:
    """Whether a language model's int4 export is not the fused graph in its current format."""
    return record.arch in ("llama", "llama-lora") and record.variant == "int4" and (
        FUSED_GRAPH not in record.graphs or record.extra.get("format") != FUSED_FORMAT)


def stale_reason(record: ExportRecord) -> str | None:
    """Why an export cannot be used here by this version of Studio (it is made again), or None: an older format, or
    signed weights this CPU could saturate."""
    if older_format(record):
        return f"is from an older version of Studio (not the fused graph of format {FUSED_FORMAT})"
    if record.extra.get(SIGNED_WEIGHTS) == "signed" and not signed_int8_weights():
        return ("holds signed int8 weights, made on a CPU with int8 dot products; this CPU lacks them and its int8 "
                "products could saturate on such weights")
    return None


def default_export_dir(model: str, variant: str) -> Path:
    return paths.user_models_dir() / "onnx" / model / variant


def export_dirs(model: str, variant: str) -> tuple[Path, Path]:
    """Where a ``variant`` export of ``model`` may be: the user's folder (made here), then the one shipped with the
    program (the bundle's models/onnx, read-only)."""
    return default_export_dir(model, variant), paths.bundled_models_dir() / "onnx" / model / variant


def find_export(name: str, variants: Sequence[str], source_sha256: str) -> ExportRecord | None:
    """The first of ``variants`` exported (by `studio export onnx`, or shipped in the bundle) from exactly these
    weights, verified."""
    for variant in variants:
        for folder in export_dirs(name, variant):
            if not (folder / RECORD_NAME).exists():
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
    try:
        weights = (store or ModelStore()).find(name).weights
        return find_export(name, (variant,), sha256_file(weights)) is not None
    except ModelFileError:
        return False


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
