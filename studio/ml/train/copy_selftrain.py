"""Teach the language model the copywriting job by rejection-sampling fine-tuning (RFT).

Each round, the current model (the base, then base + the adapter of the round before) writes ads for many
practice briefs (:mod:`studio.ml.data.training_briefs`) exactly as the app writes them: planned slots, many
candidates per slot, the hard checks (limits, banned words, dangling endings, talk about the instructions,
non-words, off-brief lines) and the reranker. Of every slot's surviving candidates only the best is kept, and only
when the model itself found it fluent; a LoRA adapter is then trained from the base model on every line kept so
far, each as the answer to the very prompt it was written for. The model so learns to write at once what the
filters would have chosen: fewer candidates die, fewer slots fall back to extractive lines.

Writing is the slow part and runs in ``workers`` processes of one thread each (a CPU core each); training runs on
the device given (a GPU when there is one). Practice briefs are split by product into training and held-out ones:
the held-out lines are only measured (perplexity before and after), never trained on.
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.core.cancel import CancelToken, JobCancelled
from studio.core.copy_brief import Brief, brief_from_dict
from studio.core.copy_formats import field_counts, generation_format
from studio.core.copy_plan import Angle
from studio.core.errors import BadInputError, StudioError
from studio.ml.sampling.text import SamplingParams
from studio.ml.text.copywriter import CopyRequest, slot_prompt_ids, write_ads
from studio.ml.text.rerank import Scored
from studio.ml.train.lora import (
    Example,
    LoRAConfig,
    RunFolder,
    StepFn,
    TrainResult,
    TrainSettings,
    apply_adapter,
    fit_adapter,
    save_adapter,
)
from studio.ml.train.lora_state import has_state, recipe_of

EventCallback = Callable[[dict[str, Any]], None]
#: Formats practised, and how many ads of each per brief (an RSA has the most slots).
FORMATS = ("google-rsa", "meta", "email")
FRAMEWORKS = ("none", "none", "none", "aida", "pas", "bab", "fab", "4p")
#: Mean log-probability per token below which even a slot's best survivor is not kept: read side by side, lines
#: under it were mostly odd ("Families thinking of a pet can take your show off a creative shelf", -2.7), lines
#: over it mostly sound ("Cinnamon Buns on Saturdays", -0.7; "Sourdough Baked Every Morning", -1.1).
MIN_FLUENCY = -2.2
HELD_OUT_SHARE = 0.1  # of the practice products: their lines are only measured


@dataclass(frozen=True)
class PracticeAd:
    """One ad to write: its brief (as the brief file's dict), format, framework and seed."""

    brief: dict[str, Any]
    format: str
    framework: str
    seed: int


@dataclass(frozen=True)
class KeptLine:
    """A line that passed every check and ranked best for its slot, with what asked for it."""

    brief: dict[str, Any]
    format: str
    framework: str
    field: str
    kind: str  # the slot's angle
    angle: str
    text: str
    score: float
    fluency: float
    round: int


def practice_ads(briefs: Sequence[Brief], seed: int = 0) -> list[PracticeAd]:
    """One ad per brief, formats and frameworks taken in turn (shuffled, so any prefix of the list is a mix)."""
    rng = random.Random(seed)
    ads = [PracticeAd(brief.to_dict(), FORMATS[n % len(FORMATS)], rng.choice(FRAMEWORKS), seed * 100003 + n)
           for n, brief in enumerate(briefs)]
    rng.shuffle(ads)
    return ads


def split_by_product(ads: Sequence[PracticeAd], share: float = HELD_OUT_SHARE, seed: int = 0
                     ) -> tuple[list[PracticeAd], list[PracticeAd]]:
    """(training ads, held-out ads): whole products are held out, so no held-out product is ever trained on."""
    products = sorted({ad.brief["product"] for ad in ads})
    random.Random(seed).shuffle(products)
    held = set(products[:max(1, round(len(products) * share))])
    return [a for a in ads if a.brief["product"] not in held], [a for a in ads if a.brief["product"] in held]


def keep_best(lm: Any, ad: PracticeAd, candidates: int, round_: int = 0) -> list[KeptLine]:
    """Write ``ad`` as the app would (``candidates`` lines per slot) and keep each slot's best survivor."""
    brief = brief_from_dict(ad.brief)
    fmt = generation_format(ad.format)
    kept: list[KeptLine] = []

    def on_pool(variant: int, name: str, angle: Angle, pool: list[Scored]) -> None:
        bare_name = pool and angle.kind != "product" and pool[0].text.casefold() == brief.product.casefold()
        if pool and pool[0].fluency >= MIN_FLUENCY and not bare_name:  # the bare name teaches nothing new
            best = pool[0]
            kept.append(KeptLine(ad.brief, ad.format, ad.framework, name, angle.kind, angle.text, best.text,
                                 best.score, best.fluency, round_))

    request = CopyRequest(brief, fmt, ad.framework, field_counts(fmt), seed=ad.seed, candidates=candidates,
                          sampling=SamplingParams(temperature=0.8, top_p=0.95))
    write_ads(lm, request, on_pool=on_pool)
    return kept


def example_of(lm: Any, line: KeptLine, max_tokens: int = 1024) -> Example:
    """The slot's prompt exactly as generation feeds it, answered by the kept line and the end of the turn."""
    brief = brief_from_dict(line.brief)
    prefix, tail = slot_prompt_ids(lm, brief, generation_format(line.format), line.field,
                                   Angle(line.kind, line.angle), line.framework)
    prompt = [*prefix, *tail]
    ids = [*prompt, *lm.tokenizer.encode(line.text, add_bos=False), lm.tokenizer.eos_id]
    if len(ids) > max_tokens:
        raise StudioError(f"a practice prompt of {len(ids)} tokens is longer than {max_tokens}")
    return Example(ids, len(prompt), shared=len(prefix))


# --- writing in worker processes ------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _start_worker(base: str, adapter: str | None) -> None:
    """Each worker process: one torch thread, the language model loaded once on the CPU. Ctrl+C reaches the
    whole process group: the main process decides (it lets the ads being written finish), not the workers."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    from studio.core.settings import load_settings
    from studio.ml.resources import Resources
    from studio.ml.tasks.copy import load_copy_model

    settings = load_settings()
    settings.device = "cpu"
    lm = load_copy_model(Resources.from_settings(settings), base, runtime="torch")
    _WORKER["lm"] = apply_adapter(lm, Path(adapter)) if adapter else lm


def _write_one(ad: PracticeAd, candidates: int, round_: int, deadline: float) -> tuple[list[KeptLine], float]:
    """(kept lines, seconds the ad took; 0 when the deadline had passed and it was not written)."""
    if time.time() > deadline:
        return [], 0.0
    started = time.perf_counter()
    try:
        kept = keep_best(_WORKER["lm"], ad, candidates, round_)
    except StudioError:  # a practice brief no ad can satisfy (every word banned, say): skip it
        kept = []
    return kept, time.perf_counter() - started


def collect(base: str, adapter: Path | None, ads: Sequence[PracticeAd], workers: int, candidates: int,
            round_: int, deadline: float, on_event: EventCallback, journal: Path | None = None,
            cancel: CancelToken | None = None) -> list[KeptLine]:
    """Every kept line of ``ads``, written by ``workers`` processes until ``deadline`` (time.time()) or until
    ``cancel`` is set (then ads not begun are dropped and :class:`JobCancelled` is raised once each ad being
    written has been kept).

    With a ``journal``, each written ad is appended to it as soon as it is done, and ads already in it are not
    written again: writing can stop at any moment (Ctrl+C, a deadline, a machine given back) and resume later,
    here or on another machine, and the lines of every session are trained on together."""
    if journal is not None:
        drop_cut_line(journal)
    done = read_journal(journal) if journal is not None else {}
    kept = [line for ad in ads if ad_key(ad) in done for line in done[ad_key(ad)]]
    todo = [ad for ad in ads if ad_key(ad) not in done]
    if done:
        on_event({"event": "info", "message": f"round {round_}: {len(ads) - len(todo)} ads already written "
                                              f"({len(kept)} lines kept), {len(todo)} to write"})
    if not todo:
        return kept
    context = multiprocessing.get_context("spawn")
    seconds: list[float] = []
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=context,
                                                initializer=_start_worker,
                                                initargs=(base, str(adapter) if adapter else None)) as pool:
        futures = {pool.submit(_write_one, ad, candidates, round_, deadline): ad for ad in todo}
        for future in concurrent.futures.as_completed(futures):
            if cancel is not None and cancel.cancelled:
                for waiting in futures:
                    waiting.cancel()
            if future.cancelled():
                continue
            lines, took = future.result()
            kept += lines
            if took:
                if journal is not None:
                    append_journal(journal, futures[future], lines, took)
                seconds.append(took)
                if len(seconds) in (1, workers) or len(seconds) % 25 == 0:  # the first tells if a worker is slow
                    on_event({"event": "info", "message": f"round {round_}: {len(seconds)} ads written "
                              f"({sum(seconds) / len(seconds):.1f} s an ad in a worker), {len(kept)} lines kept"})
    if cancel is not None and cancel.cancelled:
        where = f"; run the same command again to go on from {journal}" if journal else ""
        raise JobCancelled(f"stopped: {len(seconds)} ads written{where}")
    return kept


def append_journal(journal: Path, ad: PracticeAd, kept: Sequence[KeptLine], seconds: float) -> None:
    """One written ad as one JSON line, flushed to disk before the next ad is counted."""
    import json

    record = {"ad": ad_key(ad), "product": ad.brief["product"], "format": ad.format, "seconds": round(seconds, 2),
              "kept": [asdict(k) for k in kept]}
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def drop_cut_line(journal: Path) -> None:
    """Remove a last line cut short by a crash, so the next ad appended starts a line of its own."""
    data = journal.read_bytes() if journal.exists() else b""
    if data and not data.endswith(b"\n"):
        with open(journal, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def ad_key(ad: PracticeAd) -> str:
    """What names a practice ad in a journal: its whole brief, format, framework and seed."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(asdict(ad), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def read_journal(journal: Path) -> dict[str, list[KeptLine]]:
    """The written ads of a journal by :func:`ad_key`, with their kept lines. A last line cut short by a crash is
    skipped (its ad is written again); any other unreadable line is a damaged journal and says so."""
    import json

    if not journal.exists():
        return {}
    lines = journal.read_text(encoding="utf-8").splitlines()
    found: dict[str, list[KeptLine]] = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            found[str(record["ad"])] = [KeptLine(**k) for k in record["kept"]]
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines):
                break
            raise BadInputError(f"{journal} line {number} is not a written ad ({exc}); move the file aside to "
                                f"start afresh") from None
    return found


# --- the rounds -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfTrainConfig:
    rounds: int = 2
    ads_per_round: int = 400
    candidates: int = 6
    workers: int = 1
    minutes: float = 0.0  # 0: no time limit; else writing stops in time to train within it
    train_share: float = 0.5  # of the remaining time, kept for training each round
    seed: int = 0
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    epochs: int = 3
    batch: int = 16
    lr: float = 3e-4
    max_steps: int = 0  # 0: the epochs decide; else training stops after this many batches
    validation_lines: int = 200  # at most, kept aside from the training lines to decide when to stop
    held_out_lines: int = 300  # at most, of the held-out products' lines, measured before and after
    journal: Path | None = None  # the first round's written ads: resumed from, appended to (see collect)


@dataclass
class SelfTrainOutcome:
    result: TrainResult
    kept: list[KeptLine]
    rounds: list[dict[str, Any]]


def self_train(lm: Any, base: str, train_ads: Sequence[PracticeAd], held_ads: Sequence[PracticeAd],
               config: SelfTrainConfig, workdir: Path, on_event: EventCallback,
               cancel: CancelToken | None = None) -> SelfTrainOutcome:
    """``config.rounds`` rounds of write, keep the best, train (``lm``: the base model on the training device).
    Each round's adapter and lines are left in ``workdir`` (``round-N.safetensors``, ``round-N-lines.jsonl``)."""
    if not train_ads or not held_ads:
        raise BadInputError("self-training needs practice briefs to train on and others held out")
    began = time.time()
    stop_at = began + config.minutes * 60 if config.minutes else math.inf
    kept: list[KeptLine] = []
    held: list[KeptLine] = []
    rounds: list[dict[str, Any]] = []
    adapter: Path | None = None
    result: TrainResult | None = None
    for round_ in range(config.rounds):
        ads = round_ads(train_ads, held_ads, config, round_)
        left = stop_at - time.time()
        deadline = time.time() + (left * (1 - config.train_share) / (config.rounds - round_)
                                  if math.isfinite(left) else 1e9)
        started = time.time()
        found = collect(base, adapter, ads, config.workers, config.candidates, round_, deadline, on_event,
                        config.journal if round_ == 0 else None, cancel)
        held_products = {ad.brief["product"] for ad in held_ads}
        passing = still_passing(found)
        if len(passing) < len(found):
            on_event({"event": "info", "message": f"round {round_}: {len(found) - len(passing)} kept lines fail "
                                                  f"checks added since they were written: left out"})
        new_held = [k for k in passing if k.brief["product"] in held_products]
        new_train = [k for k in passing if k.brief["product"] not in held_products]
        kept += new_train
        held += new_held
        save_kept(workdir / f"round-{round_}-lines.jsonl", found)
        written = len({(repr(k.brief), k.format) for k in found})
        summary = {"round": round_, "ads": len(ads), "ads_written": written, "lines_kept": len(found),
                   "lines_per_ad": round(len(found) / max(1, written), 2), "write_s": round(time.time() - started),
                   "generator": "base" if adapter is None else f"base + round {round_ - 1} adapter"}
        on_event({"event": "info", "message": f"round {round_}: {summary}"})
        if not kept or not held:
            raise StudioError(f"round {round_} kept no lines to train on or to measure")
        checkpoints = workdir / f"round-{round_}-checkpoints"  # a stopped run goes on from here when run again
        try:
            result = train_on(lm, kept, held, config, RunFolder(checkpoints, resume=has_state(checkpoints)), cancel,
                              lambda step, total, losses: on_event({"step": step, "total": total, "loss": losses}))
        except JobCancelled:
            raise JobCancelled(f"round {round_}: training paused, checkpoint in {checkpoints}; run the same "
                               "command again to go on") from None
        summary.update({"train_lines": len(kept), "held_out_lines": len(held),
                        "held_out_perplexity_before": round(result.perplexity_before, 3),
                        "held_out_perplexity_after": round(result.perplexity_after, 3),
                        "train_s": round(result.seconds)})
        rounds.append(summary)
        on_event({"event": "info", "message": f"round {round_} trained: {summary}"})
        adapter = workdir / f"round-{round_}.safetensors"  # the next round's writer; training starts afresh
        save_adapter(adapter, result.model, config.lora, {"name": adapter.stem, "base_model": base,
                                                          "base_sha256": lm.sha256})
    assert result is not None
    return SelfTrainOutcome(result, kept, rounds)


def round_ads(train_ads: Sequence[PracticeAd], held_ads: Sequence[PracticeAd], config: SelfTrainConfig,
              round_: int) -> list[PracticeAd]:
    """The ads a round writes: its share of the training ads and of the held-out ones, mixed (so a deadline cuts
    both alike); the same list wherever and whenever it is asked for, so a journal resumes it."""
    per_round = config.ads_per_round
    held_per_round = max(1, len(held_ads) // config.rounds)
    ads = list(train_ads[round_ * per_round:(round_ + 1) * per_round])
    ads += held_ads[round_ * held_per_round:(round_ + 1) * held_per_round]
    random.Random(config.seed + round_).shuffle(ads)
    return ads


def still_passing(kept: Sequence[KeptLine]) -> list[KeptLine]:
    """The lines that pass today's checks: a journal outlives the checks its lines were written under, and a rule
    added since (a framework's name as instruction talk, say) must keep its failures out of the training data."""
    from studio.core.copy_checks import check_line

    return [k for k in kept
            if not check_line(k.text, k.field, brief_from_dict(k.brief), generation_format(k.format)).hard]


def train_on(lm: Any, kept: Sequence[KeptLine], held: Sequence[KeptLine], config: SelfTrainConfig,
             run: RunFolder | None = None, cancel: CancelToken | None = None,
             on_step: StepFn | None = None) -> TrainResult:
    """A fresh adapter on ``kept`` (a tenth, at most ``config.validation_lines``, kept aside to decide when to
    stop), measured on at most ``config.held_out_lines`` of ``held``. With ``run``, it pauses and resumes."""
    order = by_prompt(kept, config.seed)
    n_val = max(1, min(len(order) // 10, config.validation_lines))
    measured = by_prompt(held, config.seed)
    settings = TrainSettings(epochs=config.epochs, batch=config.batch, lr=config.lr, seed=config.seed,
                             max_tokens=1024, max_steps=config.max_steps, lora=config.lora)
    torch.backends.cuda.matmul.allow_tf32 = True  # on a GPU: TF32 matrix products, ample for a LoRA's updates
    examples = [example_of(lm, k) for k in order]
    recipe = recipe_of([k.text for k in order], settings, lm.sha256)
    return fit_adapter(lm, examples[n_val:], examples[:n_val],
                       [example_of(lm, k) for k in measured[:config.held_out_lines]], settings, recipe,
                       cancel=cancel.check if cancel is not None else None, on_step=on_step, run=run)


def by_prompt(lines: Sequence[KeptLine], seed: int) -> list[KeptLine]:
    """``lines`` shuffled with the lines of one field of one ad side by side: a cut of the list then keeps whole
    prompts, which training runs once for all their lines (see shared_prefix)."""
    groups: dict[tuple[str, str, str, str], list[KeptLine]] = {}
    for line in lines:
        groups.setdefault((repr(line.brief), line.format, line.framework, line.field), []).append(line)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    return [line for group in order for line in group]


def device_threads() -> int:
    """CPU cores this process may use (the workers' count when none is given)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- the whole run: practice briefs in, the adapter and its record out ------------------------------------------


@dataclass(frozen=True)
class PracticeSources:
    briefs: Path | None = None  # a folder of brief files to vary (the development split)
    variations: int = 600  # variations of those briefs
    debian: Path | None = None  # the corpus of `studio data copy`
    debian_briefs: int = 600


def practice_briefs(sources: PracticeSources, seed: int = 0) -> tuple[list[Brief], dict[str, Any]]:
    """The practice briefs, mixed, and a description of them for the adapter's record."""
    from studio.core.copy_brief import load_brief
    from studio.ml.data.copy_text import read_debian_corpus
    from studio.ml.data.training_briefs import debian_briefs, varied_briefs

    found: list[Brief] = []
    recipe: dict[str, Any] = {}
    if sources.briefs is not None:
        files = sorted(Path(sources.briefs).glob("*.json"))
        if not files:
            raise BadInputError(f"{sources.briefs} holds no brief (.json) files")
        varied = varied_briefs([load_brief(f) for f in files], sources.variations, seed)
        found += varied
        recipe["variations"] = {"of": str(sources.briefs), "briefs": len(files), "made": len(varied)}
    if sources.debian is not None:
        packages = debian_briefs(read_debian_corpus(sources.debian), sources.debian_briefs, seed)
        found += packages
        recipe["debian"] = {"corpus": Path(sources.debian).name, "made": len(packages)}
    if not found:
        raise BadInputError("give practice briefs: --briefs FOLDER (varied) and/or --debian CORPUS")
    random.Random(seed).shuffle(found)
    return found, recipe


def save_kept(path: Path, kept: Sequence[KeptLine]) -> None:
    """The kept lines as JSON lines: the data the adapter was trained on, for its card and for inspection."""
    import json

    from studio.core.safe_write import write_atomic

    write_atomic(path, "".join(json.dumps(asdict(k), ensure_ascii=False) + "\n" for k in kept),
                 f"the kept lines {path.name}")
