"""Class- and tag-conditional sprite diffusion model: a small UNet predicting v (or the noise) of a 32x32 RGBA sprite.

Sized for the CPU: the sprite is folded 2x2 into channels (32x32x4 -> 16x16x16, pixel unshuffle) so the UNet
works at 16, 8 and 4 px, with additive skips, ``blocks`` residual blocks per level on each side, self-attention at
4x4 and optionally at 8x8 (where a sprite's parts are laid out). Sampling (DDIM, classifier-free guidance)
and the noise schedule live in :mod:`studio.ml.sampling.ddim`; the config only names the schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studio.ml.models.sprite_common import (
    CHANNELS,
    SPRITE_SIZE,
    ResBlock,
    TagEmbedding,
    example_tags,
    group_norm,
    tag_vector,
)
from studio.ml.registry import Architecture, OnnxGraph, register
from studio.ml.sampling.ddim import NoiseSchedule, guided, split_prediction


@dataclass
class SpriteDiffusionConfig:
    num_classes: int = 6
    width: int = 40  # channels at 16x16; doubled at 8x8 and 4x4
    timesteps: int = 1000
    schedule: str = "cosine"
    prediction: str = "v"  # what the UNet predicts: "v" (velocity) or "eps" (noise); see sampling.ddim
    num_tags: int = 0  # words of the vocabulary the model is conditioned on (0: categories only)
    blocks: int = 1  # residual blocks per level, on the way down and on the way up
    attention_8: bool = False  # self-attention at 8x8 as well as at 4x4

    @classmethod
    def tiny(cls) -> SpriteDiffusionConfig:
        return cls(num_classes=3, width=8, timesteps=50, num_tags=5, blocks=2, attention_8=True)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the (possibly fractional) timestep, as in the Transformer and DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class SelfAttention(nn.Module):
    """Single-head self-attention over the pixels of a small feature map (written out for ONNX export)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, c, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # indexing, not unbind: unbind exports as SplitToSequence
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)
        return x + self.out((v @ weights.transpose(1, 2)).reshape(n, c, h, w))


class SpriteDiffusion(nn.Module):
    family = "diffusion"

    def __init__(self, config: SpriteDiffusionConfig) -> None:
        super().__init__()
        self.config = config
        w1, w2 = config.width, 2 * config.width
        emb = 2 * config.width
        self.null_label = config.num_classes  # "no class": what classifier-free guidance steers away from
        self.prediction = config.prediction
        self.time_mlp = nn.Sequential(nn.Linear(w1, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label_embed = nn.Embedding(config.num_classes + 1, emb)
        self.tag_embed = TagEmbedding(config.num_tags, emb) if config.num_tags else None
        more = config.blocks - 1  # the first block of each level keeps its name: older files still load
        self.conv_in = nn.Conv2d(4 * CHANNELS, w1, 3, padding=1)
        self.down16 = ResBlock(w1, w1, emb)
        self.down16_more = nn.ModuleList(ResBlock(w1, w1, emb) for _ in range(more))
        self.to8 = nn.Conv2d(w1, w2, 3, stride=2, padding=1)
        self.down8 = ResBlock(w2, w2, emb)
        self.down8_more = nn.ModuleList(ResBlock(w2, w2, emb) for _ in range(more))
        self.attention8_down = SelfAttention(w2) if config.attention_8 else None
        self.to4 = nn.Conv2d(w2, w2, 3, stride=2, padding=1)
        self.down4 = ResBlock(w2, w2, emb)
        self.down4_more = nn.ModuleList(ResBlock(w2, w2, emb) for _ in range(more))
        self.mid1 = ResBlock(w2, w2, emb)
        self.attention = SelfAttention(w2)
        self.mid2 = ResBlock(w2, w2, emb)
        self.up4 = ResBlock(w2, w2, emb)
        self.up4_more = nn.ModuleList(ResBlock(w2, w2, emb) for _ in range(more))
        self.up8 = ResBlock(w2, w2, emb)
        self.up8_more = nn.ModuleList(ResBlock(w2, w2, emb) for _ in range(more))
        self.attention8_up = SelfAttention(w2) if config.attention_8 else None
        self.narrow16 = nn.Conv2d(w2, w1, 1)
        self.up16 = ResBlock(w1, w1, emb)
        self.up16_more = nn.ModuleList(ResBlock(w1, w1, emb) for _ in range(more))
        self.norm_out = group_norm(w1)
        self.conv_out = nn.Conv2d(w1, 4 * CHANNELS, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def schedule(self) -> NoiseSchedule:
        return NoiseSchedule.named(self.config.schedule, self.config.timesteps)

    def sample_noise(self, generators: list[torch.Generator]) -> torch.Tensor:
        """Starting noise x_T, one image per sprite from its own seeded generator."""
        shape = (CHANNELS, SPRITE_SIZE, SPRITE_SIZE)
        return torch.stack([torch.randn(shape, generator=g) for g in generators])

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predicted v (or noise, per the config) for noisy sprites ``x`` (N, 4, 32, 32) at timesteps ``t``, class
        indices ``label`` (the null label: none) and multi-hot ``tags`` (all zero: none)."""
        cond = self.time_mlp(timestep_embedding(t, self.config.width)) + self.label_embed(label)
        cond = cond + tag_vector(self.tag_embed, tags, cond)
        h16 = _blocks(self.down16, self.down16_more, self.conv_in(F.pixel_unshuffle(x, 2)), cond)
        h8 = _blocks(self.down8, self.down8_more, self.to8(h16), cond)
        if self.attention8_down is not None:
            h8 = self.attention8_down(h8)
        h4 = _blocks(self.down4, self.down4_more, self.to4(h8), cond)
        h = self.mid2(self.attention(self.mid1(h4, cond)), cond)
        h = _blocks(self.up4, self.up4_more, h + h4, cond)
        h = _blocks(self.up8, self.up8_more, F.interpolate(h, scale_factor=2.0, mode="nearest") + h8, cond)
        if self.attention8_up is not None:
            h = self.attention8_up(h)
        h = _blocks(self.up16, self.up16_more, self.narrow16(F.interpolate(h, scale_factor=2.0, mode="nearest")) + h16,
                    cond)
        return F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(h))), 2)


def _blocks(first: ResBlock, more: nn.ModuleList, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    h = first(h, cond)
    for block in more:
        h = block(h, cond)
    return h


class GuidedStep(nn.Module):
    """The exported sampling step: guided noise (eps) for (x, t, label, guidance[, tags]), all batched.

    A v-predicting model's output is turned into eps inside the graph, so any DDIM loop can drive it.
    """

    prediction = "eps"

    def __init__(self, model: SpriteDiffusion) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("alphas", model.schedule().alphas_cumprod.clone(), persistent=False)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor, guidance: torch.Tensor,
        tags: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = guided(self.model, x, t, label, guidance, tags)
        a = self.alphas[t].view(-1, 1, 1, 1)
        return split_prediction(out, x, a, self.model.prediction)[1]


def _step_inputs(config: SpriteDiffusionConfig, batch: int) -> tuple[torch.Tensor, ...]:
    return (
        torch.randn(batch, CHANNELS, SPRITE_SIZE, SPRITE_SIZE),
        torch.randint(0, config.timesteps, (batch,)),
        torch.arange(batch) % config.num_classes,
        torch.full((batch,), 2.0),
        *example_tags(config, batch),
    )


register(
    Architecture(
        name="sprite-diffusion",
        modality="sprite",
        family="diffusion",
        config_cls=SpriteDiffusionConfig,
        build=SpriteDiffusion,
        onnx=(
            OnnxGraph(
                name="unet_step",
                wrap=GuidedStep,
                example_inputs=_step_inputs,
                input_names=("x", "t", "label", "guidance"),
                output_names=("eps",),
                dynamic_axes={n: {0: "batch"} for n in ("x", "t", "label", "guidance", "tags", "eps")},
                atol=1e-3,
                tagged=True,
            ),
        ),
        description=f"class- and tag-conditional {SPRITE_SIZE}x{SPRITE_SIZE} RGBA diffusion UNet (DDIM, guidance)",
    )
)
