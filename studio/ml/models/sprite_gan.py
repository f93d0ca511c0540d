"""Class-conditional sprite GAN: a ResNet generator with class-conditional group norm, and a spectral-norm
projection discriminator trained with the hinge loss (the SNGAN / BigGAN recipe, scaled down to 32x32 RGBA).

Group norm, not BigGAN's batch norm: with batch norm the generator leant on batch statistics for its variety,
and in evaluation mode (running statistics, needed so that a sprite does not depend on its batch) every seed of
a class gave nearly the same sprite.

The registered module holds both networks so a saved model can be fine-tuned further; generation only uses
``generator`` (saved with its EMA weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from studio.ml.models.sprite_common import (
    CHANNELS,
    SPRITE_SIZE,
    ConditionalGroupNorm,
    TagEmbedding,
    example_tags,
    group_norm,
    tag_vector,
)
from studio.ml.registry import Architecture, OnnxGraph, register


@dataclass
class SpriteGANConfig:
    num_classes: int = 6
    z_dim: int = 64
    g_width: int = 48  # generator channels at 16x16; doubled at 8x8 and 4x4, halved at 32x32
    d_width: int = 24  # discriminator channels at 32x32; doubled at each halving
    num_tags: int = 0  # words of the vocabulary the model is conditioned on (0: categories only)

    @classmethod
    def tiny(cls) -> SpriteGANConfig:
        return cls(num_classes=3, z_dim=8, g_width=8, d_width=4, num_tags=5)


class GeneratorBlock(nn.Module):
    """Upsampling residual block: (CGN, ReLU, 2x nearest, conv, CGN, ReLU, conv) + upsampled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = ConditionalGroupNorm(c_in, cond_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = ConditionalGroupNorm(c_out, cond_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, cond)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Generator(nn.Module):
    """(z, class) -> sprite. Latent and class reach every block through its norms (as in BigGAN's shared
    embedding and hierarchical latent), so the latent cannot be ignored after the first layer."""

    def __init__(self, config: SpriteGANConfig) -> None:
        super().__init__()
        w = config.g_width
        widths = [2 * w, 2 * w, w, max(1, w // 2)]  # at 4, 8, 16, 32 px
        self.z_dim = config.z_dim
        self.embed = nn.Embedding(config.num_classes, config.z_dim)
        self.tag_embed = TagEmbedding(config.num_tags, config.z_dim) if config.num_tags else None
        self.stem = nn.Linear(2 * config.z_dim, widths[0] * 16)
        self.blocks = nn.ModuleList(GeneratorBlock(widths[i], widths[i + 1], 2 * config.z_dim) for i in range(3))
        self.norm = group_norm(widths[-1])
        self.out = nn.Conv2d(widths[-1], CHANNELS, 3, padding=1)
        self.start_channels = widths[0]

    def forward(self, z: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        category = self.embed(label)
        cond = torch.cat([z, category + tag_vector(self.tag_embed, tags, category)], dim=1)
        h = self.stem(cond).view(-1, self.start_channels, 4, 4)
        for block in self.blocks:
            h = block(h, cond)
        return torch.tanh(self.out(F.relu(self.norm(h))))


class DiscriminatorBlock(nn.Module):
    """Residual block with spectral norm; ``first`` skips the leading ReLU (it would act on the raw image)."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(c_in, c_out, 1))
        self.downsample = downsample
        self.first = first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        skip = self.skip(x)
        if self.downsample:
            h = F.avg_pool2d(h, 2)
            skip = F.avg_pool2d(skip, 2)
        return h + skip


def minibatch_std(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append the spread of features across small groups of consecutive samples as one more channel (ProGAN).

    It lets the discriminator see a lack of variety, the signature of a collapsed generator. Groups are
    consecutive samples, so a batch made of a real half and a fake half never mixes the two.
    """
    n, _, height, width = h.shape
    size = next(g for g in (group, 2, 1) if n % g == 0)
    spread = h.reshape(n // size, size, -1).std(dim=1, unbiased=False).mean(dim=1) if size > 1 else h.new_zeros(n)
    spread = spread.repeat_interleave(size) if size > 1 else spread
    return torch.cat([h, spread.view(n, 1, 1, 1).expand(n, 1, height, width)], dim=1)


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): score = linear(h) + <embed(label) + tags(tags), h>, with a
    minibatch-spread channel before its last block. The tag table is not spectrally normalised: it starts at zero,
    where the normalisation is undefined, and the mean over a sprite's tags keeps its scale bounded."""

    def __init__(self, config: SpriteGANConfig) -> None:
        super().__init__()
        d = config.d_width
        self.blocks = nn.Sequential(
            DiscriminatorBlock(CHANNELS, d, downsample=True, first=True),
            DiscriminatorBlock(d, 2 * d, downsample=True),
            DiscriminatorBlock(2 * d, 4 * d, downsample=True),
        )
        self.last = DiscriminatorBlock(4 * d + 1, 4 * d, downsample=False)
        self.linear = spectral_norm(nn.Linear(4 * d, 1))
        self.embed = spectral_norm(nn.Embedding(config.num_classes, 4 * d))
        self.tag_embed = TagEmbedding(config.num_tags, 4 * d) if config.num_tags else None

    def forward(self, x: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.last(minibatch_std(self.blocks(x)))).sum(dim=(2, 3))
        projection = self.embed(label) + tag_vector(self.tag_embed, tags, h)
        return self.linear(h).squeeze(1) + (projection * h).sum(dim=1)


class SpriteGAN(nn.Module):
    family = "gan"

    def __init__(self, config: SpriteGANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def sample_latents(self, generators: list[torch.Generator]) -> torch.Tensor:
        """One latent per sprite, each drawn from its own seeded generator (sprite i of a batch = seed + i)."""
        return torch.stack([torch.randn(self.config.z_dim, generator=g) for g in generators])

    def forward(self, z: torch.Tensor, label: torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        """Sprites in [-1, 1] for latents ``z`` (N, z_dim), class indices ``label`` (N,) and multi-hot ``tags``."""
        return self.generator(z, label, tags)


def _generator_only(model: nn.Module) -> nn.Module:
    return model.generator


def _example_inputs(config: SpriteGANConfig, batch: int) -> tuple[torch.Tensor, ...]:
    return torch.randn(batch, config.z_dim), torch.arange(batch) % config.num_classes, *example_tags(config, batch)


register(
    Architecture(
        name="sprite-gan",
        modality="sprite",
        family="gan",
        config_cls=SpriteGANConfig,
        build=SpriteGAN,
        onnx=(
            OnnxGraph(
                name="generator",
                wrap=_generator_only,
                example_inputs=_example_inputs,
                input_names=("z", "label"),
                output_names=("rgba",),
                dynamic_axes={n: {0: "batch"} for n in ("z", "label", "tags", "rgba")},
                tagged=True,
            ),
        ),
        description=f"class-conditional {SPRITE_SIZE}x{SPRITE_SIZE} RGBA GAN (hinge loss, spectral norm)",
    )
)
