"""A small CNN that classifies 32x32 RGBA sprites by category, names their tags and tells clean pixel art from
damaged; its pooled features are the evaluation space.

Studio measures realism (FID/KID-style distances, precision and recall), diversity and memorisation of generated
sprites in the feature space of this network, trained by the project itself on the CC0 crawl tiles (no downloaded
weights). A category classifier alone learns features blind to what an artist sees first (blur, noise, specks: a
blurred tile is still a potion), so the encoder also learns to name which damage, if any, a sprite shows
(:data:`DEGRADATIONS`), and the words of its name (the tag head, the classifier of the tag evaluation). The input
is the shared sprite convention of :mod:`studio.ml.models.sprite_common`: (N, 4, 32, 32) in [-1, 1], alpha as a
fourth channel, colour cleared under transparent pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from studio.ml.models.sprite_common import CHANNELS, SPRITE_SIZE
from studio.ml.registry import Architecture, OnnxGraph, register

DEGRADATIONS = ("clean", "blurred", "noisy", "specked")  # what the degradation head tells apart


@dataclass
class SpriteEncoderConfig:
    num_classes: int = 6
    width: int = 32  # channels of the 32x32 stem; doubled at 16x16 and again at 8x8
    dropout: float = 0.2
    num_tags: int = 0  # words of the tag head (0: none)
    degradations: int = 0  # classes of the degradation head (0: none; len(DEGRADATIONS) when trained with it)

    @classmethod
    def tiny(cls) -> SpriteEncoderConfig:
        return cls(num_classes=3, width=4, num_tags=5, degradations=len(DEGRADATIONS))

    @property
    def feature_dim(self) -> int:
        return 4 * self.width


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.SiLU())


class SpriteEncoder(nn.Module):
    """A stem at 32 px, then two stages (16, 8 px) of a strided and a plain 3x3 convolution, average pooling
    and a linear classifier: about 0.3M parameters, cheap enough to train on two CPU cores."""

    def __init__(self, config: SpriteEncoderConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.body = nn.Sequential(
            _conv(CHANNELS, w),
            _conv(w, 2 * w, stride=2),
            _conv(2 * w, 2 * w),
            _conv(2 * w, 4 * w, stride=2),
            _conv(4 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(4 * w, config.num_classes))
        self.tag_head = nn.Linear(4 * w, config.num_tags) if config.num_tags else None
        self.degradation_head = nn.Linear(4 * w, config.degradations) if config.degradations else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4, 32, 32) in [-1, 1] -> (N, feature_dim) pooled features."""
        return self.body(x)

    def tag_logits(self, features: torch.Tensor) -> torch.Tensor:
        """One independent logit per word of the vocabulary (multi-label)."""
        if self.tag_head is None:
            raise ValueError("this encoder was trained without tags")
        return self.tag_head(features)

    def degradation_logits(self, features: torch.Tensor) -> torch.Tensor:
        if self.degradation_head is None:
            raise ValueError("this encoder was trained without the degradation head")
        return self.degradation_head(features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Category logits and the pooled features they are computed from."""
        features = self.features(x)
        return self.head(features), features


def _example_inputs(config: SpriteEncoderConfig, batch: int) -> tuple[torch.Tensor, ...]:
    return (torch.rand(batch, CHANNELS, SPRITE_SIZE, SPRITE_SIZE) * 2.0 - 1.0,)


register(
    Architecture(
        name="sprite-encoder",
        modality="eval",
        family="classifier",
        config_cls=SpriteEncoderConfig,
        build=SpriteEncoder,
        onnx=(
            OnnxGraph(
                name="encoder",
                wrap=lambda model: model,
                example_inputs=_example_inputs,
                input_names=("rgba",),
                output_names=("logits", "features"),
                dynamic_axes={"rgba": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
            ),
        ),
        description="sprite category classifier whose pooled features are the space for FID/KID and diversity",
    )
)
