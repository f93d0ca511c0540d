"""A tiny language model for copy tests: a byte-level BPE trained here on a few sentences (so every word can be
spelt) wrapped as a GGUFTokenizer, and a randomly initialised two-layer Llama. No model file is needed."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from studio.ml.models.llama import Llama, LlamaConfig
from studio.ml.text.lm import LanguageModel
from studio.ml.text.tokenizer import CONTROL, NORMAL, GGUFTokenizer

SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CORPUS = [
    "Fresh coffee delivered to your door every week.",
    "Roasted beans from small farms, ground the way you like.",
    "Pause or cancel any time. Your coffee, your rhythm!",
    "Build your budget in minutes and see where every dollar goes.",
    "A pixel art dungeon crawler with a new castle every run.",
    "Write ad copy lines: headlines, descriptions and paths.",
    "Great taste, bold flavour, quick delivery and friendly support.",
    "Save more, spend smarter, plan ahead with clear goals.",
    "- Try it today\n- Start now\n- Join thousands of happy customers",
]


@lru_cache(maxsize=1)
def tiny_tokenizer() -> GGUFTokenizer:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=list(SPECIAL),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(CORPUS * 20, trainer)
    vocab = backend.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    types = [CONTROL if t in SPECIAL else NORMAL for t in tokens]
    return GGUFTokenizer({
        "kind": "gpt2", "tokens": tokens, "token_types": types, "bos_id": None,
        "eos_id": vocab["<|im_end|>"], "pad_id": vocab["<|endoftext|>"], "add_bos": False,
        "chat_template": None, "backend": backend.to_str(),
    })


def tiny_lm(seed: int = 0, embed_std: float = 0.02) -> LanguageModel:
    """``embed_std``: larger tied embeddings give the output layer room to express a learnt preference."""
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                         ffn_dim=64, max_seq_len=4096)
    torch.manual_seed(seed)
    model = Llama(config).eval()
    with torch.no_grad():
        model.embed_tokens.weight.normal_(0.0, embed_std)
    return LanguageModel(model, tokenizer, torch.device("cpu"), torch.float32, name="tiny", sha256="0" * 64)


class InMemoryBaseLoader:
    """The worker's runtime loader for tests whose base language model lives in memory (``base``, under any
    name): adapters of the store are applied to it by the real adapter runtime on torch; ``loaded`` lists the base
    models asked for."""

    def __init__(self, resources: Any, base: LanguageModel) -> None:
        self.resources, self.base, self.loaded = resources, base, []

    def load(self, name: str, device: str | None = None, runtime: str | None = None, purpose: str = "stream") -> Any:
        from studio.core.errors import ModelFileError
        from studio.ml.runtime.lora_lm import ADAPTER

        try:
            entry = self.resources.store.find(name)
        except ModelFileError:  # the base model, in memory only
            entry = None
        if entry is not None and entry.arch == "llama-lora":
            return self.resources.cache.get(f"lm-lora:{name}:{device}",
                                            lambda: ADAPTER.load_torch(self, entry, device or "cpu"))
        self.loaded.append(name)
        return self.base
