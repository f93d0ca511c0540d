"""The music modality's preflight: reading the user's tunes and the estimate of a preset on the music Transformer
that the tunes fine-tune (the installed model; a new one of the preset's size for a built data set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.core.context import JobContext
from studio.core.errors import BadInputError, ModelFileError
from studio.core.jobs import JobSpec
from studio.core.modalities.music import MODALITY
from studio.ml.checkpoint import load_model
from studio.ml.data.music import read_user_tunes
from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
from studio.ml.train.music import ARCH, PRESETS, make_batch, sequence_loss
from studio.ml.train.preflight import MB, Estimate, data_path, estimate_result, parameter_bytes, timed_steps


def inspect(path: Path, grid: int = 0) -> dict[str, Any]:
    del grid  # tunes are not sliced
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    records, rejected = read_user_tunes(files)
    tunes = len(records)
    if not tunes:
        raise BadInputError(f"no usable tunes in {path.name} ({len(rejected)} file(s) rejected)")
    return {"usable": tunes, "counts": {"tunes": tunes}, "rejected": rejected}


def estimate(spec: JobSpec, ctx: JobContext, preset_name: str, max_steps: int) -> Estimate:
    if preset_name not in PRESETS:
        raise BadInputError(f"unknown preset {preset_name!r}: use {', '.join(PRESETS)}")
    preset = PRESETS[preset_name]
    path = data_path(spec)
    device = ctx.device
    model: nn.Module | None = None
    # The user's own tunes fine-tune the installed model unless told otherwise, as the CLI does.
    name = str(spec.params.get("base", "" if (path / "train.npz").exists() else MODALITY.default_model))
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
    memory = peak if peak is not None else (parameter_bytes(model) * 4 + activations + attention) / MB
    return estimate_result(step_s * steps, step_s, steps, memory, device, detail)
