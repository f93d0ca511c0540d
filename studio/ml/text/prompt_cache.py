"""Reuse of prompt prefixes already run: the keys and values of a prompt's first tokens do not depend on what
follows them (causal attention), so a prompt that starts like an earlier one only needs its new tail run.

Every copy request starts with the same system message, and regenerating, rewriting a line or asking for more
variants repeats the whole prompt: those prefills then cost a few tokens instead of the whole prompt, which is what
the time to first token on a CPU is made of. Both runtimes keep one :class:`PromptCache`; it holds single-row
prompts only (batched, left-padded prompts are run in full).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

MIN_SHARED = 8  # fewer shared tokens than this are not worth a copy of the cache


@dataclass
class CachedPrompt:
    """Keys and values ``(layers, 1, kv_heads, len(tokens), head_dim)`` of ``tokens``, and the logits after them."""

    tokens: tuple[int, ...]
    k: torch.Tensor
    v: torch.Tensor
    logits: torch.Tensor


@dataclass
class PrefixHit:
    """``shared`` leading tokens of the new prompt are in ``entry``; the rest still has to be run."""

    entry: CachedPrompt
    shared: int


def _shared_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class PromptCache:
    """The last ``capacity`` prompts of one model, looked up by longest shared prefix.

    ``stamp`` identifies the weights the entries were computed with; a different stamp (weights changed in place)
    empties the cache, so a stale prefix is never reused.
    """

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[int, ...], CachedPrompt] = OrderedDict()
        self._stamp: Hashable = None

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, tokens: Sequence[int], stamp: Hashable) -> PrefixHit | None:
        """The entry sharing the longest prefix with ``tokens``, or None.

        ``shared == len(tokens)`` only for a prompt seen before exactly (its logits are stored too); a prompt that
        is a strict prefix of a stored one shares one token less, so that its last token is run for its logits.
        """
        if stamp != self._stamp:
            self._entries.clear()
            self._stamp = stamp
        best: PrefixHit | None = None
        for entry in self._entries.values():
            shared = _shared_length(entry.tokens, tokens)
            if shared == len(tokens) and len(entry.tokens) != len(tokens):
                shared -= 1
            if shared >= MIN_SHARED and (best is None or shared > best.shared):
                best = PrefixHit(entry, shared)
        if best is not None:
            self._entries.move_to_end(best.entry.tokens)
        return best

    def store(self, tokens: Sequence[int], k: torch.Tensor, v: torch.Tensor, logits: torch.Tensor) -> None:
        """Keep a copy of the first ``len(tokens)`` positions of ``k``/``v`` (single row) for later prompts."""
        key = tuple(int(t) for t in tokens)
        n = len(key)
        entry = CachedPrompt(key, k[:, :1, :, :n].clone(), v[:, :1, :, :n].clone(), logits[:1].clone())
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
