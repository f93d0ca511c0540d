"""Brand voice: LoRA adapters for the Llama language model, trained on the user's own lines of copy.

An adapter adds low-rank updates ``B @ A`` (rank r, scaled by alpha / r) to the attention and MLP projections; the
base weights stay frozen and shared, so an adapter file is small (a few MB) and loading it costs no second copy
of the model. Examples are chat-formatted the way :mod:`studio.ml.text.copywriter` asks for copy (the system
prompt, a request, and an assistant reply of ``- line`` items), and the loss covers only the reply.

The adapter file is ``NAME.safetensors`` (the A/B matrices) + ``NAME.json`` (``arch: "llama-lora"``, the base
model's name and sha256, rank, alpha, targets, held-out perplexity before/after); the model store lists it as a
copy model, and the copy tasks apply it to its base model on load.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from studio.core import copy_prompts
from studio.core.cancel import JobCancelled
from studio.core.errors import BadInputError, ModelFileError
from studio.ml.checkpoint import read_pair, sha256_file, write_with_sidecar
from studio.ml.models.llama import Llama
from studio.ml.text.lm import LanguageModel
from studio.ml.train.lora_state import (
    LoopState,
    has_state,
    load_state,
    recipe_of,
    rng_state,
    save_state,
    set_rng_state,
)
from studio.ml.train.shared_prefix import next_token_nll, prefix_groups, shared_prefix_loss, shuffled_by_prefix

ARCH = "llama-lora"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MARKER = "- "
SAVE_EVERY_S = 600.0  # a running adapter's checkpoint is at most this old


class LoRALinear(nn.Module):
    """``base(x) + scale * (x A^T) B^T``; B starts at zero so a fresh adapter changes nothing."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        weight = base.weight
        a = torch.empty(rank, base.in_features, dtype=weight.dtype)  # drawn on the CPU: the seeded generator is
        nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=generator)  # a CPU one, whatever the device
        self.lora_A = nn.Parameter(a.to(weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=weight.dtype, device=weight.device))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B) * self.scale


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = TARGETS
    dropout: float = 0.05

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= 256:
            raise BadInputError(f"LoRA rank must be between 1 and 256, not {self.rank}")
        unknown = set(self.targets) - set(TARGETS)
        if unknown or not self.targets:
            raise BadInputError(f"LoRA targets must be some of {', '.join(TARGETS)}")


def with_lora(model: Llama, config: LoRAConfig, seed: int = 0) -> Llama:
    """A copy of ``model`` whose target projections carry LoRA layers; the base weights are shared, not copied,
    and frozen. ``model`` itself is not changed (the cached base model stays usable)."""
    generator = torch.Generator().manual_seed(seed)
    shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    adapted = copy.deepcopy(model, memo=shared)
    for p in adapted.parameters():
        p.requires_grad_(False)
    for module in list(adapted.modules()):
        for name in config.targets:
            child = getattr(module, name, None)
            if isinstance(child, nn.Linear):
                setattr(module, name, LoRALinear(child, config.rank, config.alpha, config.dropout, generator))
    return adapted


def merge_lora(adapted: Llama, base: Llama) -> Llama:
    """``adapted`` (from :func:`with_lora`) with every LoRA layer replaced by a plain one holding
    ``W + scale * B A`` (summed in float32), and ``base``'s kinds of low-precision copies made from those weights."""
    from studio.ml.models.llama import Linear

    for module in list(adapted.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                weight = child.base.weight
                delta = child.scale * (child.lora_B.detach().float() @ child.lora_A.detach().float())
                plain = Linear(child.base.in_features, child.base.out_features)
                plain.weight = nn.Parameter((weight.detach().float() + delta).to(weight.dtype), requires_grad=False)
                setattr(module, child_name, plain.to(weight.device))
    linears = [m for m in base.modules() if isinstance(m, Linear)]
    # int8 decoding copies hold bfloat16 ones where a matrix's width does not suit int8: int8 is the precision
    decode = {m.decode_weight.dtype for m in linears if m.decode_weight is not None}
    batch = {m.batch_weight.dtype for m in linears if m.batch_weight is not None}
    adapted.set_decode_precision(torch.int8 if torch.int8 in decode else next(iter(decode), None))
    adapted.set_batch_precision(next(iter(batch), None))
    return adapted.eval()


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if ".lora_" in k}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if ".lora_" in n]


# --- examples -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    ids: list[int]
    target_from: int  # loss on ids[target_from:] (the assistant's reply)
    shared: int = 0  # ids[:shared] is a prompt prefix other examples may share (see shared_prefix)


def training_prompt(system: str, request: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": request}]


def make_example(lm: LanguageModel, system: str, request: str, lines: Sequence[str], max_tokens: int) -> Example:
    """Chat prompt + ``- line`` items; the first marker is part of the prompt, as in generation."""
    tok = lm.tokenizer
    marker = tok.encode("-", add_bos=False)
    newline = tok.encode("\n", add_bos=False)
    prompt = [*tok.encode(tok.apply_chat_template(training_prompt(system, request)), add_bos=False), *marker]
    reply: list[int] = []
    for n, line in enumerate(lines):  # token by token as generation feeds them: newline and marker apart
        reply += [*newline, *marker] if n else []
        reply += tok.encode(" " + line, add_bos=False)
    ids = [*prompt, *reply, tok.eos_id][:max_tokens]
    return Example(ids, min(len(prompt), len(ids) - 1))


def brand_voice_request() -> str:
    """The request of brand-voice examples (``resources/prompts/train.txt``)."""
    return copy_prompts.render("train.txt", {})


Item = tuple[str, list[str]]  # (request, lines of the reply)


def items_from_lines(lines: Sequence[str], request: str, per_example: int, seed: int) -> list[Item]:
    """The user's lines shuffled into replies of ``per_example`` lines (one line each for held-out sets)."""
    order = list(lines)
    random.Random(seed).shuffle(order)
    return [(request, order[i:i + per_example]) for i in range(0, len(order), per_example)]


# --- loss, perplexity, training --------------------------------------------------------------------------------


def _batch(examples: Sequence[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), longest), pad_id, dtype=torch.long)
    targets = torch.full((len(examples), longest), -100, dtype=torch.long)
    for r, e in enumerate(examples):
        ids[r, : len(e.ids)] = torch.tensor(e.ids)
        targets[r, e.target_from: len(e.ids)] = torch.tensor(e.ids[e.target_from:])
    return ids, targets


def example_loss(model: Llama, examples: Sequence[Example], pad_id: int, device: torch.device) -> tuple[
        torch.Tensor, int]:
    """(summed next-token NLL over the reply tokens, number of those tokens). Right padding needs no mask:
    causal attention never lets a real token see the padding after it. Examples that all name a shared prefix
    run each distinct prefix once (the same loss, a fraction of the arithmetic)."""
    if examples and all(e.shared for e in examples):
        return shared_prefix_loss(model, examples, pad_id, device)
    ids, targets = _batch(examples, pad_id)
    ids, targets = ids.to(device), targets.to(device)
    logits, _ = model(ids)
    return next_token_nll(logits, targets)


def backward_batch(model: Llama, batch: Sequence[Example], pad_id: int, device: torch.device) -> float:
    """Backpropagate the batch's mean NLL per reply token and return it. Examples that share prompt prefixes go
    back one prefix at a time: memory then holds one prompt's activations (about 1.5 GB for a 500-token prompt of
    the 135M model), not the whole batch's (a batch of 16 slot prompts took 19 GB)."""
    targets = max(1, sum(len(e.ids) - max(1, e.target_from) for e in batch))
    parts = prefix_groups(batch) if all(e.shared for e in batch) else [list(batch)]
    total = 0.0
    for part in parts:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):  # GPU: bf16 products
            loss, _ = example_loss(model, part, pad_id, device)
        (loss / targets).backward()
        total += float(loss.detach())
    return total / targets


@torch.no_grad()
def perplexity(model: Llama, examples: Sequence[Example], pad_id: int, device: torch.device,
               batch: int = 8, cancel: Callable[[], None] | None = None) -> float:
    """exp(mean NLL per reply token) over ``examples``; ``cancel`` is checked between batches (measuring hundreds
    of long prompts takes minutes on a CPU, and a pause should not wait for it)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch):
        if cancel is not None:
            cancel()
        loss, n = example_loss(model, examples[i:i + batch], pad_id, device)
        total += float(loss)
        count += n
    return math.exp(total / max(1, count))


@dataclass
class TrainSettings:
    epochs: int = 8  # at most; training stops early when the validation lines stop improving
    validation: float = 0.15  # share of the training items kept aside to decide when to stop
    batch: int = 4
    lr: float = 3e-4
    max_tokens: int = 256
    max_steps: int = 0  # 0 = no limit
    seed: int = 0
    lora: LoRAConfig = field(default_factory=LoRAConfig)


@dataclass
class TrainResult:
    model: Llama
    perplexity_before: float
    perplexity_after: float
    losses: list[float]
    steps: int
    seconds: float
    train_lines: int
    validation_lines: int
    held_out_lines: int
    validation_perplexity: float | None


def split_validation(train_items: Sequence[Item], settings: TrainSettings) -> tuple[list[Item], list[Item]]:
    """(items trained on, one-line items whose perplexity decides when to stop): the last ``validation`` share."""
    n_val = max(1, round(len(train_items) * settings.validation)) if settings.validation and len(train_items) > 1 \
        else 0
    kept = len(train_items) - n_val
    return list(train_items[:kept]), [(request, [line]) for request, lines in train_items[kept:] for line in lines]


def total_steps(train_examples: int, settings: TrainSettings) -> int:
    """Steps of the whole run if it never stops early: batches per epoch x epochs, capped by ``max_steps``."""
    total = math.ceil(train_examples / settings.batch) * settings.epochs
    return min(total, settings.max_steps) if settings.max_steps else total


StepFn = Callable[[int, int, dict[str, float]], None]  # (step, total steps, {"train": loss} or {"validation": nll})


@dataclass(frozen=True)
class RunFolder:
    """Where a pausable run keeps its checkpoints, and whether to continue from the newest one."""

    checkpoints: Path
    resume: bool = False


def train_lora(
    lm: LanguageModel,
    train_items: Sequence[Item],
    held_items: Sequence[Item],
    settings: TrainSettings,
    system: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], None] | None = None,
    on_step: StepFn | None = None,
    run: RunFolder | None = None,
) -> TrainResult:
    """Train an adapter on ``train_items``; perplexity of ``held_items`` before and after.

    With ``run``, a checkpoint is written at every epoch's end, when ``cancel`` raises JobCancelled (a pause) and
    when the loop ends; ``run.resume`` continues from the newest one exactly where it stopped."""
    if not train_items or not held_items:
        raise BadInputError("LoRA training needs lines to train on and lines held out to measure")
    if run is not None and not run.resume and has_state(run.checkpoints):
        raise BadInputError(f"{run.checkpoints.parent.name} already holds a run: resume it, or pick another name")
    with torch.random.fork_rng(devices=[]):  # dropout draws from a seeded RNG that is put back afterwards
        torch.manual_seed(settings.seed)
        return _train(lm, train_items, held_items, settings,
                      system if system is not None else copy_prompts.render("system.txt", {}),
                      progress or (lambda fraction, message: None), cancel or (lambda: None),
                      on_step or (lambda step, total, losses: None), run)


def _train(lm: LanguageModel, train_items: Sequence[Item], held_items: Sequence[Item], settings: TrainSettings,
           system: str, progress: Callable[[float, str], None], cancel: Callable[[], None], on_step: StepFn,
           run: RunFolder | None) -> TrainResult:
    def examples(items: Sequence[Item]) -> list[Example]:
        return [make_example(lm, system, request, lines, settings.max_tokens) for request, lines in items]

    train_part, val_items = split_validation(train_items, settings)
    recipe = recipe_of([list(train_items), list(held_items), system], settings, lm.sha256)
    result = fit_adapter(lm, examples(train_part), examples(val_items), examples(held_items), settings, recipe,
                         progress, cancel, on_step, run)
    result.train_lines = sum(len(lines) for _, lines in train_items) - len(val_items)
    result.held_out_lines = sum(len(lines) for _, lines in held_items)
    return result


def fit_adapter(lm: LanguageModel, train: Sequence[Example], val: Sequence[Example], held: Sequence[Example],
                settings: TrainSettings, recipe: str, progress: Callable[[float, str], None] | None = None,
                cancel: Callable[[], None] | None = None, on_step: StepFn | None = None,
                run: RunFolder | None = None) -> TrainResult:
    """Epochs over ``train`` until the perplexity of ``val`` stops improving (patience 1); the best adapter is
    kept. ``held`` is only measured, before and after, never used to decide anything. ``recipe`` fingerprints
    the data and settings, so a resume never continues a different run."""
    progress = progress or (lambda fraction, message: None)
    cancel = cancel or (lambda: None)
    on_step = on_step or (lambda step, total, losses: None)
    device = lm.device
    pad = lm.tokenizer.pad_id
    model = with_lora(lm.model, settings.lora, settings.seed)
    params = lora_parameters(model)
    optimiser = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    total = total_steps(len(train), settings)
    order = random.Random(settings.seed)
    started = time.monotonic()

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in adapter_state(model).items()}

    def load_adapter(state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for key, value in model.state_dict(keep_vars=True).items():
                if key in state:
                    value.copy_(state[key].to(value.device, value.dtype))

    saved = load_state(run.checkpoints, recipe) if run is not None and run.resume else None
    if saved is not None:
        loop, checkpoint = saved
        load_adapter(checkpoint.groups["adapter"])
        optimiser.load_state_dict(checkpoint.optimizers["adamw"])
        torch.set_rng_state(checkpoint.groups["rng"]["torch"])
        best = (loop.best_score, dict(checkpoint.groups["best"]))
        set_rng_state(order, loop.epoch_rng)
    else:
        loop = LoopState(before=perplexity(model, held, pad, device, cancel=cancel))
        best = (perplexity(model, val, pad, device, cancel=cancel) if val else math.inf, snapshot())

    def save() -> None:
        if run is not None:
            loop.best_score = best[0]
            save_state(run.checkpoints, loop, adapter_state(model), best[1], optimiser, recipe)

    saved_at = time.monotonic()
    while loop.step < total and not loop.done:
        loop.epoch_rng = rng_state(order)
        batch_order = shuffled_by_prefix(train, order)
        first, loop.batch_index = loop.batch_index, 0
        for index in range(first, math.ceil(len(batch_order) / settings.batch)):
            if loop.step >= total:
                break
            loop.batch_index = index
            try:
                cancel()
            except JobCancelled:
                save()
                raise
            model.train()
            batch = batch_order[index * settings.batch:(index + 1) * settings.batch]
            optimiser.zero_grad(set_to_none=True)
            mean = backward_batch(model, batch, pad, device)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            loop.losses.append(mean)
            loop.step += 1
            if time.monotonic() - saved_at > SAVE_EVERY_S:  # long epochs (hours on a CPU) lose little to a crash
                loop.batch_index = index + 1
                save()
                saved_at = time.monotonic()
            progress(loop.step / total, f"step {loop.step}/{total}, loss {loop.losses[-1]:.3f}")
            on_step(loop.step, total, {"train": loop.losses[-1]})
        loop.batch_index = 0
        if val:
            score = perplexity(model, val, pad, device)
            on_step(loop.step, total, {"validation": math.log(score)})
            if score >= best[0]:
                break  # worse than the epoch before: the adapter starts to memorise
            best = (score, snapshot())
        loop.epoch_rng = rng_state(order)  # a resume from here starts the next epoch
        save()
    loop.done = True
    save()
    if val:
        load_adapter(best[1])
    after = perplexity(model, held, pad, device)
    model.eval()
    return TrainResult(model, loop.before, after, loop.losses, loop.step, time.monotonic() - started,
                       len(train), len(val), len(held), best[0] if val else None)


# --- files ------------------------------------------------------------------------------------------------------


def save_adapter(path: Path, model: nn.Module, config: LoRAConfig, meta: dict[str, Any]) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    sidecar = {"arch": ARCH, "format": 1, "modality": "copy", "family": "lora", "config": asdict(config),
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta}
    state = adapter_state(model)
    return write_with_sidecar(path, state, sidecar, f"the adapter {path.stem}", {"arch": ARCH}, retry="resume")


def read_adapter(path: Path) -> tuple[LoRAConfig, dict[str, Any], dict[str, torch.Tensor]]:
    path = Path(path)
    meta = read_pair(path)
    try:
        if meta.get("arch") != ARCH:
            raise ModelFileError(f"{path.name} is not a LoRA adapter (arch {meta.get('arch')!r})")
        raw = meta["config"]
        config = LoRAConfig(int(raw["rank"]), float(raw["alpha"]), tuple(raw["targets"]), float(raw["dropout"]))
        state = load_file(str(path))
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise ModelFileError(f"{path.name} is not a readable LoRA adapter ({exc})") from None
    return config, meta, state


def adapter_low_rank(path: Path) -> dict[str, tuple[Any, Any]]:
    """The adapter's matrices as float32 numpy ``(A, alpha / rank * B)`` by module path (``layers.3.self_attn.q_proj``),
    for the onnxruntime graph that merges them (:mod:`studio.ml.export.llama_graph`)."""
    config, _, state = read_adapter(path)
    scale = config.alpha / config.rank
    pairs = {}
    for key, a in state.items():
        if key.endswith(".lora_A"):
            module = key.removesuffix(".lora_A")
            b = state.get(f"{module}.lora_B")
            if b is None or b.shape[1] != a.shape[0]:
                raise ModelFileError(f"{Path(path).name} is not a readable LoRA adapter ({module} has no B to match)")
            pairs[module] = (a.float().numpy(), (scale * b.float()).numpy())
    return pairs


def apply_adapter(lm: LanguageModel, path: Path, name: str = "") -> LanguageModel:
    """A :class:`LanguageModel` that runs ``lm``'s model with the adapter in ``path`` merged into a copy of the
    adapted matrices (``lm`` itself is not changed): it runs at the base model's speed, with no extra products per
    layer, and keeps the base model's low-precision copies for decoding and batches, made again from the merged
    weights."""
    config, meta, state = read_adapter(path)
    if meta.get("base_sha256") and lm.sha256 and meta["base_sha256"] != lm.sha256:
        raise ModelFileError(
            f"{Path(path).name} was trained on a different base model ({meta.get('base_model')!r}, sha256 "
            f"{meta['base_sha256'][:12]}…) than {lm.name!r}"
        )
    model = with_lora(lm.model, LoRAConfig(config.rank, config.alpha, config.targets, 0.0))
    model.requires_grad_(False)
    expected = adapter_state(model)
    if set(expected) != set(state) or any(expected[k].shape != state[k].shape for k in state):
        raise ModelFileError(f"{Path(path).name} does not fit {lm.name!r} (its LoRA matrices have other shapes)")
    with torch.no_grad():
        for key, value in model.state_dict(keep_vars=True).items():
            if key in state:
                value.copy_(state[key].to(value.device, value.dtype))
    model = merge_lora(model, lm.model)

    source = {**lm.source, "base_model": lm.name, "base_sha256": lm.sha256}
    return LanguageModel(model, lm.tokenizer, lm.device, lm.dtype, name or meta.get("name", ""),
                         sha256_file(Path(path)), source)
