"""Held-out perplexity of a language model (torch or onnxruntime), and the quality cost of a quantised export.

The text: a fixed slice of the Debian package-description corpus (``studio data copy`` writes it as JSON lines of
``package``, ``synopsis``, ``blurb``) when one is found under the data folder, chosen by a hash of the package
name so the slice does not depend on the file's order; otherwise :data:`BUILT_IN_TEXT`, short product descriptions
written for this purpose (not taken from anywhere, so no model saw them in training). Each passage is scored on
its own: perplexity = exp(mean negative log-likelihood of every token after the first).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from studio.core import paths
from studio.core.errors import BadInputError
from studio.ml.data.copy_text import read_debian_corpus
from studio.ml.export.greedy import greedy_agreement
from studio.ml.runtime.exports import ExportRecord
from studio.ml.runtime.ort_lm import PERPLEXITY_TOLERANCE, load_ort_language_model
from studio.ml.text.bench import MESSAGES

PASSAGES = 48
MAX_TOKENS = 192
GREEDY_STEPS = 32

BUILT_IN_TEXT = (
    "Trail running shoes with a waterproof membrane and a lugged outsole that grips on wet rock. The upper is "
    "made from recycled mesh and the whole shoe weighs 240 grams.",
    "A stainless steel water bottle that keeps drinks cold for a day and hot for twelve hours. The lid is leak "
    "proof and the powder coat does not slip in a wet hand.",
    "Fresh coffee beans roasted every Monday and posted the same day. Choose a light, medium or dark roast and "
    "pause or cancel the subscription whenever you like.",
    "A compact desk lamp with three colour temperatures and a dimmer. It folds flat for travel and charges over "
    "USB-C in about two hours.",
    "Noise-cancelling headphones with thirty hours of battery life, soft memory-foam ear cushions and a case "
    "that fits in a jacket pocket.",
    "An online course that teaches the basics of bookkeeping for small shops in six short lessons, with "
    "worksheets and a certificate at the end.",
    "A family tent for four people that goes up in five minutes. The poles are colour coded and the floor is "
    "sealed against ground water.",
    "Organic cotton bed sheets in five calm colours. They are washed before packing, so they are soft from the "
    "first night and do not shrink.",
    "A budgeting app that sorts your spending into categories automatically and warns you before a bill is due. "
    "Your data stays on your phone.",
    "A cast iron pan that comes seasoned and ready to cook. It works on gas, electric and induction hobs and "
    "goes straight into the oven.",
    "Language lessons with a native speaker over video, booked by the half hour. Start with a free trial lesson "
    "and pick a teacher whose times suit you.",
    "A cordless drill with two batteries, a charger and a set of bits in a sturdy case. The light on the front "
    "shows you where you are drilling.",
    "Handmade soap with olive oil and lavender, cut by hand and cured for six weeks. Every bar is wrapped in "
    "recycled paper.",
    "A smart thermostat that learns when you are home and lowers the heating when you leave. Most homes save "
    "about a tenth on their energy bill.",
    "A children's bicycle with a light aluminium frame, easy brakes for small hands and stabilisers that come "
    "off without tools.",
    "A weekly box of seasonal vegetables from farms within fifty miles, delivered to your door in a box you can "
    "send back.",
)


def find_corpus() -> Path | None:
    """A package-description corpus (JSON lines with ``blurb``) under the data folder, if one was built."""
    for path in sorted(paths.data_dir().rglob("*.jsonl")):
        try:
            with open(path, encoding="utf-8") as fh:
                first = json.loads(fh.readline() or "{}")
        except (OSError, ValueError):
            continue
        if isinstance(first, dict) and {"package", "synopsis", "blurb"} <= first.keys():
            return path
    return None


def corpus_passages(path: Path, count: int = PASSAGES) -> list[str]:
    """``count`` passages (synopsis + blurb): those whose package names hash lowest, a fixed slice."""
    records = [(hashlib.sha256(r.package.encode("utf-8")).hexdigest(), f"{r.synopsis}. {r.blurb}")
               for r in read_debian_corpus(path)]
    if not records:
        raise BadInputError(f"{path} holds no package descriptions")
    return [text for _, text in sorted(records)[:count]]


def held_out_text(corpus: Path | None = None, count: int = PASSAGES) -> tuple[list[str], str]:
    """(passages, where they come from): the given or found corpus's slice, else the built-in text."""
    corpus = corpus or find_corpus()
    if corpus is not None:
        return corpus_passages(corpus, count), f"{corpus.name}: {count} passages chosen by package-name hash"
    return list(BUILT_IN_TEXT), f"built-in held-out text ({len(BUILT_IN_TEXT)} product descriptions)"


def sequence_logits(lm: Any, ids: Sequence[int]) -> torch.Tensor:
    """(T, V) float32 logits at every position, through whichever runtime ``lm`` uses."""
    if hasattr(lm, "sequence_logits"):
        return lm.sequence_logits(ids)
    with torch.inference_mode():
        logits, _ = lm.model(torch.tensor([list(ids)], device=lm.device))
    return logits[0].float().cpu()


def perplexity(lm: Any, passages: Sequence[str], max_tokens: int = MAX_TOKENS) -> tuple[float, int]:
    """(perplexity, tokens scored) of ``passages``, each cut to ``max_tokens`` tokens."""
    total, count = 0.0, 0
    for text in passages:
        ids = lm.tokenizer.encode(text)[:max_tokens]
        if len(ids) < 2:
            continue
        logits = sequence_logits(lm, ids)
        total += float(F.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="sum"))
        count += len(ids) - 1
    if not count:
        raise BadInputError("the held-out text has no passage of two tokens or more")
    return math.exp(total / count), count


class LanguageModelSteps:
    """Feeds token ids to a language model (torch or onnxruntime) one sequence at a time, keeping its cache; each
    call returns the next-token logits (V,) (how :func:`studio.ml.export.greedy.greedy_agreement` drives it)."""

    def __init__(self, lm: Any, config: Any = None) -> None:
        self.lm = lm
        self.cache: Any = None

    def __call__(self, ids: Sequence[int]) -> torch.Tensor:
        if self.cache is None:
            logits, self.cache = self.lm.prefill(list(ids), GREEDY_STEPS + 1)
        elif len(ids) == 1:
            logits, self.cache = self.lm.decode_step(list(ids), self.cache)
        else:
            logits, self.cache = self.lm.prefill(list(ids), GREEDY_STEPS + 1, cache=self.cache)
        return logits[0].float()


def export_quality(reference: ExportRecord | Any, quantised: ExportRecord | Any, gguf: Path,
                   corpus: Path | None = None) -> dict[str, Any]:
    """What a quantised language model costs against its float32 ``reference``: held-out perplexity and how many
    greedy tokens after a chat prompt agree. Either is an export record (run on onnxruntime on the CPU) or a
    language model already loaded (torch float32; the fused int4 graph)."""
    if isinstance(reference, ExportRecord):
        reference = load_ort_language_model(reference, gguf, "cpu")
    if isinstance(quantised, ExportRecord):
        quantised = load_ort_language_model(quantised, gguf, "cpu")
    passages, source = held_out_text(corpus)
    ppl_ref, tokens = perplexity(reference, passages)
    ppl, _ = perplexity(quantised, passages)
    reference.prompt_cache.clear()
    quantised.prompt_cache.clear()
    prompt = reference.tokenizer.encode_chat(MESSAGES)
    agree = greedy_agreement(LanguageModelSteps, reference, quantised, None, prompt, GREEDY_STEPS, tie=0.0)
    ratio = ppl / ppl_ref
    return {
        "text": source,
        "tokens": tokens,
        "perplexity_fp32": round(ppl_ref, 4),
        "perplexity": round(ppl, 4),
        "perplexity_ratio": round(ratio, 4),
        "within_target": ratio <= 1 + PERPLEXITY_TOLERANCE,
        "greedy_agreement": f"{agree}/{GREEDY_STEPS}",
    }
