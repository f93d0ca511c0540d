"""The tokenizer stored in a GGUF file's metadata, rebuilt with the ``tokenizers`` library.

Two vocabularies are understood: byte-level BPE (``tokenizer.ggml.model = "gpt2"``: SmolLM2, Llama 3) with the
pre-tokeniser llama.cpp uses for the file's ``tokenizer.ggml.pre``, and SentencePiece BPE (``"llama"``: Llama 2,
TinyLlama) with byte fallback. The chat template stored in the file is rendered with a sandboxed Jinja
environment, as Hugging Face's ``apply_chat_template`` does.

Usage::

    tok = GGUFTokenizer.from_metadata(metadata)           # metadata: gguf_loader.read_tokenizer_metadata(...)
    ids = tok.encode_chat([{"role": "user", "content": "Write a headline for running shoes"}])
    text = tok.decode(ids)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from studio.core.errors import BadInputError, ModelFileError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6  # llama.cpp token types

_GPT2_PRE = ("default", "gpt2", "gpt-2", "mpt", "olmo", "jais")
_DIGITS_PRE = ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva")
_LLAMA3_PRE = ("llama3", "llama-v3", "llama-bpe", "smaug-bpe", "falcon3", "dbrx")
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_STOP_TEXTS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>")
# Used when a file has no chat template (a base model): the common ChatML layout.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def merges_from_scores(tokens: Sequence[str], scores: Sequence[float]) -> list[tuple[str, str]]:
    """SentencePiece files list scores, not merges: every split of a token into two known tokens is a merge,
    ranked by the merged token's score (the same rule as Hugging Face's converter)."""
    vocab = {token: i for i, token in enumerate(tokens)}
    ranked = []
    for token, score in zip(tokens, scores, strict=True):
        pairs = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in vocab and token[i:] in vocab]
        pairs.sort(key=lambda pair: (vocab[pair[0]], vocab[pair[1]]))
        ranked.extend((score, left, right) for left, right in pairs)
    ranked.sort(key=lambda item: (item[0], len(item[1]), len(item[2])), reverse=True)
    return [(left, right) for _, left, right in ranked]


def _byte_level_backend(tokens: Sequence[str], merges: Sequence[str], pre: str) -> Tokenizer:
    if pre in _DIGITS_PRE:
        pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        )
    elif pre in _LLAMA3_PRE:
        pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    elif pre in _GPT2_PRE:
        pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        raise ModelFileError(
            f"this GGUF's tokenizer splits text the {pre!r} way, which Studio does not know "
            f"(known: {', '.join(sorted((*_GPT2_PRE, *_DIGITS_PRE, *_LLAMA3_PRE)))})"
        )
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    if any(len(p) != 2 for p in pairs):
        raise ModelFileError("the GGUF's tokenizer merges are damaged (a merge is not two tokens)")
    vocab = {token: i for i, token in enumerate(tokens)}
    backend = Tokenizer(models.BPE(vocab, pairs, fuse_unk=False, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.ByteLevel()
    return backend


def _sentencepiece_backend(
    tokens: Sequence[str], scores: Sequence[float], unk_id: int, space_prefix: bool
) -> Tokenizer:
    vocab = {token: i for i, token in enumerate(tokens)}
    backend = Tokenizer(
        models.BPE(vocab, merges_from_scores(tokens, scores), unk_token=tokens[unk_id], fuse_unk=True,
                   byte_fallback=True)
    )
    prepend = [normalizers.Prepend("▁")] if space_prefix else []
    backend.normalizer = normalizers.Sequence([*prepend, normalizers.Replace(" ", "▁")])
    strip = [decoders.Strip(" ", 1, 0)] if space_prefix else []
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), *strip])
    return backend


class GGUFTokenizer:
    """Encode/decode text for a GGUF language model; also the per-token bytes that constrained decoding needs."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self._state = dict(state)
        self.kind: str = state["kind"]
        self.tokens: list[str] = list(state["tokens"])
        self.token_types: list[int] = list(state["token_types"])
        self.bos_id: int | None = state.get("bos_id")
        self.eos_id: int = state["eos_id"]
        self.pad_id: int = state.get("pad_id") if state.get("pad_id") is not None else self.eos_id
        self.add_bos: bool = bool(state.get("add_bos", False))
        self.chat_template: str = state.get("chat_template") or CHATML_TEMPLATE
        self._backend = Tokenizer.from_str(state["backend"])

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> GGUFTokenizer:
        """Build from GGUF ``tokenizer.*`` metadata (see :func:`studio.ml.text.gguf_loader.read_tokenizer_metadata`)."""
        try:
            kind = meta["tokenizer.ggml.model"]
            tokens = list(meta["tokenizer.ggml.tokens"])
        except KeyError as exc:
            raise ModelFileError(f"the GGUF has no tokenizer ({exc.args[0]} is missing)") from None
        types = list(meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens))
        if len(types) != len(tokens):
            raise ModelFileError("the GGUF's tokenizer is damaged (token types do not match the tokens)")
        eos_id = meta.get("tokenizer.ggml.eos_token_id")
        if eos_id is None or not 0 <= eos_id < len(tokens):
            raise ModelFileError("the GGUF's tokenizer has no valid end-of-sequence token")
        if kind == "gpt2":
            if "tokenizer.ggml.merges" not in meta:
                raise ModelFileError("the GGUF's byte-level tokenizer has no merges")
            pre = meta.get("tokenizer.ggml.pre", "default")
            backend = _byte_level_backend(tokens, meta["tokenizer.ggml.merges"], pre)
            add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False))
        elif kind == "llama":
            scores = meta.get("tokenizer.ggml.scores")
            if scores is None or len(scores) != len(tokens):
                raise ModelFileError("the GGUF's SentencePiece tokenizer has no scores for its tokens")
            unk = int(meta.get("tokenizer.ggml.unknown_token_id", 0))
            space_prefix = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
            backend = _sentencepiece_backend(tokens, scores, unk, space_prefix)
            add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", True))
        else:
            raise ModelFileError(
                f"the GGUF's tokenizer is of type {kind!r}; Studio reads byte-level BPE ('gpt2') and "
                "SentencePiece ('llama') vocabularies"
            )
        special = [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types, strict=True)
                   if k == CONTROL]
        user = [AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types, strict=True)
                if k == USER_DEFINED]
        backend.add_special_tokens(special)
        backend.add_tokens(user)
        if backend.get_vocab_size(with_added_tokens=True) != len(tokens):
            raise ModelFileError("the GGUF's tokenizer is damaged (duplicate tokens in its vocabulary)")
        bos = meta.get("tokenizer.ggml.bos_token_id")
        return cls(
            {
                "kind": kind,
                "tokens": tokens,
                "token_types": types,
                "bos_id": bos if bos is not None and 0 <= bos < len(tokens) else None,
                "eos_id": int(eos_id),
                "pad_id": meta.get("tokenizer.ggml.padding_token_id"),
                "add_bos": add_bos,
                "chat_template": meta.get("tokenizer.chat_template"),
                "backend": backend.to_str(),
            }
        )

    def to_json(self) -> str:
        return json.dumps(self._state)

    @classmethod
    def from_json(cls, text: str) -> GGUFTokenizer:
        return cls(json.loads(text))

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @cached_property
    def special_ids(self) -> frozenset[int]:
        return frozenset(i for i, kind in enumerate(self.token_types) if kind in (CONTROL, UNKNOWN))

    @cached_property
    def stop_ids(self) -> frozenset[int]:
        """Tokens that end a reply: the file's end-of-sequence token and the usual end-of-turn tokens."""
        found = {i for i, t in enumerate(self.tokens) if t in _STOP_TEXTS and self.token_types[i] == CONTROL}
        return frozenset({self.eos_id, *found})

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        """Token ids of ``text``; special tokens written in the text (``<|im_start|>``) become their ids."""
        ids = self._backend.encode(text, add_special_tokens=False).ids
        if (self.add_bos if add_bos is None else add_bos) and self.bos_id is not None:
            ids = [self.bos_id, *ids]
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    @cached_property
    def token_bytes(self) -> list[bytes]:
        """The bytes each token stands for (control tokens: their text); joined and UTF-8 decoded = the text."""
        if self.kind == "gpt2":
            decoder = {ch: b for b, ch in bytes_to_unicode().items()}
            out = []
            for token, kind in zip(self.tokens, self.token_types, strict=True):
                if kind == NORMAL and all(ch in decoder for ch in token):
                    out.append(bytes(decoder[ch] for ch in token))
                else:
                    out.append(token.encode("utf-8"))
            return out
        out = []
        for token, kind in zip(self.tokens, self.token_types, strict=True):
            if kind == BYTE and token.startswith("<0x") and token.endswith(">"):
                out.append(bytes([int(token[3:-1], 16)]))
            else:
                out.append(token.replace("▁", " ").encode("utf-8"))
        return out

    @cached_property
    def token_texts(self) -> list[str]:
        """The text of every token id on its own (a token holding part of a UTF-8 character shows U+FFFD)."""
        return [b.decode("utf-8", errors="replace") for b in self.token_bytes]

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True, **extra: Any
    ) -> str:
        """Render the model's own chat template (``tokenizer.chat_template``) for ``messages``."""
        from studio.ml.text.chat_template import render_chat_template

        bos = self.tokens[self.bos_id] if self.bos_id is not None else ""
        return render_chat_template(
            self.chat_template, messages, add_generation_prompt=add_generation_prompt,
            bos_token=bos, eos_token=self.tokens[self.eos_id], **extra,
        )

    def encode_chat(self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True) -> list[int]:
        """Token ids of the rendered chat (the template writes any BOS itself, so none is added here)."""
        if not messages:
            raise BadInputError("a chat needs at least one message")
        return self.encode(self.apply_chat_template(messages, add_generation_prompt), add_bos=False)
