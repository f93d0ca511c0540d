"""The record written beside every export: files with sha256, opset, parity error, size, and a model card."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import ModelFileError
from studio.core.formats.json_file import expect_object, read_json
from studio.core.safe_write import write_atomic
from studio.ml.checkpoint import sha256_file

RECORD_NAME = "export.json"


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


def write_record(record: ExportRecord) -> Path:
    data = {
        "model": record.model,
        "arch": record.arch,
        "variant": record.variant,
        "opset": record.opset,
        "source_sha256": record.source_sha256,
        "graphs": record.graphs,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **record.extra,
    }
    return write_atomic(record.folder / RECORD_NAME, json.dumps(data, indent=2) + "\n", "the export record")


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


def stale_reason(record: ExportRecord) -> str | None:
    """Why an export cannot be used by this version of Studio (it is made again), or None. A language model's int4
    export is the fused graph of :mod:`studio.ml.export.llama_graph`, in its current format."""
    from studio.ml.export.llama_graph import FORMAT, GRAPH

    if record.arch == "llama" and record.variant == "int4" and (
            GRAPH not in record.graphs or record.extra.get("format") != FORMAT):
        return f"is from an older version of Studio (not the fused graph of format {FORMAT})"
    return None


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


def graph_entry(path: Path, max_abs: float, max_rel: float, greedy_steps: int | None = None) -> dict[str, Any]:
    entry = {
        "file": path.name,
        "sha256": sha256_file(path),
        "size_bytes": path.stat().st_size,
        "max_abs_error": max_abs,
        "max_rel_error": max_rel,
    }
    if greedy_steps is not None:
        entry["greedy_tokens_equal_steps"] = greedy_steps
    return entry


def write_card(record: ExportRecord) -> Path:
    lines = [
        f"# {record.model} — ONNX export ({record.variant})",
        "",
        f"- architecture: `{record.arch}`, opset {record.opset}",
        f"- source weights sha256: `{record.source_sha256}`",
        "",
        "| graph | size | max abs error vs torch | max rel error |",
        "|---|---|---|---|",
    ]
    for name, info in record.graphs.items():
        size_mb = info["size_bytes"] / 1e6
        lines.append(f"| {name} | {size_mb:.2f} MB | {info['max_abs_error']:.3g} | {info['max_rel_error']:.3g} |")
    for name, info in record.graphs.items():
        if "greedy_tokens_equal_steps" in info:
            lines.append(f"\n- {name}: greedy tokens equal to torch's for {info['greedy_tokens_equal_steps']} steps")
    for key, value in record.extra.items():
        if key not in {"source_sha256", "created"}:
            lines.append(f"\n- {key}: {value}")
    return write_atomic(record.folder / "README.md", "\n".join(lines) + "\n", "the export's card")
