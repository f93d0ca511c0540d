"""Greedy decoding through an exported Transformer graph must pick the tokens torch picks.

Both runtimes are fed the same tokens (torch's greedy choices), so one early disagreement cannot cascade; a step
where they choose differently counts as agreement only when torch itself scores the two tokens within the graph's
tolerance (a tie that any rounding breaks either way, not drift).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.errors import ExportDriftError
from studio.core.modalities import step_adapter
from studio.ml.registry import Architecture, OnnxGraph
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import OrtGraphRunner, TorchGraphRunner

STEPS = 16
PROMPT_LENGTH = 8

Steps = Callable[[list[int]], torch.Tensor]


def step_feeder(arch_name: str) -> Callable[[Any, Any], Steps] | None:
    """How to feed a runner of ``arch_name``'s ``decoder_with_past`` graph one sequence (its modality's step
    adapter); None if it has none."""
    ref = step_adapter(arch_name)
    return None if ref is None else ref.load()


def greedy_agreement(
    make_steps: Callable[[Any, Any], Steps], reference: Any, candidate: Any, config: Any, prompt: list[int],
    steps: int, tie: float,
) -> int:
    """How many of ``steps`` greedy tokens ``candidate`` chooses as ``reference`` does (ties count as agreeing)."""
    ref, new = make_steps(reference, config), make_steps(candidate, config)
    want, got = ref(prompt), new(prompt)
    agree = 0
    for _ in range(steps):
        token, other = int(want.argmax()), int(got.argmax())
        agree += token == other or float(want[token] - want[other]) <= tie
        want, got = ref([token]), new([token])
    return agree


def probe_prompt(config: Any) -> list[int]:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, config.vocab_size, (PROMPT_LENGTH,), generator=generator).tolist()


def check_greedy(arch: Architecture, module: nn.Module, config: Any, graph: OnnxGraph, path: Path) -> int | None:
    """Greedy steps checked equal for a Transformer's decoding graph (None for other graphs); raises
    :class:`~studio.core.errors.ExportDriftError` when the graph picks other tokens."""
    make_steps = step_feeder(arch.name)
    if make_steps is None or graph.name != "decoder_with_past":
        return None
    candidate = OrtGraphRunner(open_session(path, "cpu", graph=graph), graph.input_names, "cpu")
    agree = greedy_agreement(make_steps, TorchGraphRunner(module, graph, "cpu"), candidate, config,
                             probe_prompt(config), STEPS, graph.atol)
    if agree < STEPS:
        raise ExportDriftError(
            f"graph {graph.name!r} picks other greedy tokens than torch ({agree} of {STEPS} agree); "
            "the export was refused"
        )
    return STEPS
