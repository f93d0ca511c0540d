"""Seeded next-token sampling: greedy, temperature, top-k, top-p (nucleus) and repetition penalty.

Each row of a batch has its own ``torch.Generator`` (seeded from the job seed, e.g. ``seed + variant``) and
draws exactly one uniform number per token, so a variant comes out the same alone or in a batch, and a logits
processor that masks tokens does not shift the random stream.

Usage::

    params = SamplingParams(temperature=0.8, top_p=0.95, repetition_penalty=1.1)
    generator = torch.Generator().manual_seed(seed)
    next_ids = sample(logits, params, [generator], history=[prompt_ids + generated])   # (B,) long
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from studio.core.errors import BadInputError


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8  # 0 = greedy (always the most likely token)
    top_p: float = 0.95  # keep the smallest set of tokens whose probability reaches top_p; 1 = off
    top_k: int = 0  # keep the k most likely tokens; 0 = off
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the history; 1 = off

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise BadInputError(f"temperature must be between 0 and 5, not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise BadInputError(f"top-p must be above 0 and at most 1, not {self.top_p}")
        if self.top_k < 0:
            raise BadInputError(f"top-k must be 0 (off) or positive, not {self.top_k}")
        if not 0.5 <= self.repetition_penalty <= 3.0:
            raise BadInputError(f"repetition penalty must be between 0.5 and 3, not {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def apply_repetition_penalty(logits: torch.Tensor, history: Sequence[int], penalty: float) -> torch.Tensor:
    """One row (V,): logits of tokens seen in ``history`` are divided by ``penalty`` (multiplied if negative)."""
    if penalty == 1.0 or not history:
        return logits
    ids = torch.tensor(sorted(set(history)), dtype=torch.long)
    seen = logits[ids]
    logits = logits.clone()
    logits[ids] = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits


NUCLEUS_GUESS = 256  # tokens ranked first; the full sort runs only when they hold less than top_p of the mass


def _ranked(scaled: torch.Tensor, params: SamplingParams, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate tokens' scores in descending order and their ids: all tokens (or the top k), or, with
    top-p, the few highest when they already hold top_p of the probability (the same tokens a full sort keeps).
    ``total`` is the log-sum-exp of ``scaled``."""
    if params.top_k:
        return scaled.topk(min(params.top_k, scaled.numel()))
    if params.top_p < 1.0 and scaled.numel() > NUCLEUS_GUESS:
        values, order = scaled.topk(NUCLEUS_GUESS)
        if float(torch.exp(values - total).sum()) >= params.top_p:
            return values, order
    return scaled.sort(descending=True)


def sample_row(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator, history: Sequence[int] = ()
) -> int:
    """The next token id for one row of logits (V,) (float32, CPU)."""
    logits = apply_repetition_penalty(logits.float(), history, params.repetition_penalty)
    if not bool(torch.isfinite(logits).any()):
        raise BadInputError("no token is allowed at this point (every candidate was ruled out)")
    if params.greedy:
        return int(logits.argmax())
    scaled = logits / params.temperature
    total = torch.logsumexp(scaled, dim=0)
    values, order = _ranked(scaled, params, total)
    # top-k renormalises over its k tokens; otherwise the ranked tokens' share of the whole distribution
    probs = torch.softmax(values, dim=0) if params.top_k else torch.exp(values - total)
    if params.top_p < 1.0:
        before = probs.cumsum(0) - probs  # probability mass ranked above each token
        probs = torch.where(before < params.top_p, probs, torch.zeros_like(probs))
    cumulative = probs.cumsum(0)
    draw = torch.rand((), generator=generator, dtype=torch.float64).item() * float(cumulative[-1])
    index = int(torch.searchsorted(cumulative, torch.tensor([draw], dtype=cumulative.dtype), right=True))
    index = min(index, int((probs > 0).sum()) - 1)  # rounding can land just past the last kept token
    return int(order[index])


def sample(
    logits: torch.Tensor,
    params: SamplingParams,
    generators: torch.Generator | Sequence[torch.Generator],
    history: Sequence[Sequence[int]] | None = None,
) -> torch.Tensor:
    """Next token ids (B,) for logits (B, V) or (V,); one generator per row (or one shared by all rows)."""
    rows = logits.reshape(-1, logits.shape[-1]).float().cpu()
    if isinstance(generators, torch.Generator):
        generators = [generators] * rows.shape[0]
    if len(generators) != rows.shape[0]:
        raise ValueError(f"{rows.shape[0]} rows of logits but {len(generators)} generators")
    histories = history if history is not None else [()] * rows.shape[0]
    return torch.tensor(
        [sample_row(row, params, gen, hist) for row, gen, hist in zip(rows, generators, histories, strict=True)],
        dtype=torch.long,
    )
