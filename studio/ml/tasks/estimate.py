"""``train.estimate``: time and memory of a training preset on this machine, from a few real training steps.

Each modality builds what its preset really trains: the sprite network of the preset; a LoRA adapter on the chosen
base language model, fed the longest batch of the user's own lines; the music Transformer that the user's tunes
fine-tune (the installed model; a new one of the preset's size for a built data set). It times ``ESTIMATE_STEPS``
optimiser steps after a warm-up step and multiplies by the run's steps. Memory is the measured peak on a GPU and, on
the CPU, a bound from the parameters (weights, gradients, two AdamW moments) and the activations of one batch.

Params: ``modality``, ``preset``, ``path`` (the data), ``family`` (sprites), ``base`` (copy: the language model;
sprites and music: the model to fine-tune, "" for a new one, absent for what the CLI picks), ``max_steps`` (0: the
preset's). Payload: ``{"seconds", "steps", "memory_mb", "device", "step_ms", "detail"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.core.context import JobContext
from studio.core.errors import BadInputError, ModelFileError
from studio.core.jobs import JobSpec
from studio.ml.tasks import task
from studio.ml.tasks.data import data_path, inspect_sprites

ESTIMATE_STEPS = 3
MB = 2**20
Estimate = dict[str, Any]


def timed_steps(step: Callable[[], None], device: str) -> tuple[float, float | None]:
    """(seconds per ``step`` after one warm-up call, CUDA memory it allocated at peak in MB; None on the CPU)."""
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    before = 0
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    step()
    start = time.perf_counter()
    for _ in range(ESTIMATE_STEPS):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / ESTIMATE_STEPS
    return seconds, (torch.cuda.max_memory_allocated() - before) / MB if cuda else None


def _bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _result(seconds: float, step_s: float, steps: int, memory_mb: float, device: str, detail: str) -> Estimate:
    return {"seconds": float(seconds), "steps": int(steps), "memory_mb": float(memory_mb), "device": device,
            "step_ms": float(step_s * 1e3), "detail": detail}


def _sprite(spec: JobSpec, ctx: JobContext, preset: str, max_steps: int) -> Estimate:
    from studio.ml import registry
    from studio.ml.checkpoint import config_from_dict
    from studio.ml.data.prepare import is_dataset
    from studio.ml.train.sprite import ARCHS, SpriteTrainConfig, make_plan
    from studio.ml.train.sprite_objectives import OBJECTIVES, Hyper
    from studio.ml.train.warm_start import read_base_model

    family = str(spec.params.get("family") or "gan")
    categories, users_data = 1, False
    if spec.params.get("path"):
        users_data = not is_dataset(Path(str(spec.params["path"])).expanduser())
        try:
            found = inspect_sprites(data_path(spec), int(spec.params.get("grid", 0) or 0))
            categories = max(1, len(found["counts"]))
        except BadInputError:
            categories = 1
    name = spec.params.get("base", ARCHS[family] if users_data else "")
    base = read_base_model(ctx.resources.store.verified_weights(str(name)), ARCHS[family]) if name else None
    config = SpriteTrainConfig(family=family, data=Path("."), preset=preset, max_steps=max_steps or None)
    plan = make_plan(config, [f"c{i}" for i in range(categories)], base)
    arch = registry.get(ARCHS[family])
    device = ctx.device
    model = arch.build(config_from_dict(arch.config_cls, plan.model)).to(device).train()
    objective = OBJECTIVES[family](model, Hyper(**plan.hyper), lambda m: m)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(plan.batch_size, 4, 32, 32, generator=gen, device=device) * 2 - 1
    labels = torch.randint(0, categories, (plan.batch_size,), generator=gen, device=device)
    step_s, peak = timed_steps(lambda: objective.train_step(x, labels, gen), device)
    params = sum(p.numel() for p in model.parameters())
    activations = plan.batch_size * 4 * 32 * 32 * 4 * 64  # a generous bound for these small conv nets
    memory = peak if peak is not None else (params * 4 * 4 + activations) / MB  # weights, grads, two Adam moments
    start = f"fine-tuning {name}" if base is not None else f"a new {family}"
    return _result(step_s * plan.steps, step_s, plan.steps, memory, device, f"{start}, {plan.batch_size} a batch")



def _copy(spec: JobSpec, ctx: JobContext, preset: str, max_steps: int) -> Estimate:
    from studio.core import copy_prompts
    from studio.core.defaults import BASE_LANGUAGE_MODEL
    from studio.ml.tasks.copy import load_copy_model
    from studio.ml.train.copy_run import CopyTrainConfig, settings_for, training_items
    from studio.ml.train.lora import (
        example_loss,
        lora_parameters,
        make_example,
        split_validation,
        total_steps,
        with_lora,
    )

    config = CopyTrainConfig(name="estimate", data=data_path(spec), preset=preset, max_steps=max_steps)
    settings = settings_for(config)
    ctx.progress(0.1, "loading the base language model…")
    base = str(spec.params.get("base") or BASE_LANGUAGE_MODEL)
    lm = load_copy_model(ctx.resources, base, ctx.device, runtime="torch")
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
    memory = (peak * MB + _bytes(lm.model)) / MB if peak is not None else \
        (_bytes(lm.model) + lora_bytes + activations + attention) / MB
    detail = (f"LoRA rank {settings.lora.rank} on {lm.name}; at most {settings.epochs} epochs of {len(examples)} "
              "examples, fewer when the validation lines stop improving")
    return _result(seconds, step_s, steps, memory, ctx.device, detail)


def _music(spec: JobSpec, ctx: JobContext, preset_name: str, max_steps: int) -> Estimate:
    from studio.core.defaults import DEFAULT_MODELS
    from studio.ml.checkpoint import load_model
    from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
    from studio.ml.train.music import ARCH, PRESETS, make_batch, sequence_loss

    if preset_name not in PRESETS:
        raise BadInputError(f"unknown preset {preset_name!r}: use {', '.join(PRESETS)}")
    preset = PRESETS[preset_name]
    path = data_path(spec)
    device = ctx.device
    model: nn.Module | None = None
    # The user's own tunes fine-tune the installed model unless told otherwise, as the CLI does.
    name = str(spec.params.get("base", "" if (path / "train.npz").exists() else DEFAULT_MODELS["music"]))
    if name:
        try:
            model, config, _ = load_model(ctx.resources.store.verified_weights(name), expect_arch=ARCH, device=device)
            detail = f"fine-tuning {name}, {preset.batch} windows a batch"
        except ModelFileError:
            model = None
    if model is None:
        config = MusicTransformerConfig(**preset.model)
        model = MusicTransformer(config).to(device)
        detail = f"a new model ({config.n_layer} layers, width {config.n_embd}), {preset.batch} windows a batch"
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=preset.lr, betas=(0.9, 0.95), weight_decay=0.05)
    rng = np.random.default_rng(0)
    windows = [rng.integers(0, config.vocab_size, config.block_size + 1) for _ in range(preset.batch)]
    x, y = make_batch(windows, device)  # full-length windows: an upper bound on the real (often shorter) ones

    def step() -> None:
        ctx.check_cancel()
        loss = sequence_loss(model, x, y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    ctx.progress(0.3, "timing a few training steps…")
    step_s, peak = timed_steps(step, device)
    steps = max_steps or preset.steps
    tokens = preset.batch * config.block_size
    activations = tokens * (config.n_layer * config.n_embd * 16 + config.vocab_size * 3) * 4
    attention = preset.batch * config.n_head * config.block_size**2 * config.n_layer * 4 * 2
    memory = peak if peak is not None else (_bytes(model) * 4 + activations + attention) / MB
    return _result(step_s * steps, step_s, steps, memory, device, detail)


ESTIMATORS = {"sprite": _sprite, "copy": _copy, "music": _music}


@task("train.estimate")
def estimate_training(spec: JobSpec, ctx: JobContext) -> Estimate:
    """Time and memory for a preset on this machine, from a few real training steps."""
    modality = str(spec.params.get("modality", "sprite"))
    if modality not in ESTIMATORS:
        raise BadInputError(f"unknown modality {modality!r}")
    preset = str(spec.params.get("preset", "quick"))
    max_steps = int(spec.params.get("max_steps", 0) or 0)
    ctx.progress(0.05, "timing a few training steps…")
    return ESTIMATORS[modality](spec, ctx, preset, max_steps)
