"""The reranker on a fake language model whose probabilities are known: PMI sinks the generic line, relevance
lifts the on-brief one, MMR keeps picks apart, and the filters drop broken candidates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import torch

from studio.core.ad_formats import FORMATS
from studio.core.copy_brief import brief_from_dict
from studio.core.copy_checks import BriefVocabulary, check_line
from studio.core.copy_plan import Angle
from studio.ml.text.rerank import Scored, add_pmi, mmr_pick, relevance

VOCAB = ["<pad>", "GENERIC", "BRIEF", "enjoy", "your", "day", "brewly", "fresh", "beans", "end"]
ID = {w: i for i, w in enumerate(VOCAB)}


@dataclass
class FakeTokenizer:
    pad_id: int = 0


class BigramLM:
    """P(next | previous token): after the generic prompt ("GENERIC") the brief's words are rare; everything
    else is a fixed table. Implements the two calls scoring needs (prefill with copies, extend_logits)."""

    tokenizer = FakeTokenizer()

    def __init__(self) -> None:
        table = torch.full((len(VOCAB), len(VOCAB)), -20.0)
        for prev in range(len(VOCAB)):
            table[prev] = torch.log(torch.full((len(VOCAB),), 1e-6))
        table[ID["GENERIC"], ID["enjoy"]] = math.log(0.5)
        table[ID["GENERIC"], ID["brewly"]] = math.log(0.001)
        table[ID["enjoy"], ID["your"]] = math.log(0.9)
        table[ID["your"], ID["day"]] = math.log(0.9)
        table[ID["day"], ID["end"]] = math.log(0.9)
        table[ID["brewly"], ID["fresh"]] = math.log(0.5)
        table[ID["fresh"], ID["beans"]] = math.log(0.5)
        table[ID["beans"], ID["end"]] = math.log(0.9)
        self.table = torch.log_softmax(table, dim=-1)

    def prefill(self, ids, max_new_tokens=0, copies=1):
        return self.table[ids[-1]].expand(copies, -1).clone(), None

    def extend_logits(self, rows, cache):
        return self.table[torch.tensor(rows)]


def tokens(text: str) -> list[int]:
    return [ID[w] for w in text.split()] + [ID["end"]]


def test_pmi_sinks_the_line_any_product_could_carry() -> None:
    # given the brief both lines are about as likely (fluency), but "enjoy your day" is as likely without it
    generic = Scored("Enjoy your day", tokens("enjoy your day"), fluency=-1.0, relevance=0.0)
    grounded = Scored("Brewly fresh beans", tokens("brewly fresh beans"), fluency=-1.1, relevance=0.0)
    lm = BigramLM()
    add_pmi(lm, [ID["GENERIC"]], [[generic, grounded]], per_pool=2)
    path = [ID["GENERIC"], *tokens("enjoy your day")]
    expected_generic = -1.0 - sum(float(lm.table[a, b]) for a, b in pairwise(path)) / 4
    assert abs(generic.pmi - expected_generic) < 1e-4
    assert grounded.pmi > generic.pmi + 1.0
    assert [c.text for c in sorted([generic, grounded], key=lambda c: c.score, reverse=True)] == \
        ["Brewly fresh beans", "Enjoy your day"]


def test_unmeasured_candidates_get_the_lowest_pmi() -> None:
    pool = [Scored("Brewly fresh beans", tokens("brewly fresh beans"), -1.0, 1.0),
            Scored("Enjoy your day", tokens("enjoy your day"), -3.0, 0.0)]
    add_pmi(BigramLM(), [ID["GENERIC"]], [pool], per_pool=1)
    assert pool[1].pmi == pool[0].pmi


def test_relevance_counts_brief_words_and_the_angle() -> None:
    brief = brief_from_dict({"product": "Brewly", "features": ["freshly roasted beans"], "audience": "home baristas"})
    vocabulary = BriefVocabulary.of(brief)
    angle = Angle("feature", "freshly roasted beans")
    assert relevance("Enjoy Your Day Off", vocabulary, angle) == 0
    assert relevance("Brewly for Home Baristas", vocabulary, angle) < relevance("Roasted Beans by Brewly",
                                                                                vocabulary, angle)


def test_mmr_keeps_picks_apart_and_never_repeats() -> None:
    best = Scored("Fresh Beans Every Week", [], -1.0, 1.0)
    echo = Scored("Fresh Beans, Every Week!", [], -1.0, 1.0)
    near = Scored("Fresh Beans Every Single Week", [], -1.1, 1.0)
    other = Scored("Roasted by Small Farms", [], -1.5, 0.8)
    picks = mmr_pick([[best], [echo, near, other]])
    assert picks[0] is best and picks[1] is other  # the echo repeats, the near copy overlaps too much
    assert mmr_pick([[best]], blocked=["fresh beans every week"]) == [None]


def test_filters_drop_every_broken_candidate() -> None:
    brief = brief_from_dict({"product": "Lumen Trail", "features": ["USB-C charging"], "banned": ["best"]})
    fmt = FORMATS["google-rsa"]
    broken = {"Lumen Trail: the Bestseller": "banned word", "Charge Your Lumen Trail in": "dangling ending",
              "Headline: Lumen Trail": "talks about the instructions", "Lumen Trail vswitch": "non-word",
              "Lumen Trail Charges Over USB-C in Minutes": "over the limit"}
    for line, rule in broken.items():
        assert rule in check_line(line, "headline", brief, fmt).hard, line
    assert check_line("Charge Lumen Trail by USB-C", "headline", brief, fmt).hard == []
