"""The streaming loop on a tiny GGUF model: seeds, batches, hooks, stop conditions, cancellation, UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.cancel import CancelToken, JobCancelled
from studio.ml.sampling.text import SamplingParams
from studio.ml.text.generate import generate, stream, stream_batch
from studio.ml.text.lm import LanguageModel, load_language_model
from tests.ml.tiny_gguf import write_tiny_gguf

CHAT = [{"role": "user", "content": "Write a headline"}]
WARM = SamplingParams(temperature=1.2, top_p=0.98)


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> LanguageModel:
    path = write_tiny_gguf(tmp_path_factory.mktemp("lm") / "tiny.gguf")
    return load_language_model(path, "cpu", "fp32")  # exact: decoding and full recomputation agree to the bit


def test_same_seed_same_text_other_seed_other_text(lm: LanguageModel) -> None:
    a = generate(lm, CHAT, 24, WARM, seed=11)
    assert a == generate(lm, CHAT, 24, WARM, seed=11)
    others = {generate(lm, CHAT, 24, WARM, seed=s) for s in range(12, 16)}
    assert others - {a}


def test_stream_pieces_join_to_generate(lm: LanguageModel) -> None:
    tokens: list[int] = []
    pieces = list(stream(lm, CHAT, 20, WARM, seed=3, on_token=lambda t, _: tokens.append(t)))
    assert "".join(pieces) == generate(lm, CHAT, 20, WARM, seed=3)
    assert 0 < len(tokens) <= 20
    assert lm.tokenizer.decode(tokens) == "".join(pieces)


def test_greedy_equals_argmax_of_full_recompute(lm: LanguageModel) -> None:
    prompt = lm.tokenizer.encode_chat(CHAT)
    ids = list(prompt)
    for _ in range(8):
        with torch.inference_mode():
            logits, _ = lm.model(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    expected = [t for t in ids[len(prompt):]]
    got: list[int] = []
    list(stream(lm, prompt, 8, SamplingParams(temperature=0.0), on_token=lambda t, _: got.append(t)))
    stop_at = next((i for i, t in enumerate(expected) if t in lm.tokenizer.stop_ids), len(expected))
    assert got == expected[:stop_at]


def test_batch_rows_match_single_runs(lm: LanguageModel) -> None:
    texts = {r: "" for r in range(3)}
    done = set()
    for event in stream_batch(lm, [CHAT] * 3, 16, WARM, seed=40):
        assert event.row not in done
        texts[event.row] += event.text
        if event.done:
            done.add(event.row)
    assert done == {0, 1, 2}
    for row in range(3):
        assert texts[row] == generate(lm, CHAT, 16, WARM, seed=40 + row)


def test_batch_of_different_prompts_matches_single_runs(lm: LanguageModel) -> None:
    prompts = ["the cat", "a much longer prompt about the weather in spring"]
    texts = ["", ""]
    for event in stream_batch(lm, prompts, 12, WARM, seed=5):
        texts[event.row] += event.text
    assert texts == [generate(lm, p, 12, WARM, seed=5 + r) for r, p in enumerate(prompts)]


def test_logits_processor_and_stop_condition(lm: LanguageModel) -> None:
    allowed = [lm.tokenizer.tokens.index(t) for t in ("a", "b", "Ġthe")]
    seen_lengths: list[int] = []

    def only_abc(ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        seen_lengths.append(len(ids))
        masked = torch.full_like(logits, float("-inf"))
        masked[allowed] = logits[allowed]
        return masked

    text = generate(lm, CHAT, 30, WARM, seed=1, logits_processor=only_abc,
                    stop=lambda ids, text: text.count("a") >= 2)
    assert set(text.replace(" the", "")) <= {"a", "b"}
    assert text.count("a") == 2 and text.endswith("a")
    assert seen_lengths == list(range(len(seen_lengths)))


def test_end_of_turn_token_ends_the_reply_and_is_not_text(lm: LanguageModel) -> None:
    def end_after_three(ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        if len(ids) == 3:
            logits = torch.full_like(logits, float("-inf"))
            logits[lm.tokenizer.eos_id] = 0.0
        return logits

    tokens: list[int] = []
    text = generate(lm, CHAT, 30, WARM, seed=2, logits_processor=end_after_three,
                    on_token=lambda t, _: tokens.append(t))
    assert len(tokens) == 3 and "<|im_end|>" not in text


def test_multibyte_characters_are_never_split(lm: LanguageModel) -> None:
    # Force the two byte tokens of "é" (C3 A9), then "!": the first piece must wait for the second byte.
    table = {v: k for k, v in enumerate(lm.tokenizer.token_bytes)}
    forced = [table[b"\xc3"], table[b"\xa9"], table[b"!"]]

    def force(ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        out[forced[len(ids)] if len(ids) < 3 else lm.tokenizer.eos_id] = 0.0
        return out

    events = list(stream_batch(lm, [CHAT], 10, WARM, logits_processor=force))
    assert [e.text for e in events] == ["", "é", "!", ""]
    assert events[-1].done and events[-1].token_id == -1


def test_length_limit_and_context_end(lm: LanguageModel) -> None:
    tokens: list[int] = []
    never_stop = [lm.tokenizer.tokens.index("a")]

    def only_a(ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        out[never_stop] = 0.0
        return out

    generate(lm, "the", 5, WARM, logits_processor=only_a, on_token=lambda t, _: tokens.append(t))
    assert len(tokens) == 5
    tokens.clear()
    generate(lm, "the", 10_000, WARM, logits_processor=only_a, on_token=lambda t, _: tokens.append(t))
    assert len(tokens) == lm.config.max_seq_len - len(lm.tokenizer.encode("the"))


def test_cancel_stops_between_tokens(lm: LanguageModel) -> None:
    token = CancelToken()
    produced: list[int] = []

    def on_token(tid: int, _: str) -> None:
        produced.append(tid)
        if len(produced) == 3:
            token.cancel()

    with pytest.raises(JobCancelled):
        generate(lm, CHAT, 50, WARM, seed=0, on_token=on_token, cancel=token.check,
                 logits_processor=lambda ids, logits: logits.index_fill(0, torch.tensor([0, 2]), float("-inf")))
    assert len(produced) == 3


def test_prompt_forms_agree(lm: LanguageModel, tmp_path: Path) -> None:
    ids = lm.tokenizer.encode_chat(CHAT)
    text = lm.tokenizer.apply_chat_template(CHAT)
    assert generate(lm, ids, 8, WARM, seed=9) == generate(lm, CHAT, 8, WARM, seed=9) == generate(
        lm, text, 8, WARM, seed=9
    )
