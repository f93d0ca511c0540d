"""The copy modality's preflight: reading the user's lines of copy and the estimate of a LoRA preset on the chosen
base language model, fed the longest batch of those lines (see :mod:`studio.core.modalities.copy`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from studio.core import copy_prompts
from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec
from studio.core.modalities.copy import BASE_LANGUAGE_MODEL
from studio.ml.data.copy_text import read_training_lines
from studio.ml.text.lm import get_language_model
from studio.ml.train.copy_run import CopyTrainConfig, settings_for, training_items
from studio.ml.train.lora import (
    example_loss,
    lora_parameters,
    make_example,
    split_validation,
    total_steps,
    with_lora,
)
from studio.ml.train.preflight import MB, Estimate, data_path, estimate_result, parameter_bytes, timed_steps


def inspect(path: Path, grid: int = 0) -> dict[str, Any]:
    del grid  # lines of text are not sliced
    text = read_training_lines(path)
    rejected = []
    if text.skipped:
        rejected.append({"file": path.name, "reason": f"{text.skipped} empty, duplicate or over-long line(s) skipped"})
    if text.sampled:
        rejected.append({"file": path.name, "reason": f"large file: {len(text.lines)} of {text.total} lines sampled"})
    return {"usable": len(text.lines), "counts": {"examples": len(text.lines)}, "rejected": rejected}


def estimate(spec: JobSpec, ctx: JobContext, preset: str, max_steps: int) -> Estimate:
    config = CopyTrainConfig(name="estimate", data=data_path(spec), preset=preset, max_steps=max_steps)
    settings = settings_for(config)
    ctx.progress(0.1, "loading the base language model…")
    base = str(spec.params.get("base") or BASE_LANGUAGE_MODEL)
    lm = get_language_model(ctx.resources, base, ctx.device, runtime="torch")
    if lm.source.get("base_model"):
        raise BadInputError(f"{lm.name!r} is an adapter: train on a base language model")
    train_items, held_items, _, _ = training_items(config, lm)
    train_part, val_items = split_validation(train_items, settings)
    system = copy_prompts.render("system.txt", {})
    examples = [make_example(lm, system, request, lines, settings.max_tokens) for request, lines in train_part]
    batch = sorted(examples, key=lambda e: len(e.ids), reverse=True)[: settings.batch]  # the longest: a bound
    model = with_lora(lm.model, settings.lora, settings.seed)
    optimiser = torch.optim.AdamW(lora_parameters(model), lr=settings.lr, weight_decay=0.0)
    pad = lm.tokenizer.pad_id

    def step() -> None:
        ctx.check_cancel()
        model.train()
        loss, count = example_loss(model, batch, pad, lm.device)
        optimiser.zero_grad(set_to_none=True)
        (loss / max(1, count)).backward()
        optimiser.step()

    ctx.progress(0.4, "timing a few training steps…")
    step_s, peak = timed_steps(step, ctx.device)
    model.eval()
    with torch.no_grad():
        started = time.perf_counter()
        example_loss(model, batch, pad, lm.device)
        forward_s = (time.perf_counter() - started) / len(batch)
    steps = total_steps(len(examples), settings)
    measured = 2 * len(held_items) + len(val_items) * (settings.epochs + 1)  # perplexities before, per epoch, after
    seconds = step_s * steps + forward_s * measured
    cfg = lm.model.config
    tokens = len(batch) * max(len(e.ids) for e in batch)
    lora_bytes = sum(p.numel() for p in lora_parameters(model)) * 4 * 4
    activations = tokens * (cfg.n_layers * (cfg.dim * 12 + cfg.ffn_dim * 4) + cfg.vocab_size * 3) * 4
    attention = len(batch) * cfg.n_heads * (tokens // len(batch)) ** 2 * cfg.n_layers * 4 * 2
    memory = (peak * MB + parameter_bytes(lm.model)) / MB if peak is not None else \
        (parameter_bytes(lm.model) + lora_bytes + activations + attention) / MB
    detail = (f"LoRA rank {settings.lora.rank} on {lm.name}; at most {settings.epochs} epochs of {len(examples)} "
              "examples, fewer when the validation lines stop improving")
    return estimate_result(seconds, step_s, steps, memory, ctx.device, detail)
