"""Shared-prefix training: the same loss and gradient as example by example, groups kept together in the shuffle,
and a long run that crashes goes on from its last periodic checkpoint exactly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from studio.ml.train import lora
from studio.ml.train.lora import (
    Example,
    LoRAConfig,
    RunFolder,
    TrainSettings,
    backward_batch,
    example_loss,
    fit_adapter,
    lora_parameters,
    with_lora,
)
from studio.ml.train.shared_prefix import prefix_groups, shared_prefix_loss, shuffled_by_prefix
from tests.ml.copy_fixtures import tiny_lm

pytestmark = pytest.mark.usefixtures("one_thread")

PREFIX_A = [5, 9, 14, 3, 22, 8, 11, 6]
PREFIX_B = [7, 7, 30, 2, 19]


def _examples() -> list[Example]:
    """Two prompts' slots: (prefix, the slot's own tail, the line); tails and lines of different lengths."""
    rows = [(PREFIX_A, [12, 4], [25, 26, 27, 1]), (PREFIX_A, [13], [28, 1]), (PREFIX_A, [12, 4, 17], [29, 1]),
            (PREFIX_B, [4], [31, 32, 33, 34, 1]), (PREFIX_B, [15, 16], [35, 1])]
    return [Example([*p, *t, *line], len(p) + len(t), shared=len(p)) for p, t, line in rows]


def _unshared(examples: list[Example]) -> list[Example]:
    return [Example(e.ids, e.target_from) for e in examples]


def _adapted(seed: int = 0):
    lm = tiny_lm(seed=1, embed_std=0.3)
    model = with_lora(lm.model, LoRAConfig(rank=4, dropout=0.0), seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in lora_parameters(model):
            p.normal_(0.0, 0.2)  # B starts at zero: give the adapter something to change
    return lm, model


def test_the_shared_prefix_loss_and_gradient_equal_example_by_example() -> None:
    lm, model = _adapted()
    params = lora_parameters(model)

    def loss_and_grad(examples: list[Example]) -> tuple[float, int, torch.Tensor]:
        for p in params:
            p.grad = None
        loss, n = example_loss(model, examples, lm.tokenizer.pad_id, lm.device)
        (loss / n).backward()
        return float(loss.detach()), n, torch.cat([p.grad.flatten() for p in params])

    shared_loss, shared_n, shared_grad = loss_and_grad(_examples())
    plain_loss, plain_n, plain_grad = loss_and_grad(_unshared(_examples()))
    assert shared_n == plain_n == 4 + 2 + 2 + 5 + 2
    assert shared_loss == pytest.approx(plain_loss, rel=1e-5)
    assert torch.allclose(shared_grad, plain_grad, rtol=1e-4, atol=1e-6)
    assert plain_grad.abs().sum() > 0


def test_a_batch_backpropagated_one_prefix_at_a_time_gets_the_whole_batchs_gradient() -> None:
    lm, model = _adapted()
    params = lora_parameters(model)
    mean = backward_batch(model, _examples(), lm.tokenizer.pad_id, lm.device)
    in_parts = torch.cat([p.grad.flatten() for p in params])
    for p in params:
        p.grad = None
    loss, n = example_loss(model, _unshared(_examples()), lm.tokenizer.pad_id, lm.device)
    (loss / n).backward()
    assert mean == pytest.approx(float(loss.detach()) / n, rel=1e-5)
    assert torch.allclose(in_parts, torch.cat([p.grad.flatten() for p in params]), rtol=1e-4, atol=1e-6)


def test_each_distinct_prefix_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    lm, model = _adapted()
    lengths: list[int] = []
    forward = type(model).forward

    def counting(self, input_ids, *args, **kwargs):
        lengths.append(input_ids.shape[1])
        return forward(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", counting)
    shared_prefix_loss(model, _examples(), lm.tokenizer.pad_id, lm.device)
    assert sorted(n for n in lengths if n in (len(PREFIX_A), len(PREFIX_B))) == [len(PREFIX_B), len(PREFIX_A)]
    assert len(lengths) == 4, "one prefix run and one batched run of the rows, per prompt"


def test_a_prefix_reaching_the_targets_is_refused() -> None:
    lm, model = _adapted()
    bad = Example([*PREFIX_A, 25, 1], len(PREFIX_A), shared=len(PREFIX_A))  # no token of its own before the line
    with pytest.raises(ValueError, match="end before the token predicting the first target"):
        shared_prefix_loss(model, [bad], lm.tokenizer.pad_id, lm.device)


def test_groups_stay_together_and_unshared_examples_shuffle_as_before() -> None:
    examples = _examples()
    groups = prefix_groups([examples[3], examples[0], examples[4], examples[1]])
    assert groups == [[examples[3], examples[4]], [examples[0], examples[1]]]
    order = shuffled_by_prefix(examples, random.Random(3))
    prefixes = [tuple(e.ids[:e.shared]) for e in order]
    assert sorted(order, key=examples.index) == examples
    assert prefixes.index(tuple(PREFIX_B)) in (0, 3) and len(set(prefixes[:3])) in (1, 2)
    assert [p for i, p in enumerate(prefixes) if i == 0 or p != prefixes[i - 1]] in (
        [tuple(PREFIX_A), tuple(PREFIX_B)], [tuple(PREFIX_B), tuple(PREFIX_A)])

    plain = _unshared(examples)
    expected = list(plain)
    random.Random(3).shuffle(expected)
    assert shuffled_by_prefix(plain, random.Random(3)) == expected  # brand-voice runs keep their order


def test_a_crashed_run_goes_on_from_its_last_periodic_checkpoint(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny_lm(seed=1, embed_std=0.3)
    train, val, held = _examples() * 2, _examples()[:2], _examples()[3:]
    settings = TrainSettings(epochs=2, batch=3, lr=1e-2, seed=0, lora=LoRAConfig(rank=4))
    torch.manual_seed(0)  # LoRA dropout draws from torch's generator: each run starts from the same state
    straight = fit_adapter(lm, train, val, held, settings, "recipe")
    assert straight.steps >= 5, "the crash below must fall in the middle of an epoch"

    monkeypatch.setattr(lora, "SAVE_EVERY_S", -1.0)  # a checkpoint after every step, as after every 10 minutes

    def crash(step: int, _total: int, losses: dict[str, float]) -> None:
        if step == 3 and "train" in losses:
            raise RuntimeError("the machine went away")

    run = RunFolder(tmp_path / "checkpoints")
    torch.manual_seed(0)
    with pytest.raises(RuntimeError):
        fit_adapter(lm, train, val, held, settings, "recipe", on_step=crash, run=run)
    steps: list[int] = []
    resumed = fit_adapter(lm, train, val, held, settings, "recipe", run=RunFolder(run.checkpoints, resume=True),
                          on_step=lambda step, _total, losses: steps.append(step) if "train" in losses else None)
    assert steps[0] == 4, "the resumed run takes step 4 next: the 3 steps before the crash are kept"
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    assert resumed.perplexity_after == pytest.approx(straight.perplexity_after, rel=1e-5)
