"""``music-transformer``: a small decoder-only Transformer over the note-event vocabulary, with a KV cache.

Pre-norm GPT blocks with learned positions; the output layer is not tied to the embedding (safetensors files
hold no shared tensors, and with a 330-token vocabulary the extra weights are negligible).

``forward(ids, past)`` returns the logits and the new cache, one tensor ``(layers, 2, batch, heads, positions,
head_dim)``, so the same call serves training (no past), prompt encoding and one-token decoding steps; the ONNX
graph ``decoder_with_past`` is exactly that call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studio.ml.music import tokens
from studio.ml.registry import Architecture, OnnxGraph, register


@dataclass
class MusicTransformerConfig:
    vocab_size: int = tokens.VOCAB_SIZE
    block_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    dropout: float = 0.1

    @classmethod
    def tiny(cls) -> MusicTransformerConfig:
        return cls(block_size=64, n_layer=2, n_head=2, n_embd=32, dropout=0.0)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


class Attention(nn.Module):
    def __init__(self, config: MusicTransformerConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError("n_embd must be a multiple of n_head")
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, past: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.n_head, width // self.n_head).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        total = k.shape[2]
        # New token i (at absolute position total - length + i) sees every key up to its own position.
        rows = torch.arange(length, device=x.device).unsqueeze(1) + (total - length)
        mask = torch.arange(total, device=x.device).unsqueeze(0) <= rows
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        y = y.transpose(1, 2).reshape(batch, length, width)
        return self.proj(y), torch.stack([k, v])


class Block(nn.Module):
    def __init__(self, config: MusicTransformerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = Attention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor, past: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        attended, present = self.attn(self.ln1(x), past)
        x = x + attended
        return x + self.mlp(self.ln2(x)), present


class MusicTransformer(nn.Module):
    def __init__(self, config: MusicTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(self._init)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(param, 0.0, 0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)

    def empty_past(self, batch: int = 1) -> torch.Tensor:
        c = self.config
        weight = self.tok_emb.weight
        return weight.new_zeros(c.n_layer, 2, batch, c.n_head, 0, c.head_dim)

    def forward(self, ids: torch.Tensor, past: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, length) token ids [+ cache] -> (batch, length, vocab) logits, new cache."""
        start = 0 if past is None else past.shape[4]
        if start + ids.shape[1] > self.config.block_size:
            raise ValueError(
                f"sequence of {start + ids.shape[1]} tokens exceeds the model's {self.config.block_size}"
            )
        positions = torch.arange(start, start + ids.shape[1], device=ids.device)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(positions))
        presents = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, None if past is None else past[i])
            presents.append(present)
        return self.head(self.ln_f(x)), torch.stack(presents)


class _DecoderWithPast(nn.Module):
    """The ONNX decoding step: new token ids + the cache so far -> logits + the extended cache."""

    def __init__(self, model: MusicTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(input_ids, past)


def _example_inputs(config: MusicTransformerConfig, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch)
    past_len, new = 5, 3
    ids = torch.randint(0, config.vocab_size, (batch, new), generator=generator)
    shape = (config.n_layer, 2, batch, config.n_head, past_len, config.head_dim)
    return ids, torch.randn(shape, generator=generator)


ARCH = register(
    Architecture(
        name="music-transformer",
        modality="music",
        family="transformer",
        config_cls=MusicTransformerConfig,
        build=MusicTransformer,
        onnx=(
            OnnxGraph(
                name="decoder_with_past",
                wrap=_DecoderWithPast,
                example_inputs=_example_inputs,
                input_names=("input_ids", "past"),
                output_names=("logits", "present"),
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "new_tokens"},
                    "past": {2: "batch", 4: "past_tokens"},
                    "logits": {0: "batch", 1: "new_tokens"},
                    "present": {2: "batch", 4: "total_tokens"},
                },
            ),
        ),
        description="melody Transformer over bar/position/pitch/duration events, conditioned on key, mode, "
        "meter, tempo, bar count and part; constrained sampling in studio.ml.music.sample",
    )
)
