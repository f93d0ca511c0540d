"""A Llama decoder for onnxruntime's CPU built node by node from a GGUF, the way onnxruntime-genai's model builder
builds Llama graphs: fused contrib ops instead of the few hundred small ops a traced export makes.

Per layer: ``SimplifiedLayerNormalization`` / ``SkipSimplifiedLayerNormalization`` (RMSNorm with the residual
add fused), one ``MatMulNBits`` for Q, K and V together, ``GroupQueryAttention`` (rotary embedding inside, the
keys and values written in place into a preallocated buffer that is both the past input and the present output),
``MatMulNBits`` for the output projection, one for gate and up together, ``QuickGelu`` (alpha 1: SiLU) times up, and
the down projection. Logits are computed only at the positions asked for (``logit_positions``): a prefill needs
the last one.

Weights keep the GGUF's own quantisation where onnxruntime can run it exactly:

* Q4_1 blocks (``w = d * q + m``, 32 weights) become 4-bit ``MatMulNBits`` with the default zero point 8 and the
  block's offset ``m + 8 d`` added back as ``(block sums of x) @ offsets``: exact, where a 4-bit zero point would
  round ``-m / d`` and move every weight of a block the same way (+38 % held-out perplexity on SmolLM2-135M).
  onnxruntime's float zero points would be exact too, but measured 60x slower (no int8 kernel takes them).
* Q8_0 blocks (``w = d * q``) become 8-bit ``MatMulNBits`` with zero point 128: exact.
* Any other type is dequantised and quantised again the Q4_1 way (4-bit layers) or the Q8_0 way (8-bit output
  projection, as llama.cpp keeps it).

A LoRA adapter (``low_rank``) is merged: every layer matrix becomes ``w + s B A`` (``w`` the base's blocks as they
decode) in 8-bit symmetric blocks of 32, the Q8_0 way. Rounding to 8 bits moves a weight by at most 1/254 of its
block's largest, far below the 4-bit step, and the graph needs neither the offsets' products nor the adapter's:
measured on SmolLM2-135M with the bundled adapter, 16 % faster a token than the adapter kept as float32 low-rank
products beside the int4 blocks (which was 14 % slower than the base alone), at held-out perplexity x1.0060 of the
float32 merged model (x1.0097 before). The int8 weights take twice the int4 bytes; onnxruntime's per-operator cost,
not memory traffic, is what these small matrices pay for.

``accuracy_level=4`` lets MatMulNBits quantise activations to int8 per block and use the CPU's VNNI / AVX-512 int8
dot products (MLAS picks the kernel for the CPU it runs on and falls back to AVX2 or plain code by itself).

With a :class:`~studio.ml.export.calibration.Calibration` (the app's adapter graph), Q/K/V, the attention output and
gate/up run as ``DynamicQuantizeMatMul`` instead: int8 weights per output column, activations quantised to uint8 per
tensor, multiplied by MLAS's int8 GEMM (AMX, VNNI). MatMulNBits' int8 path costs 2.6x its one-row time at 8 rows
(the candidates a copy slot decodes together); the GEMM costs about 1.1x, so 8 candidates decode ~1.4x faster while
one stream is unchanged at one thread. At more threads the GEMM still multiplies a single row on one core, so an
adapter's export also holds the graph in 8-bit blocks, which one stream runs on there. One scale for a whole tensor
loses the small channels beside the large ones, so the RMSNorm outputs feeding Q/K/V and gate/up are smoothed first
(SmoothQuant, alpha 0.8): channel ``j`` is divided by ``s_j = max|x_j|^0.8 / max|w_j|^0.2`` (folded into the norm's
weight) and the weights' input ``j`` multiplied by it, which leaves the products unchanged in exact arithmetic. The
down projection (SwiGLU outputs with outliers no smoothing tamed: held-out perplexity x1.03-1.5) and the output
layer (x1.02) keep 8-bit blocks. Weights are signed int8 where the CPU multiplies them with int8 dot products (VNNI,
AMX, ARM's dot product), and uint8 with a zero point of 128 elsewhere: AVX2's ``vpmaddubsw`` can saturate on signed
weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import ModelFileError
from studio.core.safe_write import write_atomic
from studio.ml.export.calibration import Calibration
from studio.ml.models.llama import LlamaConfig, rope_table
from studio.ml.runtime.exports import FUSED_FORMAT, FUSED_GRAPH, FUSED_INPUTS
from studio.ml.text import gguf_loader

GRAPH = FUSED_GRAPH
FORMAT = FUSED_FORMAT  # the graph's layout: exports of another format are made again
BLOCK = 32
HEAD_MULTIPLE = 16  # GroupQueryAttention's CPU kernel needs head widths that are multiples of 16
INPUTS = FUSED_INPUTS
# GGUF types whose blocks are kept as they are (ggml type ids: Q4_1 = 3, Q8_0 = 8)
Q4_1, Q8_0 = 3, 8
SMOOTHING = 0.8  # SmoothQuant's alpha: how much of an input channel's range moves into the weights


#: A LoRA adapter as low-rank pairs by torch module path (``layers.3.self_attn.q_proj``): ``(A, sB)``, A (rank,
#: inputs) and the scaled B (outputs, rank) in float32, so that the adapted matrix is ``w + sB @ A``.
Pair = tuple[np.ndarray, np.ndarray]
LowRank = dict[str, Pair]


@dataclass(frozen=True)
class Blocks:
    """A matrix ``w`` (N outputs, K inputs) as ``scale * (q - 2**(bits-1)) + offset`` per block of 32 inputs:
    ``q`` (N, K/32, 32) uint8, ``scale`` and ``offset`` (N, K/32) float32 (``offset`` None: zero)."""

    q: np.ndarray
    scale: np.ndarray
    offset: np.ndarray | None
    bits: int

    def rows(self, order: np.ndarray) -> Blocks:
        return Blocks(self.q[order], self.scale[order], None if self.offset is None else self.offset[order], self.bits)

    def dequantised(self) -> np.ndarray:
        w = self.scale[..., None] * (self.q.astype(np.float32) - 2 ** (self.bits - 1))
        if self.offset is not None:
            w = w + self.offset[..., None]
        return w.reshape(self.q.shape[0], -1)


def concat(parts: list[Blocks]) -> Blocks:
    """Stack matrices of the same input width and bits along their outputs (Q, K and V become one product)."""
    offsets = [p.offset if p.offset is not None else np.zeros_like(p.scale) for p in parts]
    any_offset = any(p.offset is not None for p in parts)
    return Blocks(np.concatenate([p.q for p in parts]), np.concatenate([p.scale for p in parts]),
                  np.concatenate(offsets) if any_offset else None, parts[0].bits)


def requantise(weight: np.ndarray, bits: int) -> Blocks:
    """Float weights (N, K) in 4-bit min/max blocks (as Q4_1) or 8-bit symmetric blocks (as Q8_0)."""
    n, k = weight.shape
    w = weight.reshape(n, k // BLOCK, BLOCK).astype(np.float32)
    if bits == 8:
        scale = np.abs(w).max(-1) / 127
        scale[scale == 0] = 1.0
        q = np.clip(np.round(w / scale[..., None]), -127, 127) + 128
        return Blocks(q.astype(np.uint8), scale.astype(np.float32), None, 8)
    low, high = w.min(-1), w.max(-1)
    scale = (high - low) / 15
    scale[scale == 0] = 1.0
    q = np.clip(np.round((w - low[..., None]) / scale[..., None]), 0, 15)
    return Blocks(q.astype(np.uint8), scale.astype(np.float32), (low + 8 * scale).astype(np.float32), 4)


def _from_gguf(tensor: Any, rows: int, cols: int, bits: int) -> Blocks:
    """A GGUF tensor as blocks: Q4_1 (4 bits asked) and Q8_0 (8 bits asked) exactly, anything else requantised."""
    kind = int(tensor.tensor_type)
    data = np.asarray(tensor.data)
    if kind == Q4_1 and bits == 4:
        raw = data.reshape(rows, cols // BLOCK, 20)
        d = raw[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
        m = raw[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        packed = raw[..., 4:]
        q = np.concatenate([packed & 0x0F, packed >> 4], axis=-1)  # GGUF: low nibbles first, then high ones
        return Blocks(q, d, (m + 8 * d).astype(np.float32), 4)
    if kind == Q8_0 and bits == 8:
        raw = data.reshape(rows, cols // BLOCK, 34)
        d = raw[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
        q = (raw[..., 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        return Blocks(q, d, None, 8)
    from gguf.quants import dequantize

    weight = np.asarray(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32).reshape(rows, cols)
    return requantise(weight, bits)


def rope_order(rows: int, heads: int) -> np.ndarray:
    """The row order that turns llama.cpp's interleaved Q/K rows into the rotate-half order."""
    return gguf_loader.unpermute_rope_rows(np.arange(rows)[:, None], heads)[:, 0]


class _Graph:
    """Nodes and initializers being collected."""

    def __init__(self, accuracy_level: int) -> None:
        self.accuracy_level = accuracy_level
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs: Any) -> list[str]:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0] + "/" + op, domain=domain, **attrs))
        return outputs

    def matmul(self, x: str, blocks: Blocks, name: str, block_sums: dict[str, str]) -> str:
        """``x @ w.T`` through MatMulNBits, with the blocks' offsets added back when there are any."""
        n, kb, _ = blocks.q.shape
        k = kb * BLOCK
        q = blocks.q if blocks.bits == 8 else blocks.q[..., 0::2] | (blocks.q[..., 1::2] << 4)
        out = f"{name}/out"
        scales = self.const(f"{name}.scales", blocks.scale.reshape(-1))
        result = out if blocks.offset is None else f"{name}/raw"
        self.node("MatMulNBits", [x, self.const(f"{name}.q", q), scales], [result], "com.microsoft",
                  K=k, N=n, bits=blocks.bits, block_size=BLOCK, accuracy_level=self.accuracy_level)
        if blocks.offset is None:
            return out
        if x not in block_sums:  # x (.., K) -> (.., K/32): the sum of each block of inputs, once per input
            summing = f"block_summing_{k}"  # (K, K/32) ones where input k is in block b; one per width
            if summing not in block_sums:
                ones = np.kron(np.eye(kb, dtype=np.float32), np.ones((BLOCK, 1), np.float32))
                block_sums[summing] = self.const(summing, ones)
            block_sums[x] = self.node("MatMul", [x, block_sums[summing]], [f"{x}/block_sums"])[0]
        fix = self.node("MatMul", [block_sums[x], self.const(f"{name}.offsets", blocks.offset.T)], [f"{name}/offset"])
        return self.node("Add", [f"{name}/raw", fix[0]], [out])[0]

    def per_tensor_matmul(self, x: str, weight: np.ndarray, name: str, signed: bool) -> str:
        """``x @ weight.T`` through DynamicQuantizeMatMul: ``weight`` (N, K) in int8 per output column (uint8 with
        zero point 128 when not ``signed``), ``x`` quantised to uint8 per tensor as it runs."""
        scale = np.abs(weight).max(1) / 127
        scale[scale == 0] = 1.0
        q = np.clip(np.round(weight / scale[:, None]), -127, 127).T
        inputs = [x, "", self.const(f"{name}.scales", scale.astype(np.float32))]
        if signed:
            inputs[1] = self.const(f"{name}.q", q.astype(np.int8))
        else:
            inputs[1] = self.const(f"{name}.q", (q + 128).astype(np.uint8))
            inputs.append(self.const(f"{name}.zero_points", np.full(weight.shape[0], 128, np.uint8)))
        return self.node("DynamicQuantizeMatMul", inputs, [f"{name}/out"], "com.microsoft")[0]


def smoothing(x_max: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """SmoothQuant's per-input-channel divisor for inputs of largest magnitudes ``x_max`` into ``weight`` (N, K)."""
    w_max = np.maximum(np.abs(weight).max(0), 1e-5)
    return np.clip(np.maximum(x_max, 1e-5) ** SMOOTHING / w_max ** (1 - SMOOTHING), 1e-3, 1e3).astype(np.float32)


def _layer_weights(by_name: dict[str, Any], config: LlamaConfig, i: int, low_rank: LowRank) -> dict[str, np.ndarray]:
    """The layer's four products as float32 matrices (N, K), each merged with its adapter pair (if any)."""
    kv = config.n_kv_heads * config.head_dim

    def read(short: str, path: str, rows: int, cols: int, heads: int = 0) -> np.ndarray:
        blocks = _from_gguf(by_name[f"blk.{i}.{short}.weight"], rows, cols, 4)
        if heads:  # llama.cpp's interleaved rotary rows in torch's order, as the adapter's B rows are
            blocks = blocks.rows(rope_order(rows, heads))
        weight = blocks.dequantised()
        if (pair := low_rank.get(f"layers.{i}.{path}")) is not None:
            weight = weight + pair[1] @ pair[0]
        return weight

    return {
        "qkv": np.concatenate([read("attn_q", "self_attn.q_proj", config.dim, config.dim, config.n_heads),
                               read("attn_k", "self_attn.k_proj", kv, config.dim, config.n_kv_heads),
                               read("attn_v", "self_attn.v_proj", kv, config.dim)]),
        "o": read("attn_output", "self_attn.o_proj", config.dim, config.dim),
        "gate_up": np.concatenate([read("ffn_gate", "mlp.gate_proj", config.ffn_dim, config.dim),
                                   read("ffn_up", "mlp.up_proj", config.ffn_dim, config.dim)]),
        "down": read("ffn_down", "mlp.down_proj", config.dim, config.ffn_dim),
    }


def _layer_blocks(by_name: dict[str, Any], config: LlamaConfig, i: int, low_rank: LowRank | None) -> dict[str, Blocks]:
    """The layer's four products; with an adapter, every matrix merged with its pair (if any) in 8-bit blocks."""
    if low_rank is not None:
        return {name: requantise(weight, 8) for name, weight in _layer_weights(by_name, config, i, low_rank).items()}
    kv = config.n_kv_heads * config.head_dim

    def read(short: str, rows: int, cols: int, heads: int = 0) -> Blocks:
        blocks = _from_gguf(by_name[f"blk.{i}.{short}.weight"], rows, cols, 4)
        if heads:  # llama.cpp's interleaved rotary rows in torch's order, as the adapter's B rows are
            blocks = blocks.rows(rope_order(rows, heads))
        return blocks

    return {
        "qkv": concat([read("attn_q", config.dim, config.dim, config.n_heads),
                       read("attn_k", kv, config.dim, config.n_kv_heads), read("attn_v", kv, config.dim)]),
        "o": read("attn_output", config.dim, config.dim),
        "gate_up": concat([read("ffn_gate", config.ffn_dim, config.dim), read("ffn_up", config.ffn_dim, config.dim)]),
        "down": read("ffn_down", config.dim, config.ffn_dim),
    }


def _layer_products(by_name: dict[str, Any], config: LlamaConfig, i: int, low_rank: LowRank | None,
                    calibration: Calibration | None) -> tuple[dict[str, Blocks | np.ndarray], dict[str, np.ndarray]]:
    """(the layer's products: blocks for MatMulNBits, float matrices for per-tensor int8 products; the weights of
    the norms before Q/K/V and gate/up, smoothed with the products where they are per-tensor)."""
    norms = {"qkv": _f32(by_name[f"blk.{i}.attn_norm.weight"]), "gate_up": _f32(by_name[f"blk.{i}.ffn_norm.weight"])}
    if calibration is None:
        return dict(_layer_blocks(by_name, config, i, low_rank)), norms
    weights: dict[str, Blocks | np.ndarray] = dict(_layer_weights(by_name, config, i, low_rank or {}))
    for part in ("qkv", "gate_up"):  # each input channel divided in the norm, multiplied in the weights
        divisor = smoothing(getattr(calibration, part)[i], weights[part])
        weights[part] = weights[part] * divisor
        norms[part] = norms[part] / divisor
    weights["down"] = requantise(weights["down"], 8)
    return weights, norms


def check_supported(config: LlamaConfig) -> None:
    if config.head_dim % HEAD_MULTIPLE or config.dim % BLOCK or config.ffn_dim % BLOCK:
        raise ModelFileError(
            f"this model's widths (head {config.head_dim}, model {config.dim}, feed-forward {config.ffn_dim}) do not "
            f"fit onnxruntime's fused kernels (heads a multiple of {HEAD_MULTIPLE}, widths of {BLOCK})"
        )


def build_graph(gguf: Path, dst: Path, accuracy_level: int = 4, low_rank: LowRank | None = None,
                calibration: Calibration | None = None, signed_weights: bool = True) -> LlamaConfig:
    """Write the fused decoder of the GGUF at ``gguf`` to ``dst``; returns its config. ``accuracy_level`` 4
    multiplies int8-quantised activations (fast); 0 keeps them float32 (tests compare it with torch exactly).
    ``low_rank``: a LoRA adapter of the GGUF's model, merged in 8-bit blocks (see :data:`LowRank`); with
    ``calibration`` (of the merged model) too, Q/K/V, the attention output and gate/up become smoothed per-tensor
    int8 products (see the module's note), their weights signed or not as ``signed_weights``."""
    if calibration is not None and low_rank is None:
        raise ValueError("per-tensor int8 products are built for an adapter's graph only")
    from onnx import TensorProto, helper

    reader = gguf_loader.open_gguf(gguf)
    config = gguf_loader.read_config(reader, Path(gguf).name)
    check_supported(config)
    by_name = gguf_loader.check_tensors(reader, config)
    g, sums = _Graph(accuracy_level), {}
    eps = config.norm_eps
    embed = by_name["token_embd.weight"]
    x = _embedding(g, embed, config)
    cos, sin = rope_table(config)
    half = config.head_dim // 2
    g.const("cos_cache", cos[:, :half].numpy())
    g.const("sin_cache", sin[:, :half].numpy())
    kv_shape = ["batch", config.n_kv_heads, "capacity", config.head_dim]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["batch"]),
              helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, []),
              helper.make_tensor_value_info("logit_positions", TensorProto.INT64, ["positions"]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_bias", TensorProto.FLOAT,
                                            ["bias_batch", 1, "sequence", "total"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "positions", config.vocab_size])]
    residual = None
    for i in range(config.n_layers):
        products, norms = _layer_products(by_name, config, i, low_rank, calibration)

        def product(x: str, part: str, layer: int = i, chosen: dict[str, Blocks | np.ndarray] = products) -> str:
            weight, name = chosen[part], f"layers.{layer}.{part}"
            if isinstance(weight, Blocks):
                return g.matmul(x, weight, name, sums)
            return g.per_tensor_matmul(x, weight, name, signed_weights)
        norm = g.const(f"layers.{i}.input_layernorm", norms["qkv"])
        if residual is None:
            h = g.node("SimplifiedLayerNormalization", [x, norm], [f"l{i}/attn_in"], axis=-1, epsilon=eps)[0]
            residual = x
        else:
            h, _, _, residual = g.node("SkipSimplifiedLayerNormalization", [x, residual, norm],
                                       [f"l{i}/attn_in", "", "", f"l{i}/residual_in"], "com.microsoft", epsilon=eps)
        qkv = product(h, "qkv")
        past = [f"past_key.{i}", f"past_value.{i}"]
        present = [f"present_key.{i}", f"present_value.{i}"]
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in past]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in present]
        attn = g.node("GroupQueryAttention", [qkv, "", "", *past, "seqlens_k", "total_sequence_length",
                                              "cos_cache", "sin_cache", "position_ids", "attention_bias"],
                      [f"l{i}/attn", *present], "com.microsoft",
                      num_heads=config.n_heads, kv_num_heads=config.n_kv_heads, do_rotary=1, rotary_interleaved=0)[0]
        o = product(attn, "o")
        post = g.const(f"layers.{i}.post_attention_layernorm", norms["gate_up"])
        h, _, _, residual = g.node("SkipSimplifiedLayerNormalization", [o, residual, post],
                                   [f"l{i}/mlp_in", "", "", f"l{i}/residual_mid"], "com.microsoft", epsilon=eps)
        gate_up = product(h, "gate_up")
        split = g.const(f"layers.{i}.split", np.array([config.ffn_dim, config.ffn_dim], np.int64))
        gate, up = g.node("Split", [gate_up, split], [f"l{i}/gate", f"l{i}/up"], axis=-1)
        act = g.node("QuickGelu", [gate], [f"l{i}/silu"], "com.microsoft", alpha=1.0)[0]
        x = product(g.node("Mul", [act, up], [f"l{i}/swiglu"])[0], "down")
    final = g.const("norm", _f32(by_name["output_norm.weight"]))
    h = g.node("SkipSimplifiedLayerNormalization", [x, residual, final], ["final_norm"], "com.microsoft",
               epsilon=eps)[0]
    picked = g.node("Gather", [h, "logit_positions"], ["picked"], axis=1)[0]
    head = by_name["token_embd.weight" if config.tie_embeddings else "output.weight"]
    g.matmul(picked, _from_gguf(head, config.vocab_size, config.dim, 8), "lm_head", sums)
    g.nodes.append(helper.make_node("Identity", ["lm_head/out"], ["logits"], name="logits"))
    graph = helper.make_graph(g.nodes, "llama_gqa", inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="studio")
    model.ir_version = 9
    write_atomic(dst, model.SerializeToString(), f"the ONNX graph {Path(dst).name}")
    return config


def _embedding(g: _Graph, embed: Any, config: LlamaConfig) -> str:
    """The token embedding: a Q8_0 table stays 8-bit (``GatherBlockQuantized``, exact; a quarter of float32's
    bytes: 28 MB instead of 113 MB for SmolLM2), any other type is a float32 table."""
    if int(embed.tensor_type) == Q8_0:
        blocks = _from_gguf(embed, config.vocab_size, config.dim, 8)
        rows = g.node("GatherBlockQuantized", [g.const("embed_tokens.q", blocks.q), "input_ids",
                                               g.const("embed_tokens.scales", blocks.scale[..., None])],
                      ["embedded_blocks"], "com.microsoft", gather_axis=0, quantize_axis=2, block_size=BLOCK, bits=8)
        width = g.const("embed_tokens.shape", np.array([0, 0, config.dim], np.int64))
        return g.node("Reshape", [rows[0], width], ["embedded"])[0]
    from gguf.quants import dequantize

    table = np.asarray(dequantize(embed.data, embed.tensor_type), np.float32).reshape(config.vocab_size, config.dim)
    return g.node("Gather", [g.const("embed_tokens", table), "input_ids"], ["embedded"], axis=0)[0]


def _f32(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.data, dtype=np.float32).reshape(-1)
