"""Ratios measured in alternating rounds: the runtimes compared take turns, one decode each per round, and every
ratio is taken within a round.

The bench's tables measure one runtime after another, minutes apart. On a shared machine that moves a runtime's
speed by up to 30 % between runs (measured at 2 threads: llama.cpp 120-141 tokens/s, Studio 103-126, three runs one
day), so a ratio of two such numbers says as much about the machine as about the runtimes. Turns a second apart see
the same machine: the ratio within a round moves far less than either rate, and its median over the rounds, with
the lowest and highest round beside it, is the number to hold a target against.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Contender:
    """One runtime's turn: ``run`` decodes once and returns the seconds its timed steps took, in which it produced
    ``tokens`` tokens (rows x steps)."""

    name: str
    tokens: int
    run: Callable[[], float]


def alternate(contenders: Sequence[Contender], rounds: int) -> dict[str, list[float]]:
    """Each contender's tokens/s in each of ``rounds`` rounds (at least one), after one untimed warm-up turn each.
    Every other round runs in reverse order, so no contender always runs straight after the same one."""
    if rounds < 1:
        raise ValueError(f"alternating rounds need at least one round, not {rounds}")
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    if len(rates) != len(contenders):
        raise ValueError("two contenders share a name: their turns would merge")
    for contender in contenders:
        contender.run()
    for index in range(rounds):
        for contender in contenders if index % 2 == 0 else reversed(contenders):
            rates[contender.name].append(contender.tokens / max(contender.run(), 1e-9))
    return rates


def round_ratio(rates: dict[str, list[float]], numerator: str, denominator: str, target: float) -> dict[str, Any]:
    """``numerator``'s tokens/s over ``denominator``'s, round by round: the median against ``target``, and the
    lowest and highest round. Unmeasured (either missing) is not a pass."""
    if numerator not in rates or denominator not in rates:
        return {"ratio": None, "target": target, "met": None}
    per_round = [a / b for a, b in zip(rates[numerator], rates[denominator], strict=True)]
    median = statistics.median(per_round)
    return {"ratio": round(median, 2), "low": round(min(per_round), 2), "high": round(max(per_round), 2),
            "rounds": len(per_round), "target": target, "met": median >= target}
