"""Writing tiny Llama GGUF files for tests, so the whole import path runs without the 98 MB model.

``write_tiny_gguf`` takes a torch :class:`Llama` (Hugging Face layout) and writes it the way llama.cpp's converter
does (Q/K rows permuted for interleaved RoPE, optional Q8_0 quantisation), with a byte-level BPE vocabulary of the
256 byte symbols, three ChatML control tokens and a few merges. Other test modules may import it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from studio.ml.models.llama import Llama, LlamaConfig
from studio.ml.text.tokenizer import bytes_to_unicode

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "Ġ s", "o n", "Ġ w", "1 2"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a tiny test model<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges): specials, the 256 byte symbols in byte order, then one token per merge."""
    tokens = [*SPECIALS, *bytes_to_unicode().values()]
    tokens += ["".join(m.split(" ")) for m in MERGES]
    types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    return tokens, types, list(MERGES)


def tiny_config(**changes: object) -> LlamaConfig:
    base = dict(vocab_size=len(tiny_vocab()[0]), dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=64,
                max_seq_len=128, rope_theta=10000.0)
    base.update(changes)
    return LlamaConfig(**base)  # type: ignore[arg-type]


def tiny_model(seed: int = 0, **changes: object) -> Llama:
    torch.manual_seed(seed)
    model = Llama(tiny_config(**changes)).eval()
    with torch.no_grad():  # norms away from 1 so a mix-up of norm weights would show
        for name, param in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "norm.weight":
                param.uniform_(0.5, 1.5)
    return model


def permute_rope_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face -> llama.cpp row order of a Q or K projection (what convert_hf_to_gguf.py does)."""
    rows, cols = weight.shape
    return weight.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _gguf_tensors(model: Llama) -> dict[str, np.ndarray]:
    config = model.config
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = {"token_embd.weight": state["embed_tokens.weight"], "output_norm.weight": state["norm.weight"]}
    if not config.tie_embeddings:
        out["output.weight"] = state["lm_head.weight"]
    names = {
        "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    }
    for i in range(config.n_layers):
        for short, long in names.items():
            weight = state[f"layers.{i}.{long}.weight"]
            if short == "attn_q":
                weight = permute_rope_rows(weight, config.n_heads)
            elif short == "attn_k":
                weight = permute_rope_rows(weight, config.n_kv_heads)
            out[f"blk.{i}.{short}.weight"] = weight
    return out


def write_tiny_gguf(
    path: Path,
    model: Llama | None = None,
    quantized: bool = False,
    arch: str = "llama",
    pre: str = "smollm",
    drop_tensor: str | None = None,
    chat_template: str | None = CHAT_TEMPLATE,
    layer_type: GGMLQuantizationType | None = None,
) -> Path:
    """Write ``model`` (default: ``tiny_model()``) as a GGUF; ``quantized`` stores 2-D weights as Q8_0;
    ``layer_type`` stores the layers' matrices in that type and the embeddings as Q8_0 (as the default model's
    Q4_1 file does)."""
    model = model or tiny_model()
    config = model.config
    tokens, types, merges = tiny_vocab()
    assert len(tokens) == config.vocab_size, "the model's vocabulary must match the tiny tokenizer"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), arch)
    writer.add_name("tiny test llama")
    writer.add_block_count(config.n_layers)
    writer.add_context_length(config.max_seq_len)
    writer.add_embedding_length(config.dim)
    writer.add_feed_forward_length(config.ffn_dim)
    writer.add_head_count(config.n_heads)
    writer.add_head_count_kv(config.n_kv_heads)
    writer.add_layer_norm_rms_eps(config.norm_eps)
    writer.add_rope_freq_base(config.rope_theta)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_vocab_size(config.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for name, array in _gguf_tensors(model).items():
        if name == drop_tensor:
            continue
        kind = GGMLQuantizationType.Q8_0 if quantized or layer_type is not None else None
        if layer_type is not None and name.startswith("blk."):
            kind = layer_type
        if kind is not None and array.ndim == 2:
            writer.add_tensor(name, quantize(array, kind), raw_dtype=kind)
        else:
            writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
