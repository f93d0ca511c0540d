"""The language model on onnxruntime against torch: logits, greedy tokens, left-padded batches, the streaming loop
and the copywriter's constrained decoder, on a tiny random Llama exported through `studio export onnx`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.copy_brief import brief_from_dict
from studio.core.copy_formats import generation_format
from studio.core.errors import BadInputError, StudioError
from studio.ml.runtime.exports import read_record
from studio.ml.runtime.ort_lm import OrtLanguageModel, load_ort_language_model
from studio.ml.sampling.constrained import LineRules
from studio.ml.sampling.text import SamplingParams
from studio.ml.text.candidates import RowJob, sample_lines
from studio.ml.text.copywriter import CopyRequest, constraints_for, generate_ads
from studio.ml.text.generate import generate, stream, stream_batch
from studio.ml.text.lm import LanguageModel, load_language_model
from tests.export.conftest import LM

CHAT = [{"role": "user", "content": "Write a headline"}]
WARM = SamplingParams(temperature=1.2, top_p=0.98)
ATOL = 1e-4


@pytest.fixture
def pair(exported_home: Path) -> tuple[LanguageModel, OrtLanguageModel]:
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    record = read_record(exported_home / "onnx" / LM / "fp32")
    torch_lm = load_language_model(gguf, name=LM)
    # candidate batches on torch read bfloat16 copies where this CPU multiplies them faster; the fp32 export computes
    # float32 throughout, so torch does too here and a sampled token can only differ through a real divergence
    torch_lm.model.set_batch_precision(None)
    return torch_lm, load_ort_language_model(record, gguf, "cpu", threads=1, name=LM)


def _never_stop(lm) -> object:
    stops = list(lm.tokenizer.stop_ids)

    def processor(ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        logits[stops] = float("-inf")
        return logits

    return processor


def test_prefill_and_decode_logits_match_torch(pair) -> None:
    torch_lm, ort_lm = pair
    prompt = torch_lm.tokenizer.encode_chat(CHAT)
    want, cache = torch_lm.prefill(prompt, 8)
    got, ort_cache = ort_lm.prefill(prompt, 8)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    for token in (5, 17, 40):
        want, cache = torch_lm.decode_step([token], cache)
        got, ort_cache = ort_lm.decode_step([token], ort_cache)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    assert ort_cache.length == cache.length == len(prompt) + 3


def test_greedy_tokens_equal_for_16_steps(pair) -> None:
    runs = []
    for lm in pair:
        tokens: list[int] = []
        list(stream(lm, CHAT, 16, SamplingParams(temperature=0.0), logits_processor=_never_stop(lm),
                    on_token=lambda t, _, seen=tokens: seen.append(t)))
        runs.append(tokens)
    assert len(runs[0]) == 16 and runs[0] == runs[1]


def test_left_padded_batch_rows_equal_single_rows(pair) -> None:
    _, ort_lm = pair
    tok = ort_lm.tokenizer
    short, long = tok.encode("the cat"), tok.encode("a much longer prompt about the weather in spring")
    logits, cache = ort_lm.prefill([short, long], 8)
    assert cache.pad is not None and cache.pad.tolist() == [len(long) - len(short), 0]
    singles = [ort_lm.prefill(ids, 8) for ids in (short, long)]
    for row, (single_logits, _) in enumerate(singles):
        torch.testing.assert_close(logits[row], single_logits[0], atol=ATOL, rtol=1e-3)
    logits, cache = ort_lm.decode_step([7, 9], cache)
    for row, (token, (_, single_cache)) in enumerate(zip((7, 9), singles, strict=True)):
        single_logits, _ = ort_lm.decode_step([token], single_cache)
        torch.testing.assert_close(logits[row], single_logits[0], atol=ATOL, rtol=1e-3)
    logits, cache = ort_lm.decode_step([3], cache.select(torch.tensor([1])))  # a finished row leaves the batch
    assert cache.batch == 1 and logits.shape == (1, tok.vocab_size)


def test_streamed_variants_and_prompts_match_torch(pair) -> None:
    torch_lm, ort_lm = pair
    prompts = ["the cat", "a much longer prompt about the weather in spring"]
    for batch in (prompts, [CHAT] * 3):
        texts = []
        for lm in pair:
            rows: dict[int, str] = {}
            for event in stream_batch(lm, batch, 12, WARM, seed=5):
                rows[event.row] = rows.get(event.row, "") + event.text
            texts.append(rows)
        assert len(texts[0]) == len(batch) and texts[0] == texts[1]
    assert generate(ort_lm, CHAT, 12, WARM, seed=9) == generate(torch_lm, CHAT, 12, WARM, seed=9)


def test_constrained_copy_runs_unchanged_on_onnxruntime(pair) -> None:
    torch_lm, ort_lm = pair
    brief = brief_from_dict({"product": "Brewly", "features": ["fresh beans every week"], "audience": "home baristas",
                             "tone": "warm", "must_use": [], "banned": ["cheap"]})
    fmt = generation_format("google-rsa")
    request = CopyRequest(brief, fmt, "aida", {"headline": 3, "path": 2}, variants=2, seed=4)
    # the candidates are the same line for line: onnxruntime copies the prompt's cache to every row and feeds the
    # tails token by token, torch shares the prefix and runs each tail once (the reranker's near ties may differ)
    cc = constraints_for(torch_lm, brief, fmt)
    prefix = torch_lm.tokenizer.encode("Write ad headlines:\n", add_bos=False)
    jobs = [RowJob(tuple(torch_lm.tokenizer.encode(tail, add_bos=False)), LineRules(30), seed)
            for seed, tail in enumerate(["- Fresh", "- Brewly is", "- A"])]
    params = SamplingParams(0.8, 0.95)
    lines = [[c.text for c in sample_lines(lm, prefix, jobs, cc, params)] for lm in pair]
    assert lines[0] == lines[1] and len(lines[0]) == 3
    payloads: list[dict] = []
    ads = generate_ads(ort_lm, request, on_partial=payloads.append)
    for ad in ads:
        assert len(ad["headline"]) == 3 and all(0 < len(line) <= fmt.field("headline").limit for line in ad["headline"])
        assert len(ad["path"]) == 2 and all(len(p) <= fmt.field("path").limit for p in ad["path"])
    assert any(p["done"] for p in payloads) and any(not p["done"] for p in payloads)


def test_bad_input_is_refused_like_torch(pair) -> None:
    _, ort_lm = pair
    with pytest.raises(BadInputError, match="empty"):
        ort_lm.prefill([])
    _, cache = ort_lm.prefill([5, 6], 4)
    with pytest.raises(BadInputError, match="2 tokens for a cache of 1"):
        ort_lm.decode_step([1, 2], cache)
    with pytest.raises(BadInputError, match="at most 4096"):
        ort_lm.prefill([5] * 4096)
    with pytest.raises(StudioError, match="runtime='torch'"):  # LoRA and training need the torch module
        _ = ort_lm.model


def test_a_shared_prompt_prefix_is_reused_with_torch_logits(pair) -> None:
    torch_lm, ort_lm = pair
    first = ort_lm.tokenizer.encode_chat([{"role": "system", "content": "Short ad copy."}, *CHAT])
    second = [*first[:-3], 7, 9, 11]
    ort_lm.prefill(first, 8)
    fed: list[int] = []
    run = ort_lm._run
    ort_lm._run = lambda tokens, cache: (fed.append(tokens.shape[1]), run(tokens, cache))[1]
    got, ort_cache = ort_lm.prefill(second, 8)
    want, cache = torch_lm.prefill(second, 8)
    assert fed == [3], "only the new tail of the prompt runs"
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    got, _ = ort_lm.decode_step([5], ort_cache)
    want, _ = torch_lm.decode_step([5], cache)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
