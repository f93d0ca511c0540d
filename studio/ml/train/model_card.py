"""The model card written beside every model a user trains: data, licence, settings, time, hardware, metrics,
samples. Read from the model's own sidecar so the card can never disagree with the file it describes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.core.safe_write import copy_of, write_atomic
from studio.ml.checkpoint import read_sidecar


def _table(rows: dict[str, Any]) -> list[str]:
    lines = ["| | |", "|---|---|"]
    for key, value in rows.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {text.replace('|', '/')} |")
    return lines


def describe_data(data: Any) -> str:
    """One line for a data-set description: its source and counts per split."""
    if not isinstance(data, dict):
        return str(data)
    counts = data.get("counts", {})
    per_split = "; ".join(f"{split}: {sum(c.values()) if isinstance(c, dict) else c}" for split, c in counts.items())
    return f"{data.get('source') or data.get('name', 'unnamed')} ({per_split or 'no counts'})"


def _fine_tuned_from(init: Any) -> list[str]:
    """The card line of a fine-tuned model: its weights started from another model, whose data it carries too."""
    if not init:
        return []
    if isinstance(init, dict):
        where = f"`{Path(init.get('path', '')).stem}` (sha256 `{str(init.get('sha256', ''))[:12]}`)"
    else:
        where = f"`{Path(str(init)).stem}`"
    return [f"- fine-tuned from {where}: what that model learnt from its own data (and that data's licence) "
            "is part of this one; see its card"]


def write_model_card(weights: Path, licence: str = "", samples: Path | None = None) -> Path:
    """Write ``<weights>.md`` (and ``<stem>-samples.png`` from ``samples``); records ``licence`` in the sidecar."""
    weights = Path(weights)
    side = weights.with_suffix(".json")
    meta = read_sidecar(weights)
    if licence:
        meta["licence"] = licence
        write_atomic(side, json.dumps(meta, indent=2), f"the description of {weights.stem}")
    training = meta.get("training", {})
    name = meta.get("name", weights.stem)
    lines = [
        f"# {name}",
        "",
        f"A `{meta['arch']}` model ({meta.get('family', '')}, {meta.get('modality', '')}) trained with Studio"
        + (f" on top of the base model `{meta['base_model']}`." if meta.get("base_model") else "."),
        "",
        "## Data and licence",
        "",
        f"- data: {describe_data(training.get('data', meta.get('data', 'not recorded')))}",
        f"- categories: {', '.join(meta.get('categories', [])) or 'none'}",
        f"- licence of the data (declared by the user): {meta.get('licence') or 'not declared'}",
        *_fine_tuned_from(training.get("init_from")),
        "",
        "## Training",
        "",
        *_table({k: v for k, v in training.items() if not isinstance(v, dict | list)}),
        "",
        "## Metrics",
        "",
        *(_table(meta.get("metrics", {})) if meta.get("metrics") else ["No metrics were recorded."]),
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(meta.get("config", {}), indent=2),
        "```",
    ]
    if samples is not None and Path(samples).exists():
        target = weights.with_name(f"{weights.stem}-samples.png")
        write_atomic(target, copy_of(samples), f"the samples of {weights.stem}")
        lines += ["", "## Samples", "", f"![samples]({target.name})"]
    return write_atomic(weights.with_suffix(".md"), "\n".join(lines) + "\n", f"the card of {weights.stem}")
