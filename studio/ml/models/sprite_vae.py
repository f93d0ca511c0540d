"""Class-conditional sprite VAE: a convolutional encoder to a 64-d Gaussian latent and a decoder back to RGBA.

Trained on summed L1 reconstruction + KL; its smooth latent space gives variations around a picked sprite (small
steps from its code) and blends between two sprites (a path between their codes).
"""

from __future__ import annotations

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


@dataclass
class SpriteVAEConfig:
    num_classes: int = 6
    latent_dim: int = 64
    width: int = 32  # channels at 16x16; half at 32x32, double at 8x8 and 4x4
    embed_dim: int = 32
    num_tags: int = 0  # words of the vocabulary the model is conditioned on (0: categories only)

    @classmethod
    def tiny(cls) -> SpriteVAEConfig:
        return cls(num_classes=3, latent_dim=8, width=8, embed_dim=8, num_tags=5)


def _widths(config: SpriteVAEConfig) -> tuple[int, int, int]:
    return max(1, config.width // 2), config.width, 2 * config.width  # at 32, 16, 8 (and 4) px


class Encoder(nn.Module):
    """(sprite, class, tags) -> (mean, log-variance) of the latent."""

    def __init__(self, config: SpriteVAEConfig) -> None:
        super().__init__()
        w32, w16, w8 = _widths(config)
        self.embed = nn.Embedding(config.num_classes, config.embed_dim)
        self.tag_embed = TagEmbedding(config.num_tags, config.embed_dim) if config.num_tags else None
        self.conv_in = nn.Conv2d(CHANNELS, w32, 3, padding=1)
        self.down16 = nn.Conv2d(w32, w16, 3, stride=2, padding=1)
        self.res16 = ResBlock(w16, w16)
        self.down8 = nn.Conv2d(w16, w8, 3, stride=2, padding=1)
        self.res8 = ResBlock(w8, w8)
        self.down4 = nn.Conv2d(w8, w8, 3, stride=2, padding=1)
        self.norm = group_norm(w8)
        self.head = nn.Linear(w8 * 16 + config.embed_dim, 2 * config.latent_dim)

    def forward(
        self, x: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.res16(self.down16(self.conv_in(x)))
        h = self.down4(self.res8(self.down8(h)))
        h = F.silu(self.norm(h)).flatten(1)
        cond = self.embed(label)
        stats = self.head(torch.cat([h, cond + tag_vector(self.tag_embed, tags, cond)], dim=1))
        latent = stats.shape[1] // 2  # slicing, not chunk: chunk exports as SplitToSequence
        return stats[:, :latent], stats[:, latent:].clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """(latent, class, tags) -> sprite in [-1, 1]; class and tags steer every residual block."""

    def __init__(self, config: SpriteVAEConfig) -> None:
        super().__init__()
        w32, w16, w8 = _widths(config)
        self.embed = nn.Embedding(config.num_classes, config.embed_dim)
        self.tag_embed = TagEmbedding(config.num_tags, config.embed_dim) if config.num_tags else None
        self.stem = nn.Linear(config.latent_dim + config.embed_dim, w8 * 16)
        self.res4 = ResBlock(w8, w8, config.embed_dim)
        self.up8 = nn.Conv2d(w8, w8, 3, padding=1)
        self.res8 = ResBlock(w8, w8, config.embed_dim)
        self.up16 = nn.Conv2d(w8, w16, 3, padding=1)
        self.res16 = ResBlock(w16, w16, config.embed_dim)
        self.up32 = nn.Conv2d(w16, w32, 3, padding=1)
        self.norm = group_norm(w32)
        self.conv_out = nn.Conv2d(w32, CHANNELS, 3, padding=1)
        self.start_channels = w8

    def forward(self, z: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.embed(label)
        cond = cond + tag_vector(self.tag_embed, tags, cond)
        h = self.stem(torch.cat([z, cond], dim=1)).view(-1, self.start_channels, 4, 4)
        h = self.res4(h, cond)
        h = self.res8(self.up8(F.interpolate(h, scale_factor=2.0, mode="nearest")), cond)
        h = self.res16(self.up16(F.interpolate(h, scale_factor=2.0, mode="nearest")), cond)
        h = self.up32(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return torch.tanh(self.conv_out(F.silu(self.norm(h))))


class SpriteVAE(nn.Module):
    family = "vae"

    def __init__(self, config: SpriteVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def encode(
        self, x: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, label, tags)

    def decode(self, z: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, label, tags)

    def sample_latents(self, generators: list[torch.Generator]) -> torch.Tensor:
        """Prior samples N(0, I), one per sprite from its own seeded generator."""
        return torch.stack([torch.randn(self.config.latent_dim, generator=g) for g in generators])

    def forward(
        self, x: torch.Tensor, label: torch.Tensor, eps: torch.Tensor, tags: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction through the reparameterised latent ``mean + std * eps``; returns (x_hat, mean, logvar)."""
        mean, logvar = self.encoder(x, label, tags)
        z = mean + torch.exp(0.5 * logvar) * eps
        return self.decoder(z, label, tags), mean, logvar


def _encoder_inputs(config: SpriteVAEConfig, batch: int) -> tuple[torch.Tensor, ...]:
    images = torch.rand(batch, CHANNELS, SPRITE_SIZE, SPRITE_SIZE) * 2 - 1
    return images, torch.arange(batch) % config.num_classes, *example_tags(config, batch)


def _decoder_inputs(config: SpriteVAEConfig, batch: int) -> tuple[torch.Tensor, ...]:
    return torch.randn(batch, config.latent_dim), torch.arange(batch) % config.num_classes, *example_tags(config, batch)


register(
    Architecture(
        name="sprite-vae",
        modality="sprite",
        family="vae",
        config_cls=SpriteVAEConfig,
        build=SpriteVAE,
        onnx=(
            OnnxGraph(
                name="encoder",
                wrap=lambda model: model.encoder,
                example_inputs=_encoder_inputs,
                input_names=("rgba", "label"),
                output_names=("mean", "logvar"),
                dynamic_axes={n: {0: "batch"} for n in ("rgba", "label", "tags", "mean", "logvar")},
                tagged=True,
            ),
            OnnxGraph(
                name="decoder",
                wrap=lambda model: model.decoder,
                example_inputs=_decoder_inputs,
                input_names=("z", "label"),
                output_names=("rgba",),
                dynamic_axes={n: {0: "batch"} for n in ("z", "label", "tags", "rgba")},
                tagged=True,
            ),
        ),
        description=f"class-conditional {SPRITE_SIZE}x{SPRITE_SIZE} RGBA VAE (variations, blends)",
    )
)
