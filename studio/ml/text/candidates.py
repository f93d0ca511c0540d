"""Many candidate lines in one batched decode: every row is one candidate for one slot, all rows share the
prompt's prefix, then each row is fed its own tail (the slot's request) and samples one line under the hard
constraints of :mod:`studio.ml.sampling.constrained`.

On the torch runtime the prefix is run once and never copied (:class:`studio.ml.models.llama.SharedPrefixCache`:
every row attends to the same keys and values), and each distinct tail is run once for all the candidates of its
slot. Other runtimes copy the prefix's cache to every row and feed the tails token by token.

Rows step together; a row still being fed its tail is fed the next tail token while the others sample, and a
row that has ended its line leaves the batch; once every slot has ENOUGH finished lines, the rows still writing
are abandoned (they are mostly lines heading past their limit). A row may be given a looser budget than its
real limit: the model then writes the line it means, and a row that runs past the limit stops and is dropped, so
the limit chooses among complete lines instead of forcing a line to end on whatever word fits. Each row records
the model's own log-probability (temperature 1, before any mask) of every token it chose, the end included: the
reranker's fluency and PMI terms use them, so scoring the brief-given likelihood costs no extra pass.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from studio.ml.models.llama import batch_copies
from studio.ml.sampling.constrained import CopyConstraints, KeywordBonus, LineRules, LineState
from studio.ml.sampling.text import SamplingParams, sample_row

RowSink = Callable[[int, str], None]
END_BIAS = 6.0  # added to the line-end logits at the limit (0 at half of it): lines tend to end before it
COMPACT_ROWS = 8  # finished rows leave the batch once this many (or a quarter of it) have finished
ENOUGH = 3  # finished lines per slot after which its unfinished rows are abandoned


@dataclass(frozen=True)
class RowJob:
    """One candidate to write: its tail after the shared prefix, its rules, its seed, words to nudge toward."""

    tail: tuple[int, ...]
    rules: LineRules
    seed: int
    keywords: tuple[str, ...] = ()
    start: tuple[int, ...] = ()  # the line's first tokens, written for the model (dropped if a rule forbids one)
    limit: int | None = None  # the real limit when ``rules.budget`` is looser: a row past it stops, discarded


@dataclass
class Candidate:
    row: int
    text: str
    tokens: list[int]
    logprobs: list[float]  # model log-probability of each chosen token, the line end included

    @property
    def fluency(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else float("-inf")

    @property
    def end_logprob(self) -> float:
        """How much the model itself wanted the line to end where it did (low: the limit ended it)."""
        return self.logprobs[-1] if self.logprobs else float("-inf")


@dataclass
class _Row:
    job: RowJob
    generator: torch.Generator
    bonus: KeywordBonus | None
    pending: deque[int]
    start: deque[int]
    state: LineState = field(default_factory=LineState)
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    done: bool = False
    overflow: bool = False  # went past its limit before the model ended it


def sample_lines(lm: Any, prefix: Sequence[int], jobs: Sequence[RowJob], constraints: CopyConstraints,
                 params: SamplingParams, cancel: Callable[[], None] | None = None,
                 on_text: RowSink | None = None, keyword_bonus: float = 2.0) -> list[Candidate]:
    """One line per job, all decoded together after ``prefix``; ``on_text(row, text)`` sees every row's text grow
    (the workspace streams a preview from it)."""
    if not jobs:
        return []
    cancel = cancel or (lambda: None)
    table = constraints.table
    rows = [_Row(job, torch.Generator().manual_seed(job.seed),
                 KeywordBonus(table, job.keywords, keyword_bonus) if job.keywords else None, deque(job.tail),
                 deque(job.start))
            for job in jobs]
    room = max(len(j.tail) for j in jobs) + max(j.rules.budget for j in jobs) // 2 + 8
    with batch_copies():
        return _decode(lm, prefix, rows, room, constraints, params, cancel, on_text)


def _decode(lm: Any, prefix: Sequence[int], rows: list[_Row], room: int, constraints: CopyConstraints,
            params: SamplingParams, cancel: Callable[[], None], on_text: RowSink | None) -> list[Candidate]:
    logits, cache = _start(lm, prefix, rows, room)
    active = list(range(len(rows)))  # the rows of the batch, in cache order (finished ones wait to be dropped)
    while any(not rows[k].done for k in active) and not _enough(rows):
        cancel()
        raw = torch.log_softmax(logits.float(), dim=-1)
        feed = [_choose(rows[k], logits[i], raw[i], constraints, params, on_text, k) if not rows[k].done
                else lm.tokenizer.pad_id for i, k in enumerate(active)]
        keep = [i for i, k in enumerate(active) if not rows[k].done]
        if not keep:
            break
        if len(active) - len(keep) >= max(COMPACT_ROWS, len(active) // 4):  # copying the cache costs: not each time
            cache = cache.select(torch.tensor(keep))
            active = [active[i] for i in keep]
            feed = [feed[i] for i in keep]
        extra = min(len(rows[k].pending) for k in active if not rows[k].done)
        if extra:
            chunk = [[token, *(rows[k].pending.popleft() if not rows[k].done else token for _ in range(extra))]
                     for token, k in zip(feed, active, strict=True)]
            logits, cache = lm.prefill(chunk, max_new_tokens=room, cache=cache)
        else:
            logits, cache = lm.decode_step(feed, cache)
    return [Candidate(k, row.state.text.strip(), row.tokens, row.logprobs) for k, row in enumerate(rows)
            if row.done and not row.overflow]


def _enough(rows: list[_Row]) -> bool:
    """Has every slot (rows sharing a tail) ENOUGH finished lines, or no row still writing? Then the stragglers,
    usually lines heading past the limit, are not waited for."""
    finished: dict[tuple[int, ...], int] = {}
    running: dict[tuple[int, ...], int] = {}
    for row in rows:
        key = row.job.tail
        if row.done:
            finished[key] = finished.get(key, 0) + (not row.overflow)
        else:
            running[key] = running.get(key, 0) + 1
    return all(finished.get(key, 0) >= ENOUGH for key in running)


def _start(lm: Any, prefix: Sequence[int], rows: list[_Row], room: int) -> tuple[torch.Tensor, Any]:
    """Logits and cache after the prefix (and, where the runtime can share a prefix, after every distinct tail:
    rows with the same tail are copies of one row, and are fed nothing more)."""
    if not hasattr(lm, "prefill_shared"):
        return lm.prefill(list(prefix), max_new_tokens=room, copies=len(rows))
    tails: dict[tuple[int, ...], int] = {}
    for row in rows:
        tails.setdefault(row.job.tail, len(tails))
    for row in rows:
        row.pending.clear()
    return lm.prefill_shared(prefix, [list(t) for t in tails], max_new_tokens=room,
                             rows=[tails[row.job.tail] for row in rows])


def _choose(row: _Row, logits: torch.Tensor, raw: torch.Tensor, constraints: CopyConstraints,
            params: SamplingParams, on_text: RowSink | None, k: int) -> int:
    """The row's next token to feed: its next tail token, or one sampled under the constraints."""
    if row.pending:
        return row.pending.popleft()
    mask = constraints.mask_or_raise(row.state, row.job.rules, frozenset())
    if row.start and mask[row.start[0]]:
        token = row.start.popleft()
    else:
        row.start.clear()
        scores = np.where(mask, logits.numpy(), np.float32(-np.inf))  # a copy with the ruled-out tokens at -inf
        if row.bonus is not None:
            row.bonus.apply(scores, row.state)
        limit = row.job.limit or row.job.rules.budget
        fill = row.state.length / limit
        if fill > 0.5:  # nudge the line to end (where a line may end) as it nears its limit; the mask decides where
            scores[constraints.table.end_ids] += END_BIAS * (fill - 0.5) / 0.5
        token = sample_row(scores, params, row.generator, row.tokens)
    row.tokens.append(token)
    row.logprobs.append(float(raw[token]))
    if constraints.is_end(token):
        row.done = True
        return token
    constraints.advance(row.state, token)
    if row.job.limit is not None and row.state.length > row.job.limit:
        row.done = row.overflow = True
        return token
    if on_text is not None:
        on_text(k, row.state.text)
    return token
