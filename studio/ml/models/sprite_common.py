"""What the three sprite architectures share: the RGBA <-> tensor convention and class-conditional layers.

Sprites are 32x32 RGBA. Networks see ``(N, 4, 32, 32)`` floats in [-1, 1]; alpha is a channel like the others and
is predicted explicitly. Colour under fully transparent pixels is meaningless in the data, so it is set to black
before training: the networks need not learn the hidden colours of whatever tool drew the sprite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SPRITE_SIZE = 32
CHANNELS = 4


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, 32, 32, 4) uint8 -> (N, 4, 32, 32) float32 in [-1, 1], colour cleared where alpha is 0."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != CHANNELS or array.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 4) uint8 sprites, got {array.dtype} {array.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)
    return uint8_to_float(tensor)


def uint8_to_float(batch: torch.Tensor) -> torch.Tensor:
    """(N, 4, H, W) uint8 on any device -> float in [-1, 1] with colour cleared under transparent pixels."""
    visible = (batch[:, 3:4] > 0).to(torch.uint8)
    batch = torch.cat([batch[:, :3] * visible, batch[:, 3:4]], dim=1)
    return batch.float() / 127.5 - 1.0


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """(N, 4, H, W) float in [-1, 1] -> (N, H, W, 4) uint8 (values outside the range are clipped)."""
    scaled = ((x.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().numpy()


def sample_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Tile (N, H, W, 4) sprites row by row into one RGBA image (missing cells stay transparent)."""
    count, height, width, _ = images.shape
    rows = -(-count // columns)
    grid = np.zeros((rows * height, columns * width, CHANNELS), dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = image
    return grid


class ConditionalGroupNorm(nn.Module):
    """Group norm whose scale and shift are computed from a conditioning vector (class embedding and latent).

    Group norm rather than batch norm (as in BigGAN) because it treats each sprite on its own: a sprite is the
    same whatever else is in its batch, and evaluation mode behaves exactly like training mode. Starts as the
    identity (gain 1, shift 0).
    """

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = group_norm(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.bias = nn.Linear(cond_dim, channels)
        for layer in (self.gain, self.bias):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(cond)[:, :, None, None]
        return self.norm(x) * gain + self.bias(cond)[:, :, None, None]


def group_norm(channels: int, affine: bool = True) -> nn.GroupNorm:
    """GroupNorm with as many groups (up to 8) as divide the channels: tiny test configs stay valid."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels, affine=affine)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with an optional conditioning vector (time and/or class) added in between."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.cond = nn.Linear(cond_dim, c_out) if cond_dim else None
        self.norm2 = group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.cond is not None and cond is not None:
            h = h + self.cond(F.silu(cond))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class TagEmbedding(nn.Module):
    """Multi-hot tags (N, T) -> the mean of their learnt vectors (N, dim); zero for a sprite without tags.

    The table starts at zero, so a model given tags behaves exactly as before until it has learnt them: a trained
    model can be fine-tuned with a vocabulary, and classifier-free guidance's "no tags" is simply all zeros.
    """

    def __init__(self, num_tags: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_tags, dim))

    def forward(self, tags: torch.Tensor) -> torch.Tensor:
        tags = tags.to(self.weight.dtype)
        return (tags @ self.weight) / tags.sum(dim=1, keepdim=True).clamp_min(1.0)


def tag_vector(embedding: TagEmbedding | None, tags: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | float:
    """The embedded tags, or 0.0 when the model has no tags or none were given (adds to ``like``-shaped vectors)."""
    if embedding is None or tags is None:
        return 0.0
    return embedding(tags).to(like.dtype)


def example_tags(config: object, batch: int) -> tuple[torch.Tensor, ...]:
    """Multi-hot example tags for ONNX export, or nothing for a model without tags (the graph's last input)."""
    count = int(getattr(config, "num_tags", 0))
    if not count:
        return ()
    tags = torch.zeros(batch, count)
    tags[torch.arange(batch), torch.arange(batch) % count] = 1.0
    return (tags,)


@contextlib.contextmanager
def circular_padding(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block every padded convolution of ``model`` wraps around instead of padding with zeros: a
    sprite drawn this way continues across its own edges and repeats as a seamless tile."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.padding != (0, 0)] if enabled else []
    before = [m.padding_mode for m in convs]
    for m in convs:
        m.padding_mode = "circular"
    try:
        yield
    finally:
        for m, mode in zip(convs, before, strict=True):
            m.padding_mode = mode
