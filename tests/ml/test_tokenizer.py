"""GGUF import on a tiny file written in the test: tokenizer, chat template, weights, cache, store, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from gguf import GGUFWriter

from studio.core import paths
from studio.core.errors import BadInputError, ModelFileError
from studio.ml.store import ModelStore
from studio.ml.text import lm as lm_module
from studio.ml.text.gguf_loader import register_gguf
from studio.ml.text.lm import load_language_model
from studio.ml.text.tokenizer import GGUFTokenizer
from tests.ml.tiny_gguf import tiny_model, write_tiny_gguf

STRINGS = [
    "the cat sat on the mat",
    "  leading and trailing spaces  ",
    "Line one\nLine two\r\n\ttabbed",
    "héllo wörld, ça va? naïve café",
    "emoji 🏃‍♀️🔥👟 and CJK 跑步鞋 and Кириллица",
    "numbers 12 345 6789 and 1.5x",
    "<|im_start|>user\nhi<|im_end|>",
    "",
]


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "models" / "Tiny-Chat.Q8_0.gguf", quantized=True)


@pytest.fixture
def tokenizer(tiny_gguf: Path) -> GGUFTokenizer:
    return load_language_model(tiny_gguf).tokenizer


@pytest.mark.parametrize("text", STRINGS)
def test_round_trip_and_token_bytes(tokenizer: GGUFTokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids, skip_special_tokens=False) == text
    assert b"".join(tokenizer.token_bytes[i] for i in ids).decode("utf-8") == text


def test_merges_special_tokens_and_digits(tokenizer: GGUFTokenizer) -> None:
    tokens = tokenizer.tokens
    assert [tokens[i] for i in tokenizer.encode(" the")] == ["Ġthe"]
    assert tokenizer.encode("<|im_start|>") == [1]
    assert tokenizer.decode([1, tokens.index("Ġthe"), 2]) == " the"  # specials skipped by default
    assert tokenizer.stop_ids == {2, 0}
    assert tokenizer.special_ids == {0, 1, 2}
    # SmolLM's pre-tokeniser splits digits one by one, even though the tiny vocabulary has a "12" token.
    assert [tokens[i] for i in tokenizer.encode("12")] == ["1", "2"]
    assert len(tokenizer.token_texts) == tokenizer.vocab_size
    assert tokenizer.token_texts[tokens.index("Ġthe")] == " the"


def test_plain_gpt2_pre_tokenizer_uses_the_merge(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "gpt2-pre.gguf", pre="gpt2")
    tok = load_language_model(path).tokenizer
    assert [tok.tokens[i] for i in tok.encode("12")] == ["12"]


def test_chat_template_from_the_file(tokenizer: GGUFTokenizer) -> None:
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}])
    assert text == (
        "<|im_start|>system\nYou are a tiny test model<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=False)
    assert not no_prompt.endswith("assistant\n")
    ids = tokenizer.encode_chat([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert ids[0] == 1 and tokenizer.decode(ids, skip_special_tokens=False).startswith("<|im_start|>system\nS")
    with pytest.raises(BadInputError):
        tokenizer.encode_chat([{"role": "user"}])
    with pytest.raises(BadInputError):
        tokenizer.encode_chat([])


def test_chat_template_is_sandboxed(tmp_path: Path) -> None:
    evil = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    path = write_tiny_gguf(tmp_path / "evil.gguf", chat_template=evil)
    tok = load_language_model(path).tokenizer
    with pytest.raises(ModelFileError, match="chat template"):
        tok.apply_chat_template([{"role": "user", "content": "x"}])


def test_missing_chat_template_falls_back_to_chatml(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "base.gguf", chat_template=None)
    tok = load_language_model(path).tokenizer
    assert tok.apply_chat_template([{"role": "user", "content": "x"}]) == (
        "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("quantized", [False, True])
def test_weights_load_like_the_original(tmp_path: Path, quantized: bool) -> None:
    model = tiny_model(seed=5)
    path = write_tiny_gguf(tmp_path / "w.gguf", model, quantized=quantized)
    lm = load_language_model(path, "cpu", "fp32")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.inference_mode():
        want, _ = model(ids)
        got, _ = lm.model(ids)
    # float32 tensors are exact (Q/K un-permuted correctly); Q8_0 keeps about 2-3 significant digits
    tol = 2e-2 if quantized else 1e-6
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)
    assert lm.config == model.config and lm.dtype == torch.float32


def test_cpu_half_precision_adds_decoding_copies(tiny_gguf: Path) -> None:
    full = load_language_model(tiny_gguf, "cpu", "fp32")
    half = load_language_model(tiny_gguf, "cpu", "fp16")
    assert (half.dtype, half.weight_dtype) == (torch.float32, torch.float16)
    mlp = half.model.layers[0].mlp.up_proj
    assert mlp.weight.dtype == torch.float32 and mlp.decode_weight.dtype == torch.float16
    assert full.model.layers[0].mlp.up_proj.decode_weight is None
    assert half.nbytes > full.nbytes
    prompt = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    want, cache_full = full.prefill(prompt)
    got, cache_half = half.prefill(prompt)
    assert cache_half.k.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-2, rtol=1e-2)  # only the output row used the copy
    want, _ = full.decode_step([20], cache_full)
    got, _ = half.decode_step([20], cache_half)
    torch.testing.assert_close(got, want, atol=1e-2, rtol=1e-2)
    with pytest.raises(BadInputError, match="unknown precision"):
        load_language_model(tiny_gguf, "cpu", "int3")


def test_second_load_reads_the_cache(tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_language_model(tiny_gguf)
    cached = list((paths.cache_dir() / "lm").glob("*.safetensors"))
    assert [p.stem for p in cached] == [first.sha256]

    def no_gguf(path: Path) -> None:
        raise AssertionError("the GGUF was parsed again")

    monkeypatch.setattr(lm_module, "read_gguf", no_gguf)
    second = load_language_model(tiny_gguf)
    ids = [5, 6, 7]
    torch.testing.assert_close(second.prefill(ids)[0], first.prefill(ids)[0])
    assert second.tokenizer.encode("the cat") == first.tokenizer.encode("the cat")


def test_damaged_cache_is_rebuilt(tiny_gguf: Path) -> None:
    first = load_language_model(tiny_gguf)
    (paths.cache_dir() / "lm" / f"{first.sha256}.safetensors").write_bytes(b"not safetensors")
    again = load_language_model(tiny_gguf)
    torch.testing.assert_close(again.prefill([5, 6])[0], first.prefill([5, 6])[0])


def test_gguf_in_the_user_folder_appears_in_the_store() -> None:
    path = write_tiny_gguf(paths.user_models_dir() / "lm" / "Tiny-Chat.Q8_0.gguf", quantized=True)
    assert "tiny-chat" not in [e.name for e in ModelStore().entries()]  # no sidecar yet
    assert register_gguf(path) == "tiny-chat"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["arch"] == "llama" and meta["format"] == "gguf" and meta["modality"] == "copy"
    entry = ModelStore().find("tiny-chat")
    assert entry.weights == path and entry.arch == "llama" and entry.modality == "copy"
    assert entry.size_bytes >= path.stat().st_size


def test_register_copies_into_a_folder_after_checking(tmp_path: Path) -> None:
    folder = tmp_path / "user" / "lm"
    source = write_tiny_gguf(tmp_path / "downloads" / "Tiny-Chat.Q8_0.gguf", quantized=True)
    assert register_gguf(source, "my-lm", folder) == "my-lm"
    assert (folder / source.name).read_bytes() == source.read_bytes()
    assert json.loads((folder / "Tiny-Chat.Q8_0.json").read_text())["name"] == "my-lm"
    with pytest.raises(BadInputError, match="already in the model folder"):
        register_gguf(source, "again", folder)
    broken = write_tiny_gguf(tmp_path / "downloads" / "holey.gguf", drop_tensor="blk.0.attn_q.weight")
    with pytest.raises(ModelFileError, match="lacks tensors"):
        register_gguf(broken, None, folder)
    assert not (folder / "holey.gguf").exists()


def test_loading_writes_the_sidecar_and_resources_load_by_name() -> None:
    from studio.core.settings import Settings
    from studio.ml.resources import Resources
    from studio.ml.text.lm import get_language_model

    path = write_tiny_gguf(paths.user_models_dir() / "lm" / "Other-Model-F32.gguf")
    load_language_model(path)
    resources = Resources.from_settings(Settings())
    lm = get_language_model(resources, "other-model")
    assert lm.name == "other-model" and resources.cache.keys() == ["lm:other-model:cpu"]
    assert get_language_model(resources, "other-model") is lm
    with pytest.raises(ModelFileError, match="no model named"):
        get_language_model(resources, "missing")


def test_prompt_longer_than_the_context_is_refused(tiny_gguf: Path) -> None:
    lm = load_language_model(tiny_gguf)
    with pytest.raises(BadInputError, match="at most 128"):
        lm.prefill([5] * 128)
    _, cache = lm.prefill([5] * 100, max_new_tokens=40)
    assert cache.capacity == 128
    with pytest.raises(BadInputError):
        lm.prefill([])


# --- files that must be refused with a clear message ------------------------------------------------------


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("these are not model weights")
    with pytest.raises(ModelFileError, match="not a readable GGUF"):
        load_language_model(path)


def test_truncated_gguf(tiny_gguf: Path, tmp_path: Path) -> None:
    data = tiny_gguf.read_bytes()
    for keep in (16, len(data) // 3, len(data) - 100):
        cut = tmp_path / f"cut-{keep}.gguf"
        cut.write_bytes(data[:keep])
        with pytest.raises(ModelFileError):
            load_language_model(cut)


def test_other_architecture(tmp_path: Path) -> None:
    path = tmp_path / "qwen.gguf"
    writer = GGUFWriter(str(path), "qwen2")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", torch.zeros(4, 8).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelFileError, match="'qwen2' model; Studio runs Llama-architecture"):
        load_language_model(path)


def test_missing_tensor(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "holey.gguf", drop_tensor="blk.1.ffn_up.weight")
    with pytest.raises(ModelFileError, match=r"lacks tensors blk\.1\.ffn_up\.weight"):
        load_language_model(path)


def test_non_finite_weights(tmp_path: Path) -> None:
    model = tiny_model()
    with torch.no_grad():
        model.layers[0].mlp.up_proj.weight[0, 0] = float("nan")
    path = write_tiny_gguf(tmp_path / "nan.gguf", model)
    with pytest.raises(ModelFileError, match="NaN"):
        load_language_model(path)


def test_unknown_pre_tokenizer(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "odd.gguf", pre="martian")
    with pytest.raises(ModelFileError, match="'martian'"):
        load_language_model(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load_language_model(tmp_path / "nothing.gguf")


def test_sentencepiece_vocabulary_with_byte_fallback() -> None:
    """Llama 2 / TinyLlama style: ▁ marks word starts, merges come from scores, unknown text falls back to bytes."""
    pieces = ["▁", "h", "e", "l", "o", "w", "r", "d", "▁h", "ll", "▁he", "llo", "▁hello", "▁w", "or", "▁wor", "ld",
              "▁world"]
    tokens = ["<unk>", "<s>", "</s>", *[f"<0x{b:02X}>" for b in range(256)], *pieces]
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces)
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(pieces))]
    scores[tokens.index("▁hello")] = scores[tokens.index("▁world")] = 5.0
    tok = GGUFTokenizer.from_metadata({
        "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.scores": scores, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
    })
    ids = tok.encode("hello world")
    assert ids == [1, tokens.index("▁hello"), tokens.index("▁world")]  # BOS added, as llama.cpp does
    assert tok.decode(ids) == "hello world"
    accented = tok.encode("hé", add_bos=False)
    assert accented == [tokens.index("▁h"), tokens.index("<0xC3>"), tokens.index("<0xA9>")]
    assert tok.decode(accented) == "hé"
    assert b"".join(tok.token_bytes[i] for i in accented) == " hé".encode()
    assert tok.stop_ids == {2}
