"""Choosing lines among candidates: hard filters, a score of on-brief relevance + fluency + pointwise mutual
information, and maximal marginal relevance (MMR) for diversity.

* **Filters** (:func:`studio.core.copy_checks.check_line`): a candidate over its limit, with a banned word, a
  dangling ending, talk about the instructions or a non-word is dropped, whatever its score.
* **Score** = ``RELEVANCE`` x relevance + ``FLUENCY`` x mean log P(line | brief) + ``PMI`` x (mean log P(line |
  brief) - mean log P(line | no brief), clipped to +-PMI_CLIP). Relevance counts the brief's content words the
  line uses (up to three)
  and adds a bonus when it uses the words of its own angle. The PMI term is low for lines any product could
  carry ("Enjoy Your Day Off"), which the model finds likely with or without the brief.
* **MMR**: slots are filled in order; each takes the candidate with the highest score minus ``DIVERSITY`` x its
  greatest word overlap with the lines already chosen, and never a line equal to one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.copy_brief import words
from studio.core.copy_checks import BriefVocabulary, normalised
from studio.core.copy_plan import Angle
from studio.core.word_forms import STOPWORDS, stem
from studio.ml.text.scoring import continuation_logprobs, mean_logprob

RELEVANCE = 2.0
FLUENCY = 0.6
PMI = 0.8
ANGLE_BONUS = 0.5
PMI_CLIP = 2.0  # a rare brief word (the product's name) makes PMI huge; past this it says nothing more
DIVERSITY = 2.0
NEAR_DUPLICATE = 0.75  # word overlap (Jaccard) above which two lines say the same thing


@dataclass
class Scored:
    text: str
    tokens: list[int]
    fluency: float
    relevance: float
    pmi: float = 0.0

    @property
    def score(self) -> float:
        return RELEVANCE * self.relevance + FLUENCY * self.fluency + PMI * min(max(self.pmi, -PMI_CLIP), PMI_CLIP)


def add_pmi(lm: Any, generic_prompt: Sequence[int], pools: Sequence[list[Scored]], per_pool: int) -> None:
    """Set each candidate's PMI: its fluency (given the brief) minus its mean log-probability after
    ``generic_prompt`` (the same request without the brief). Only the ``per_pool`` best of each pool by the other
    terms are measured (one batched pass); the rest get the lowest PMI measured, so they never win on it."""
    chosen = [c for pool in pools for c in sorted(pool, key=lambda c: c.score, reverse=True)[:per_pool]]
    if not chosen:
        return
    generic = continuation_logprobs(lm, generic_prompt, [c.tokens for c in chosen])
    for cand, values in zip(chosen, generic, strict=True):
        cand.pmi = cand.fluency - mean_logprob(values)
    floor = min(c.pmi for c in chosen)
    for pool in pools:
        for cand in pool:
            if cand not in chosen:
                cand.pmi = floor


def content_stems(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words(text) if w not in STOPWORDS)


def relevance(line: str, vocabulary: BriefVocabulary, angle: Angle) -> float:
    """Brief content words used (close variants count), up to three, scaled to 0..1; + ANGLE_BONUS when the line
    uses a word of its own angle."""
    hits = {stem(w) for w in vocabulary.shares(line)}
    score = min(len(hits), 3) / 3
    focus = content_stems(angle.text)
    if focus and hits & focus:
        score += ANGLE_BONUS
    return score


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def mmr_pick(pools: Sequence[Sequence[Scored]], taken: Sequence[str] = (), blocked: Sequence[str] = (),
             diversity: float = DIVERSITY) -> list[Scored | None]:
    """One candidate per slot (None where no candidate is left), in slot order, each the best by score minus
    ``diversity`` x its largest overlap with the lines chosen so far (``taken`` counts as chosen); a line equal
    to one in ``blocked`` (other fields' lines) is never picked."""
    chosen_keys = {normalised(t) for t in (*taken, *blocked)}
    chosen_sets = [content_stems(t) for t in taken]
    picks: list[Scored | None] = []
    for pool in pools:
        best, best_value = None, float("-inf")
        for cand in pool:
            key = normalised(cand.text)
            if key in chosen_keys:
                continue
            stems = content_stems(cand.text)
            similarity = max((overlap(stems, s) for s in chosen_sets), default=0.0)
            if similarity >= NEAR_DUPLICATE:
                continue
            value = cand.score - diversity * similarity
            if value > best_value:
                best, best_value = cand, value
        picks.append(best)
        if best is not None:
            chosen_keys.add(normalised(best.text))
            chosen_sets.append(content_stems(best.text))
    return picks
