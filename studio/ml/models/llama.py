"""A compact Llama-architecture decoder (SmolLM2 and other Llama GGUFs): RMSNorm, RoPE, grouped-query
attention, SwiGLU, and a preallocated KV cache.

Weights use the Hugging Face layout and names (``layers.0.self_attn.q_proj.weight`` ...; Q/K rows in
"rotate-half" RoPE order); :mod:`studio.ml.text.gguf_loader` un-permutes llama.cpp's interleaved order on import.

Usage::

    model = Llama(LlamaConfig.tiny()).eval()
    cache = KVCache.allocate(model.config, batch=1, capacity=64, device="cpu", dtype=torch.float32)
    logits, cache = model(torch.tensor([[5, 6, 7]]), cache=cache)      # prefill: logits (1, 3, V)
    logits, cache = model(torch.tensor([[8]]), cache=cache)            # one decode step: (1, 1, V)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from studio.ml.registry import Architecture, OnnxGraph, register


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 49152
    dim: int = 576
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3
    ffn_dim: int = 1536
    norm_eps: float = 1e-5
    rope_theta: float = 100000.0
    max_seq_len: int = 8192
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"width {self.dim} must split into {self.n_heads} heads, and those into {self.n_kv_heads} groups"
            )
        if self.head_dim % 2:
            raise ValueError(f"head width {self.head_dim} must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @classmethod
    def tiny(cls) -> LlamaConfig:
        return cls(vocab_size=96, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=64, max_seq_len=64)


class Cache(Protocol):
    """What attention needs from a cache: store this layer's new keys/values, return all of them so far."""

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ...


class KVCache:
    """Preallocated keys and values of every layer, ``(layers, batch, kv_heads, capacity, head_dim)``.

    ``length`` positions are filled. ``pad`` (batch,) counts left-padding positions per row (batched prompts of
    different lengths): those keys are never attended to, and positions of a row start after its padding.
    Writing in place avoids the copy a growing ``torch.cat`` cache makes every step; the capacity grows by
    doubling if a caller runs past it.
    """

    def __init__(self, k: torch.Tensor, v: torch.Tensor, length: int = 0, pad: torch.Tensor | None = None) -> None:
        self.k = k
        self.v = v
        self.length = length
        self.pad = pad

    @classmethod
    def allocate(
        cls,
        config: LlamaConfig,
        batch: int,
        capacity: int,
        device: str | torch.device,
        dtype: torch.dtype,
        pad: torch.Tensor | None = None,
    ) -> KVCache:
        shape = (config.n_layers, batch, config.n_kv_heads, capacity, config.head_dim)
        k = torch.zeros(shape, device=device, dtype=dtype)
        return cls(k, torch.zeros_like(k), 0, pad)

    @property
    def batch(self) -> int:
        return self.k.shape[1]

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def reserve(self, needed: int) -> None:
        """Make room for ``needed`` positions in total (keeps what is stored)."""
        if needed <= self.capacity:
            return
        capacity = max(needed, 2 * self.capacity)
        for name in ("k", "v"):
            old = getattr(self, name)
            new = old.new_zeros((*old.shape[:3], capacity, old.shape[4]))
            new[:, :, :, : self.length] = old[:, :, :, : self.length]
            setattr(self, name, new)

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + k.shape[2]
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def key_mask(self, total: int) -> torch.Tensor | None:
        """(batch, total) True where a key may be attended to; None when no row is padded."""
        if self.pad is None or not bool(self.pad.any()):
            return None
        return torch.arange(total, device=self.pad.device)[None, :] >= self.pad[:, None]

    def expand(self, batch: int) -> KVCache:
        """A cache of ``batch`` rows, each a copy of this single-row cache (one prefill, many variants)."""
        if self.batch != 1:
            raise ValueError("only a single-row cache can be expanded")
        pad = None if self.pad is None else self.pad.expand(batch).clone()
        return KVCache(self.k.expand(-1, batch, -1, -1, -1).clone(), self.v.expand(-1, batch, -1, -1, -1).clone(),
                       self.length, pad)

    def select(self, rows: torch.Tensor) -> KVCache:
        """Keep only ``rows`` (e.g. drop finished variants so later steps do less work)."""
        pad = None if self.pad is None else self.pad[rows]
        return KVCache(self.k[:, rows], self.v[:, rows], self.length, pad)


class SharedPrefixCache:
    """A prompt prefix run once (``prefix``: a single-row :class:`KVCache`) that every row attends to, plus each
    row's own :class:`KVCache` after it (``rows``, left-padded per row). Many candidates of one prompt then cost
    one copy of the prefix's keys and values instead of one per row, in memory and in every attention read."""

    def __init__(self, prefix: KVCache, rows: KVCache) -> None:
        if prefix.batch != 1:
            raise ValueError("the shared prefix must be a single row")
        self.prefix = prefix
        self.rows = rows

    @property
    def prefix_length(self) -> int:
        return self.prefix.length

    @property
    def length(self) -> int:
        return self.prefix.length + self.rows.length

    @property
    def batch(self) -> int:
        return self.rows.batch

    @property
    def k(self) -> torch.Tensor:  # the device and dtype of the cache, as callers ask of a KVCache
        return self.rows.k

    def reserve(self, needed: int) -> None:
        self.rows.reserve(needed - self.prefix.length)

    def select(self, rows: torch.Tensor) -> SharedPrefixCache:
        """Keep (or repeat) ``rows``; the prefix stays shared."""
        return SharedPrefixCache(self.prefix, self.rows.select(rows))

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rows.update(layer, start - self.prefix.length, k, v)

    def prefix_kv(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(keys, values) of the prefix, (kv_heads, length, head_dim)."""
        n = self.prefix.length
        return self.prefix.k[layer, 0, :, :n], self.prefix.v[layer, 0, :, :n]


def shared_prefix_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kp: torch.Tensor, vp: torch.Tensor,
                            mask: torch.Tensor | None) -> torch.Tensor:
    """Attention over a shared prefix and each row's own keys, one softmax over both.

    q (B, Hkv, Q, D) (the grouped query rows of each KV head), k/v (B, Hkv, S, D) each row's own keys (``mask``
    (B|1, 1, Q, S), True = attend), kp/vp (Hkv, P, D) the prefix every query sees. The prefix is read once for
    the whole batch: the batch's query rows are stacked per KV head, (Hkv, B*Q, D) @ (Hkv, D, P).
    """
    b, h, nq, d = q.shape
    scale = d ** -0.5
    stacked = q.transpose(0, 1).reshape(h, b * nq, d)
    prefix_scores = torch.bmm(stacked, kp.transpose(1, 2)).mul_(scale).view(h, b, nq, -1).transpose(0, 1)
    own_scores = torch.matmul(q, k.transpose(-1, -2)).mul_(scale)
    if mask is not None:
        own_scores = own_scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(torch.cat((prefix_scores, own_scores), dim=-1), dim=-1)
    n_prefix = kp.shape[1]
    from_prefix = torch.bmm(weights[..., :n_prefix].transpose(0, 1).reshape(h, b * nq, n_prefix), vp)
    return from_prefix.view(h, b, nq, d).transpose(0, 1) + torch.matmul(weights[..., n_prefix:], v)


class ConcatCache:
    """Past keys/values given as tensors, extended by concatenation (the ONNX ``decoder_with_past`` graph)."""

    def __init__(self, past_k: torch.Tensor, past_v: torch.Tensor) -> None:
        self.past_k = past_k  # (layers, batch, kv_heads, past, head_dim)
        self.past_v = past_v
        self.present_k: list[torch.Tensor] = []
        self.present_v: list[torch.Tensor] = []

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k_all = torch.cat((self.past_k[layer], k), dim=2)
        v_all = torch.cat((self.past_v[layer], v), dim=2)
        self.present_k.append(k_all)
        self.present_v.append(v_all)
        return k_all, v_all


SMALL_BATCH_ROWS = 8
INT8_ROW_BLOCK = 32  # int8 decoding copies only for matrices whose input width is a multiple of this
#: Inside :func:`batch_copies`, products of many rows read the bfloat16 batch copies (see set_batch_precision).
_USE_BATCH_COPIES: ContextVar[bool] = ContextVar("use_batch_copies", default=False)


@contextmanager
def batch_copies(enabled: bool = True) -> Iterator[None]:
    """Within this block (this thread only), products of more than SMALL_BATCH_ROWS rows read the model's
    bfloat16 batch copies where it has them: candidate decoding and scoring. Prompts run outside it stay float32,
    so what the prompt cache keeps is the same whoever ran it first."""
    token = _USE_BATCH_COPIES.set(enabled)
    try:
        yield
    finally:
        _USE_BATCH_COPIES.reset(token)


@contextmanager
def decoding_copies_for_every_input() -> Iterator[None]:
    """Within this block every matrix product reads the decoding copies, whatever its size: how benchmarks measure
    the held-out perplexity of what decoding steps compute (not thread-safe; for measurements only)."""
    global SMALL_BATCH_ROWS
    saved, SMALL_BATCH_ROWS = SMALL_BATCH_ROWS, sys.maxsize
    try:
        yield
    finally:
        SMALL_BATCH_ROWS = saved


def quantise_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output row (weight-only): ``weight ~= q * scale[:, None]``; scale in bfloat16."""
    scale = weight.detach().float().abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(weight.detach().float() / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale.to(torch.bfloat16)


def decode_linear(
    x: torch.Tensor, weight: torch.Tensor, decode_weight: torch.Tensor | None, decode_scale: torch.Tensor | None = None,
    batch_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x @ weight.T``, using the low-precision copy of the weight for decode-sized inputs when there is one.

    A decoding step (a few rows) is limited by reading the weights, so a float16 copy halves its time and an int8
    copy (with ``decode_scale`` per row, multiplied by bfloat16 activations in torch's weight-only int8 kernel)
    quarters it; a prefill (many rows) is limited by arithmetic, where CPU low-precision products are slow, so it
    uses the float32 weight, as does anything that needs gradients. The output keeps the activations' precision.
    Many rows inside :func:`batch_copies` read ``batch_weight`` (bfloat16), where the CPU multiplies bfloat16
    two to three times faster than float32 (AVX512-BF16, AMX).
    """
    many = x.numel() // x.shape[-1] > SMALL_BATCH_ROWS
    if many and batch_weight is not None and not x.requires_grad and _USE_BATCH_COPIES.get():
        return F.linear(x.to(batch_weight.dtype), batch_weight).to(x.dtype)
    if decode_weight is None or many or x.requires_grad:
        return F.linear(x, weight)
    if decode_scale is None:
        return F.linear(x.to(decode_weight.dtype), decode_weight).to(x.dtype)
    flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
    out = torch._weight_int8pack_mm(flat, decode_weight, decode_scale)
    return out.reshape(*x.shape[:-1], out.shape[-1]).to(x.dtype)


class Linear(nn.Linear):
    """A bias-free ``nn.Linear`` (still one, for LoRA wrappers) that leaves initialisation to the model (skipping
    the default init saves seconds when a loader overwrites every weight anyway) and can carry a half-precision
    copy of its weight for decoding (see :func:`decode_linear`; not saved, set by
    :meth:`Llama.set_decode_precision`)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.register_buffer("decode_weight", None, persistent=False)
        self.register_buffer("decode_scale", None, persistent=False)
        self.register_buffer("batch_weight", None, persistent=False)

    def reset_parameters(self) -> None:
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return decode_linear(x, self.weight, self.decode_weight, self.decode_scale, self.batch_weight)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 even for fp16/bf16 weights, as the reference does; written out (not F.rms_norm)
        # so that every ONNX exporter and opset can take it.
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rope_table(config: LlamaConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, (max_seq_len, head_dim), in the rotate-half layout."""
    half = config.head_dim // 2
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(half, dtype=torch.float64) * 2 / config.head_dim))
    angles = torch.arange(config.max_seq_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, D); cos/sin (B, 1, T, D)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, config: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        self.q_proj = Linear(config.dim, config.n_heads * config.head_dim)
        self.k_proj = Linear(config.dim, config.n_kv_heads * config.head_dim)
        self.v_proj = Linear(config.dim, config.n_kv_heads * config.head_dim)
        self.o_proj = Linear(config.n_heads * config.head_dim, config.dim)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: Cache | None,
        start: int,
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer, start, k, v)
        # Grouped-query attention without repeating keys: the query heads sharing a KV head become extra query
        # rows of that head, (B, Hkv, G*T, D); the mask rows are repeated to match (see Llama._mask).
        groups = self.n_heads // self.n_kv_heads
        q = q.reshape(b, self.n_kv_heads, groups * t, self.head_dim)
        if isinstance(cache, SharedPrefixCache):
            out = shared_prefix_attention(q, k, v, *cache.prefix_kv(self.layer), mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.reshape(b, self.n_heads, t, self.head_dim).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(out)


class FeedForward(nn.Module):
    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.gate_proj = Linear(config.dim, config.ffn_dim)
        self.up_proj = Linear(config.dim, config.ffn_dim)
        self.down_proj = Linear(config.ffn_dim, config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.self_attn = Attention(config, layer)
        self.post_attention_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.mlp = FeedForward(config)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: Cache | None,
        start: int,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, config: LlamaConfig, init_weights: bool = True) -> None:
        super().__init__()
        self.config = config
        # _weight skips nn.Embedding's own initialisation; _init_weights does it (or a loader fills every tensor).
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.dim, _weight=torch.empty(config.vocab_size, config.dim)
        )
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        # Tied embeddings reuse embed_tokens.weight in forward (no second parameter: safetensors refuses
        # tensors that share memory).
        self.lm_head = None if config.tie_embeddings else Linear(config.dim, config.vocab_size)
        self.register_buffer("decode_head", None, persistent=False)  # low-precision output matrix, if set
        self.register_buffer("decode_head_scale", None, persistent=False)  # its row scales when it is int8
        self.register_buffer("batch_head", None, persistent=False)  # bfloat16 output matrix for batches, if set
        cos, sin = rope_table(config)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        if init_weights:
            self.apply(self._init_weights)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            module.weight.normal_(mean=0.0, std=0.02)
        elif isinstance(module, RMSNorm):
            module.weight.fill_(1.0)

    @torch.no_grad()
    def set_decode_precision(self, dtype: torch.dtype | None) -> None:
        """Keep a ``dtype`` copy (float16, bfloat16 or int8 with row scales) of every matrix for decoding steps, or
        drop them (None).

        On CPUs a decoding step then reads half (a quarter for int8) of the bytes, for 50 % (25 %) more memory.
        The float32 weights stay the model's own (saved, trained, exported, wrapped by LoRA), so refresh the copies
        after changing them.
        """

        def copies(weight: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
            if dtype is None:
                return None, None
            if dtype == torch.int8:  # the int8 kernel reads rows in blocks (it crashes on other widths)
                if weight.shape[1] % INT8_ROW_BLOCK == 0:
                    return quantise_int8(weight)
                return weight.detach().to(torch.bfloat16), None
            return weight.detach().to(dtype), None

        for module in self.modules():
            if isinstance(module, Linear):
                module.decode_weight, module.decode_scale = copies(module.weight)
        self.decode_head, self.decode_head_scale = copies(self.output_weight)

    def set_batch_precision(self, dtype: torch.dtype | None) -> None:
        """Keep a ``dtype`` (bfloat16) copy of every matrix for products of many rows inside
        :func:`batch_copies`, or drop them (None). Refresh after changing the float32 weights."""
        for module in self.modules():
            if isinstance(module, Linear):
                module.batch_weight = None if dtype is None else module.weight.detach().to(dtype)
        self.batch_head = None if dtype is None else self.output_weight.detach().to(dtype)

    @property
    def output_weight(self) -> torch.Tensor:
        return self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: Cache | None = None,
        key_mask: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, Cache | None]:
        """input_ids (B, T) -> (logits (B, T or 1, V), cache).

        ``positions`` (B, T) default to the cache's next positions (after each row's left padding).
        ``key_mask`` (B, past + T), True = attend, overrides the mask a :class:`KVCache` derives from its padding.
        ``last_only`` computes logits for the last position only (a prefill needs no more).
        A :class:`KVCache` is filled in place and advanced; it is returned for convenience.
        """
        b, t = input_ids.shape
        start = self._start(cache)
        own = cache.rows if isinstance(cache, SharedPrefixCache) else cache  # the keys the mask is about
        own_start = own.length if isinstance(cache, SharedPrefixCache) else start
        if isinstance(own, KVCache):
            own.reserve(own_start + t)
            if key_mask is None:
                key_mask = own.key_mask(own_start + t)
        if positions is None:
            positions = torch.arange(start, start + t, device=input_ids.device)[None, :].expand(b, t)
            if isinstance(own, KVCache) and own.pad is not None:
                positions = (positions - own.pad[:, None]).clamp(min=0)
        x = self.embed_tokens(input_ids)
        cos = self.rope_cos[positions].unsqueeze(1).to(x.dtype)
        sin = self.rope_sin[positions].unsqueeze(1).to(x.dtype)
        mask = self._mask(b, t, own_start, key_mask, input_ids.device)
        for layer in self.layers:
            x = layer(x, cos, sin, mask, cache, start)
        if last_only:
            x = x[:, -1:]
        logits = decode_linear(self.norm(x), self.output_weight, self.decode_head, self.decode_head_scale,
                               self.batch_head)
        if isinstance(own, KVCache):
            own.length = own_start + t
        return logits, cache

    @staticmethod
    def _start(cache: Cache | None) -> int:
        if isinstance(cache, (KVCache, SharedPrefixCache)):
            return cache.length
        if isinstance(cache, ConcatCache):
            return cache.past_k.shape[3]
        return 0

    def _mask(
        self, b: int, t: int, start: int, key_mask: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor | None:
        """Boolean (B|1, 1, G*T, start+T) mask, True = attend; None when every key may be seen (one new token)."""
        if key_mask is None and t == 1:
            return None
        total = start + t
        query_pos = torch.arange(start, total, device=device)[:, None]
        key_pos = torch.arange(total, device=device)[None, :]
        mask = (key_pos <= query_pos)[None, None]  # (1, 1, T, S)
        if key_mask is not None:
            # A padded query still sees itself, so no softmax row is empty (an empty row gives NaN).
            mask = mask & (key_mask[:, None, None, :].bool() | (key_pos == query_pos)[None, None])
        groups = self.config.n_heads // self.config.n_kv_heads
        return mask.repeat(1, 1, groups, 1)


class DecoderWithPast(nn.Module):
    """The ONNX graph: (input_ids, attention_mask, position_ids, past_keys, past_values) ->
    (logits, present_keys, present_values); past/present are (layers, batch, kv_heads, sequence, head_dim)."""

    def __init__(self, model: Llama) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        past_keys: torch.Tensor,
        past_values: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cache = ConcatCache(past_keys, past_values)
        logits, _ = self.model(input_ids, position_ids, cache, key_mask=attention_mask.bool())
        return logits, torch.stack(cache.present_k), torch.stack(cache.present_v)


def _decoder_example(config: LlamaConfig, batch: int) -> tuple[torch.Tensor, ...]:
    past, new = 4, 3
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, config.vocab_size, (batch, new), generator=generator)
    attention_mask = torch.ones(batch, past + new, dtype=torch.int64)
    position_ids = torch.arange(past, past + new)[None, :].expand(batch, new).contiguous()
    shape = (config.n_layers, batch, config.n_kv_heads, past, config.head_dim)
    past_keys = torch.randn(shape, generator=generator)
    past_values = torch.randn(shape, generator=generator)
    return input_ids, attention_mask, position_ids, past_keys, past_values


DECODER_WITH_PAST = OnnxGraph(
    name="decoder_with_past",
    wrap=DecoderWithPast,
    example_inputs=_decoder_example,
    input_names=("input_ids", "attention_mask", "position_ids", "past_keys", "past_values"),
    output_names=("logits", "present_keys", "present_values"),
    dynamic_axes={
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "total_sequence"},
        "position_ids": {0: "batch", 1: "sequence"},
        "past_keys": {1: "batch", 3: "past_sequence"},
        "past_values": {1: "batch", 3: "past_sequence"},
        "logits": {0: "batch", 1: "sequence"},
        "present_keys": {1: "batch", 3: "total_sequence"},
        "present_values": {1: "batch", 3: "total_sequence"},
    },
    atol=1e-4,
    rtol=1e-3,
)


ARCH = register(
    Architecture(
        name="llama",
        modality="copy",
        family="transformer",
        config_cls=LlamaConfig,
        build=Llama,
        onnx=(DECODER_WITH_PAST,),
        description="Llama-architecture decoder (SmolLM2-135M-Instruct by default), loaded from GGUF files",
    )
)
