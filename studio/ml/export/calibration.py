"""Activation ranges of a language model on the app's own copy prompts: what the per-tensor int8 products of an
adapter's graph are smoothed with (see :mod:`studio.ml.export.llama_graph`).

The prompts are those the copy workspace writes from the development briefs (``resources/briefs/dev``: the split the
adapter was trained and tuned on; the test briefs stay held out), one per brief and format, the fields taken in
turn (about 30,000 tokens, 15 s on 2 cores)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core import copy_prompts
from studio.core.ad_formats import get_format
from studio.core.copy_brief import load_brief
from studio.core.copy_plan import plan_ad
from studio.core.errors import BadInputError
from studio.core.paths import resources_dir

FORMATS = ("google-rsa", "meta")


def dev_briefs() -> Path:
    return resources_dir() / "briefs" / "dev"


@dataclass(frozen=True)
class Calibration:
    """Per layer, the largest |input| of each channel of the Q/K/V and gate/up products (the two RMSNorm outputs),
    and how many prompt tokens they were measured on."""

    qkv: list[np.ndarray]
    gate_up: list[np.ndarray]
    tokens: int
    source: str


def calibration_prompts(lm: Any, briefs: Path | None = None) -> list[list[int]]:
    """The chat prompt of one slot per brief and format: the first of one field (the display path aside), the
    fields taken in turn from brief to brief."""
    folder = briefs or dev_briefs()
    prompts = []
    for number, path in enumerate(sorted(folder.glob("*.json"))):
        brief = load_brief(path)
        for name in FORMATS:
            fmt = get_format(name)
            fields = [spec.name for spec in fmt.fields if spec.name != "path"]
            for slot in plan_ad(brief, fmt, {fields[number % len(fields)]: 1}):
                messages = copy_prompts.slot_messages(brief, fmt, slot.field, slot.angle)
                text = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
                prompts.append(lm.tokenizer.encode(text, add_bos=False))
    if not prompts:
        raise BadInputError(f"no briefs to calibrate on in {folder}")
    return prompts


def measure(lm: Any, prompts: list[list[int]], source: str) -> Calibration:
    """Run ``lm`` (torch) over ``prompts`` and keep each product input's per-channel largest magnitude."""
    layers = lm.model.layers
    qkv = [np.zeros(layer.self_attn.q_proj.weight.shape[1], np.float32) for layer in layers]
    gate_up = [np.zeros(layer.mlp.gate_proj.weight.shape[1], np.float32) for layer in layers]

    def keeper(store: list[np.ndarray], i: int) -> Any:
        def keep(module: Any, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().float().abs().reshape(-1, args[0].shape[-1]).amax(0).cpu().numpy()
            np.maximum(store[i], x, out=store[i])
        return keep

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.self_attn.q_proj.register_forward_pre_hook(keeper(qkv, i)))
        handles.append(layer.mlp.gate_proj.register_forward_pre_hook(keeper(gate_up, i)))
    try:
        with torch.inference_mode():
            for ids in prompts:
                lm.prefill(ids, 1)
    finally:
        for handle in handles:
            handle.remove()
        lm.prompt_cache.clear()
    return Calibration(qkv, gate_up, sum(len(p) for p in prompts), source)


def calibrate(lm: Any, briefs: Path | None = None) -> Calibration:
    folder = briefs or dev_briefs()
    prompts = calibration_prompts(lm, folder)
    return measure(lm, prompts, f"{len(prompts)} copy prompts from {folder.name} briefs")
