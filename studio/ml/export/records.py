"""Writing the record beside every export (files with sha256, opset, parity error, size) and its model card; the
record is read by :mod:`studio.ml.runtime.exports`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from studio.core.safe_write import write_atomic
from studio.ml.checkpoint import sha256_file
from studio.ml.runtime.exports import RECORD_NAME, ExportRecord


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
