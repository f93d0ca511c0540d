"""Reading Llama-architecture GGUF files: validation, config, tokenizer metadata and dequantised weights.

GGUF files come from outside the project, so everything is checked before use: the magic and layout (by the
``gguf`` reader), the architecture (``llama`` only), the hyper-parameters, and every tensor's name and shape.
Anything else raises :class:`ModelFileError` with a sentence a person can act on.

Weights are returned in the Hugging Face layout that :class:`studio.ml.models.llama.Llama` uses: llama.cpp stores
the Q and K projections with rows permuted for its interleaved RoPE; they are permuted back here.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.errors import BadInputError, ModelFileError
from studio.core.safe_write import copy_of, write_atomic
from studio.ml.models.llama import LlamaConfig

SUPPORTED_ARCHITECTURES = ("llama",)
_LAYER_TENSORS = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TOKENIZER_KEYS = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_space_prefix",
    "tokenizer.chat_template",
)


def open_gguf(path: Path) -> Any:
    """A ``gguf.GGUFReader`` for ``path``; any parse failure becomes a :class:`ModelFileError`."""
    from gguf import GGUFReader

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist")
    try:
        return GGUFReader(path)
    except Exception as exc:  # a third-party parser on an outside file: every failure means "unreadable"
        raise ModelFileError(
            f"{path.name} is not a readable GGUF file ({type(exc).__name__}: {exc}); it may be truncated or "
            "not a GGUF at all"
        ) from None


def field(reader: Any, key: str, default: Any = None) -> Any:
    item = reader.fields.get(key)
    if item is None:
        return default
    try:
        return item.contents()
    except Exception as exc:
        raise ModelFileError(f"GGUF metadata {key!r} is damaged ({exc})") from None


def architecture(reader: Any) -> str:
    arch = field(reader, "general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError("the GGUF does not say which architecture it holds (general.architecture)")
    return arch


def read_config(reader: Any, name: str = "") -> LlamaConfig:
    """Check the file is a Llama model Studio can run and return its hyper-parameters."""
    label = name or "this GGUF"
    arch = architecture(reader)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFileError(
            f"{label} holds a {arch!r} model; Studio runs Llama-architecture language models only "
            "(SmolLM2, TinyLlama, Llama 2/3 and their fine-tunes)"
        )

    def need(key: str) -> int | float:
        value = field(reader, f"llama.{key}")
        if not isinstance(value, int | float):
            raise ModelFileError(f"{label} is missing llama.{key}")
        return value

    if field(reader, "llama.expert_count", 0):
        raise ModelFileError(f"{label} is a mixture-of-experts model, which Studio does not run")
    scaling = field(reader, "llama.rope.scaling.type", "none")
    if scaling not in ("none", None) or any(t.name == "rope_freqs.weight" for t in reader.tensors):
        raise ModelFileError(f"{label} uses rotary-embedding scaling ({scaling}), which Studio does not support")
    n_heads = int(need("attention.head_count"))
    dim = int(need("embedding_length"))
    token_field = reader.fields.get("tokenizer.ggml.tokens")
    n_tokens = len(token_field.data) if token_field is not None else 0
    try:
        config = LlamaConfig(
            vocab_size=int(field(reader, "llama.vocab_size", n_tokens)),
            dim=dim,
            n_layers=int(need("block_count")),
            n_heads=n_heads,
            n_kv_heads=int(field(reader, "llama.attention.head_count_kv", n_heads)),
            ffn_dim=int(need("feed_forward_length")),
            norm_eps=_short_float(need("attention.layer_norm_rms_epsilon")),
            rope_theta=_short_float(field(reader, "llama.rope.freq_base", 10000.0)),
            max_seq_len=int(field(reader, "llama.context_length", 2048)),
            tie_embeddings=not any(t.name == "output.weight" for t in reader.tensors),
        )
    except ValueError as exc:
        raise ModelFileError(f"{label} has inconsistent hyper-parameters: {exc}") from None
    rope_dims = field(reader, "llama.rope.dimension_count", config.head_dim)
    if rope_dims != config.head_dim:
        raise ModelFileError(f"{label} rotates {rope_dims} of {config.head_dim} head dimensions; not supported")
    if n_tokens and n_tokens != config.vocab_size:
        raise ModelFileError(f"{label}: the tokenizer has {n_tokens} tokens but the model {config.vocab_size}")
    return config


def _short_float(value: float) -> float:
    """GGUF stores float32: 9.999999747e-06 -> 1e-05 (the same float32, readable in the sidecar)."""
    return float(str(np.float32(value)))


def expected_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """GGUF tensor name -> shape in torch order (rows, columns)."""
    kv = config.n_kv_heads * config.head_dim
    shapes = {"token_embd.weight": (config.vocab_size, config.dim), "output_norm.weight": (config.dim,)}
    if not config.tie_embeddings:
        shapes["output.weight"] = (config.vocab_size, config.dim)
    per_layer = {
        "attn_norm": (config.dim,),
        "attn_q": (config.dim, config.dim),
        "attn_k": (kv, config.dim),
        "attn_v": (kv, config.dim),
        "attn_output": (config.dim, config.dim),
        "ffn_norm": (config.dim,),
        "ffn_gate": (config.ffn_dim, config.dim),
        "ffn_up": (config.ffn_dim, config.dim),
        "ffn_down": (config.dim, config.ffn_dim),
    }
    for i in range(config.n_layers):
        for short, shape in per_layer.items():
            shapes[f"blk.{i}.{short}.weight"] = shape
    return shapes


def torch_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "norm.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    match = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", gguf_name)
    if match is None or match.group(2) not in _LAYER_TENSORS:
        raise ModelFileError(f"unexpected tensor {gguf_name!r} in the GGUF")
    return f"layers.{match.group(1)}.{_LAYER_TENSORS[match.group(2)]}.weight"


def unpermute_rope_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row order (pairs interleaved per head) -> the rotate-half order of the reference."""
    rows, cols = weight.shape
    half = rows // heads // 2
    return weight.reshape(heads, half, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _dequantize(tensor: Any, shape: tuple[int, ...]) -> np.ndarray:
    from gguf.quants import dequantize

    try:
        array = dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError:
        raise ModelFileError(
            f"tensor {tensor.name} uses the {tensor.tensor_type.name} format, which this gguf package cannot read"
        ) from None
    except Exception as exc:
        raise ModelFileError(f"tensor {tensor.name} is damaged ({exc}); the file may be truncated") from None
    if tuple(array.shape) != shape:
        raise ModelFileError(f"tensor {tensor.name} has shape {tuple(array.shape)}, expected {shape}")
    return np.asarray(array, dtype=np.float32)


def check_tensors(reader: Any, config: LlamaConfig) -> dict[str, Any]:
    """Every tensor a Llama of ``config`` needs is there with the right shape, and nothing else; by name."""
    shapes = expected_shapes(config)
    by_name = {t.name: t for t in reader.tensors}
    missing = [name for name in shapes if name not in by_name]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ModelFileError(f"the GGUF lacks tensors {', '.join(missing[:3])}{more}; it is not a complete Llama")
    extra = sorted(set(by_name) - set(shapes))
    if extra:
        raise ModelFileError(f"the GGUF has tensors a Llama does not: {', '.join(extra[:3])}")
    for name, shape in shapes.items():
        stored = tuple(int(n) for n in reversed(by_name[name].shape))
        if stored != shape:
            raise ModelFileError(f"tensor {name} has shape {stored}, expected {shape}")
    return by_name


def read_weights(reader: Any, config: LlamaConfig) -> dict[str, torch.Tensor]:
    """All weights, dequantised to float32, under the names of :class:`~studio.ml.models.llama.Llama`."""
    shapes = expected_shapes(config)
    by_name = check_tensors(reader, config)

    def convert(name: str) -> tuple[str, torch.Tensor]:
        array = _dequantize(by_name[name], shapes[name])
        if ".attn_q." in name:
            array = unpermute_rope_rows(array, config.n_heads)
        elif ".attn_k." in name:
            array = unpermute_rope_rows(array, config.n_kv_heads)
        if not (array.flags.writeable and array.flags.c_contiguous):  # float32 tensors come as read-only maps
            array = np.array(array, order="C")
        return torch_name(name), torch.from_numpy(array)

    # numpy releases the GIL in the heavy parts of dequantisation, so two threads roughly halve the wait.
    with ThreadPoolExecutor(max_workers=max(1, min(4, torch.get_num_threads()))) as pool:
        weights = dict(pool.map(convert, shapes))
    for name, tensor in weights.items():
        if not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"tensor {name} holds NaN or infinite values; the file is damaged")
    return weights


def read_tokenizer_metadata(reader: Any) -> dict[str, Any]:
    return {key: value for key in _TOKENIZER_KEYS if (value := field(reader, key)) is not None}


def model_name(path: Path) -> str:
    """Store name from the file name: ``SmolLM2-135M-Instruct.Q4_1.gguf`` -> ``smollm2-135m-instruct``."""
    stem = Path(path).name.removesuffix(".gguf")
    stem = re.sub(r"[.\-_](?:[QqFf]\d+(?:_[A-Za-z0-9]+)*|BF16|bf16|IQ\d\w*)$", "", stem)
    return re.sub(r"[^a-z0-9.\-]+", "-", stem.lower()).strip("-") or "language-model"


def source_info(reader: Any, path: Path) -> dict[str, Any]:
    """What the file says about itself (kept in the sidecar and the model card)."""
    return {
        "file": Path(path).name,
        "general.name": field(reader, "general.name", ""),
        "license": field(reader, "general.license", ""),
        "file_type": field(reader, "general.file_type", None),
    }


def sidecar_meta(
    path: Path, config: LlamaConfig, sha256: str, source: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """The JSON the model store lists a GGUF by (written beside it as ``<file stem>.json``)."""
    return {
        "arch": "llama",
        "format": "gguf",
        "name": name or model_name(path),
        "modality": "copy",
        "family": "transformer",
        "config": asdict(config),
        "categories": [],
        "metrics": {},
        "sha256": sha256,
        "source": source,
    }


def write_sidecar(path: Path, meta: dict[str, Any]) -> Path:
    side = Path(path).with_suffix(".json")
    return write_atomic(side, json.dumps(meta, indent=2, default=str), f"the description of {Path(path).name}")


def register_gguf(path: Path, name: str | None = None, folder: Path | None = None) -> str:
    """Check a GGUF (architecture, hyper-parameters, tensors, tokenizer), copy it into ``folder`` unless it is
    already there, and write the sidecar that lists it in the model store; returns the name it is listed under."""
    from studio.ml.checkpoint import sha256_file
    from studio.ml.text.tokenizer import GGUFTokenizer

    path = Path(path)
    reader = open_gguf(path)
    config = read_config(reader, path.name)
    check_tensors(reader, config)
    GGUFTokenizer.from_metadata(read_tokenizer_metadata(reader))
    source = source_info(reader, path)
    target = path
    if folder is not None and Path(folder).resolve() != path.resolve().parent:
        target = Path(folder) / path.name
        if target.with_suffix(".json").exists():  # a GGUF without its sidecar is a failed import: replaced
            raise BadInputError(f"{target.name} is already in the model folder: delete it first or rename the file")
        write_atomic(target, copy_of(path), f"the language model {path.name}")
    meta = sidecar_meta(target, config, sha256_file(target), source, name)
    write_sidecar(target, meta)
    return meta["name"]
