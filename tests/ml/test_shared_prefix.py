"""Candidates sharing one prompt prefix: the shared-prefix cache gives the same logits as running every row's
whole prompt on its own, through the tails (left-padded) and the decode steps after them."""

from __future__ import annotations

import pytest
import torch

from studio.ml.models.llama import SharedPrefixCache
from tests.ml.copy_fixtures import tiny_lm

pytestmark = pytest.mark.usefixtures("one_thread")


def test_shared_prefix_matches_separate_prompts() -> None:
    lm = tiny_lm(seed=3, embed_std=0.5)
    prefix = lm.tokenizer.encode("Write ad copy lines: headlines and paths.\n", add_bos=False)
    tails = [lm.tokenizer.encode(text, add_bos=False) for text in ("- Fresh", "- Pause or cancel any time", "- A")]
    logits, cache = lm.prefill_shared(prefix, tails, max_new_tokens=8)
    assert isinstance(cache, SharedPrefixCache) and cache.batch == 3
    cache = cache.select(torch.tensor([0, 1, 2, 2]))  # a slot's candidates are copies of its row
    logits = logits[torch.tensor([0, 1, 2, 2])]
    singles = [lm.prefill(prefix + tail, max_new_tokens=8) for tail in [*tails, tails[2]]]
    for row, (expected, _) in enumerate(singles):
        torch.testing.assert_close(logits[row], expected[0], atol=1e-4, rtol=1e-4)
    steps = [[5, 9, 11, 13], [7, 7, 7, 7]]
    for tokens in steps:
        logits, cache = lm.decode_step(tokens, cache)
        for row, (_, single_cache) in enumerate(singles):
            expected, single_cache = lm.decode_step([tokens[row]], single_cache)
            singles[row] = (expected, single_cache)
            torch.testing.assert_close(logits[row], expected[0], atol=1e-4, rtol=1e-4)
    kept = cache.select(torch.tensor([1, 3]))  # finished rows leave; the others go on unchanged
    logits, _ = lm.decode_step([2, 2], kept)
    for row, source in ((0, 1), (1, 3)):
        expected, _ = lm.decode_step([2], singles[source][1])
        torch.testing.assert_close(logits[row], expected[0], atol=1e-4, rtol=1e-4)
