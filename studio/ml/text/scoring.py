"""Log-probabilities of given lines after a prompt, in one batched pass: the fluency of a line (its mean token
log-probability given the brief) and how generic it is (the same line after a prompt without the brief).

Works on any language model with ``prefill(..., copies=N)`` and ``extend_logits`` (torch and onnxruntime).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from studio.ml.models.llama import batch_copies

CHUNK = 16  # rows scored together (logits are rows x tokens x vocabulary floats)


def continuation_logprobs(lm: Any, prompt: Sequence[int], continuations: Sequence[Sequence[int]]) -> list[list[float]]:
    """For each continuation, the log-probability of each of its tokens after ``prompt`` (temperature 1)."""
    found: list[list[float]] = []
    for start in range(0, len(continuations), CHUNK):
        chunk = [list(c) for c in continuations[start:start + CHUNK]]
        longest = max((len(c) for c in chunk), default=0)
        if longest == 0:
            found.extend([] for _ in chunk)
            continue
        first, cache = lm.prefill(list(prompt), max_new_tokens=longest + 1, copies=len(chunk))
        pad = lm.tokenizer.pad_id
        rows = [c + [pad] * (longest - len(c)) for c in chunk]
        with batch_copies():
            rest = lm.extend_logits([r[:-1] for r in rows], cache) if longest > 1 else None
        for k, tokens in enumerate(chunk):
            steps = [first[k]] + ([rest[k, j] for j in range(len(tokens) - 1)] if rest is not None else [])
            found.append([float(torch.log_softmax(step.float(), dim=-1)[t]) for step, t in zip(steps, tokens,
                                                                                              strict=True)])
    return found


def mean_logprob(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("-inf")
