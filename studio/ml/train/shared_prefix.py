"""Training losses that run a prompt prefix once for every example that shares it.

Self-training examples are slot prompts of about 500 tokens, of which the first ~490 (the brief, the format and the
few-shot lines) are the same for every slot of one field of one ad, answered by a line of about 12 tokens. Run
example by example, a batch repeats that prefix per line; here each distinct prefix runs once, with gradients, and
its keys and values are the past of every example's own tokens (the slot's tail and the line). The loss and its
gradient are the same as example by example (the prefix's computation is identical for each; autograd sums what
each line sends back through it), for a fraction of the arithmetic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

from studio.ml.models.llama import ConcatCache, Llama


class Shareable(Protocol):
    ids: list[int]
    target_from: int  # the loss covers ids[target_from:]
    shared: int  # ids[:shared] may be shared with other examples (0: nothing to share)


def prefix_groups(examples: Sequence[Shareable]) -> list[list[Shareable]]:
    """Examples with the same prefix together, in the order each prefix first appears; an example that shares
    nothing is a group of its own."""
    groups: dict[tuple[object, ...], list[Shareable]] = {}
    for position, example in enumerate(examples):
        key = ("prefix", *example.ids[:example.shared]) if example.shared else ("alone", position)
        groups.setdefault(key, []).append(example)
    return list(groups.values())


def shuffled_by_prefix(examples: Sequence[Shareable], rng: random.Random) -> list[Shareable]:
    """The examples in a random order in which those sharing a prefix stay side by side (so a batch shares them)
    and shuffled among themselves. Examples that share nothing come out as ``rng.shuffle`` would order them."""
    groups = prefix_groups(examples)
    rng.shuffle(groups)
    for group in groups:
        rng.shuffle(group)
    return [example for group in groups for example in group]


def shared_prefix_loss(model: Llama, examples: Sequence[Shareable], pad_id: int, device: torch.device
                       ) -> tuple[torch.Tensor, int]:
    """(summed next-token NLL over every example's targets, number of target tokens), each distinct prefix run
    once. Every example must have ``0 < shared < target_from``: the prefix holds no target, nor the token before
    the first."""
    total = torch.zeros((), device=device)
    count = 0
    for group in prefix_groups(examples):
        loss, n = _group_loss(model, group, pad_id, device)
        total = total + loss
        count += n
    return total, count


def _group_loss(model: Llama, group: Sequence[Shareable], pad_id: int, device: torch.device
                ) -> tuple[torch.Tensor, int]:
    shared = group[0].shared
    if not 0 < shared < min(e.target_from for e in group):
        raise ValueError("a shared prefix must be non-empty and end before the token predicting the first target")
    layers = model.config.n_layers
    empty = torch.zeros(layers, 1, model.config.n_kv_heads, 0, model.config.head_dim, device=device,
                        dtype=model.embed_tokens.weight.dtype)
    prefix_cache = ConcatCache(empty, empty)
    model(torch.tensor([group[0].ids[:shared]], device=device), cache=prefix_cache, last_only=True)
    rows = len(group)
    past_k = torch.stack(prefix_cache.present_k).expand(-1, rows, -1, -1, -1)
    past_v = torch.stack(prefix_cache.present_v).expand(-1, rows, -1, -1, -1)
    own = [e.ids[shared:] for e in group]
    longest = max(len(ids) for ids in own)
    ids = torch.full((rows, longest), pad_id, dtype=torch.long)
    targets = torch.full((rows, longest), -100, dtype=torch.long)
    for r, (example, row) in enumerate(zip(group, own, strict=True)):
        ids[r, :len(row)] = torch.tensor(row)
        first = example.target_from - shared
        targets[r, first:len(row)] = torch.tensor(row[first:])
    ids, targets = ids.to(device), targets.to(device)
    # Right padding needs no mask beyond the causal one: a real token never sees the padding after it.
    logits, _ = model(ids, cache=ConcatCache(past_k, past_v))
    return next_token_nll(logits, targets)


def next_token_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed NLL of each position's next target, number of targets); ``targets`` -100 where there is none."""
    shifted = targets[:, 1:]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), shifted.reshape(-1),
                           ignore_index=-100, reduction="sum")
    return loss, int((shifted != -100).sum())
