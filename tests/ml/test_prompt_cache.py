"""Prompt-prefix reuse in the torch language model: the same logits and the same continuation as a cold prefill,
with only the new tail of the prompt run, and never a stale prefix after the weights change."""

from __future__ import annotations

import pytest
import torch

from studio.ml.text.generate import generate
from studio.ml.text.prompt_cache import MIN_SHARED
from tests.ml.copy_fixtures import tiny_lm

pytestmark = pytest.mark.usefixtures("one_thread")

SYSTEM = [{"role": "system", "content": "You write short, warm ad copy for small coffee roasters."}]


def chat(request: str) -> list[dict[str, str]]:
    return [*SYSTEM, {"role": "user", "content": request}]


def fed_lengths(lm) -> list[int]:
    """Records how many tokens each forward pass of ``lm`` runs."""
    seen: list[int] = []
    forward = lm._forward

    def spy(tokens, cache, last_only):
        seen.append(tokens.shape[1])
        return forward(tokens, cache, last_only)

    lm._forward = spy
    return seen


def test_a_shared_prefix_is_not_run_again_and_gives_the_cold_logits() -> None:
    warm, cold = tiny_lm(), tiny_lm()
    first = warm.tokenizer.encode_chat(chat("Headlines for Brewly"))
    second = warm.tokenizer.encode_chat(chat("Taglines for Roastly, fresh every week"))
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    assert shared >= MIN_SHARED

    warm.prefill(first, 16)
    seen = fed_lengths(warm)
    got, got_cache = warm.prefill(second, 16)
    want, want_cache = cold.prefill(second, 16)

    assert seen == [len(second) - shared]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert got_cache.length == want_cache.length == len(second)
    for token in (5, 17, 40):  # the reused keys and values serve the decoding steps that follow
        got, got_cache = warm.decode_step([token], got_cache)
        want, want_cache = cold.decode_step([token], want_cache)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_a_repeated_prompt_runs_nothing_and_samples_the_same_text() -> None:
    lm = tiny_lm()
    prompt = lm.tokenizer.encode_chat(chat("Headlines for Brewly"))
    first = generate(lm, prompt, max_new_tokens=12, seed=4)
    seen = fed_lengths(lm)
    again = generate(lm, prompt, max_new_tokens=12, seed=4)
    assert again == first
    assert seen and max(seen) == 1, "only decoding steps run: the whole prompt came from the cache"


def test_generation_after_a_longer_prompt_does_not_see_its_tail() -> None:
    warm, cold = tiny_lm(), tiny_lm()
    long = warm.tokenizer.encode_chat(chat("Headlines for Brewly, roasted to order, cancel any time"))
    short = long[: len(long) - 6]
    warm.prefill(long, 8)
    got, _ = warm.prefill(short, 8)
    want, _ = cold.prefill(short, 8)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_changed_weights_empty_the_cache() -> None:
    lm, cold = tiny_lm(), tiny_lm()
    prompt = lm.tokenizer.encode_chat(chat("Headlines for Brewly"))
    lm.prefill(prompt, 8)
    with torch.no_grad():  # e.g. a merged adapter or a training step on the same module
        for model in (lm.model, cold.model):
            model.layers[0].mlp.down_proj.weight.mul_(3.0)
    seen = fed_lengths(lm)
    got, _ = lm.prefill(prompt, 8)
    want, _ = cold.prefill(prompt, 8)
    assert seen == [len(prompt)]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_batched_prompts_and_copies_still_work_with_a_warm_cache() -> None:
    lm, cold = tiny_lm(), tiny_lm()
    prompt = lm.tokenizer.encode_chat(chat("Headlines for Brewly"))
    lm.prefill(prompt, 8)
    got, cache = lm.prefill(prompt, 8, copies=3)
    want, _ = cold.prefill(prompt, 8, copies=3)
    assert cache.batch == 3
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_a_model_made_in_inference_mode_still_caches_prompts() -> None:
    """Inference tensors have no version counter; the cache's weight stamp must not trip over them."""
    with torch.inference_mode():
        lm = tiny_lm()
    prompt = lm.tokenizer.encode_chat(chat("a brief long enough to be cached"))
    first, _ = lm.prefill(prompt, 4)
    fed = fed_lengths(lm)
    again, _ = lm.prefill(prompt, 4)
    assert torch.equal(first, again) and fed == []  # served from the cache: nothing ran
