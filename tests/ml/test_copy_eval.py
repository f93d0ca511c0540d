"""The copy evaluation's specificity: how much a line's own brief, not ad language in general, explains it."""

from __future__ import annotations

import math

import pytest

from studio.core.copy_brief import brief_from_dict
from studio.ml.text import copy_eval

BARBER = brief_from_dict({"product": "Fade & Co", "features": ["hot towel shaves"], "audience": "busy dads"})
BAKERY = brief_from_dict({"product": "Crumb", "features": ["sourdough every morning"], "audience": "neighbours"})
CRM = brief_from_dict({"product": "Pipewise", "features": ["lead reminders"], "audience": "sales teams"})
AD = {"headline": ["Hot Towel Shaves at Fade & Co", "Book Your Visit Today"], "path": ["shaves"]}


def fake_fluency(model, brief, lines):
    """A judge for which the barber's brief makes the first line likely and no brief the generic second line."""
    return [(-1.0 if brief is BARBER else -3.0) if "Fade" in line else -2.0 for line in lines]


def test_a_line_its_own_brief_explains_is_specific_and_a_generic_one_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_eval, "fluency", fake_fluency)
    tally, rows = copy_eval.evaluate_ad(object(), BARBER, "google-rsa", AD, 1.0, others=[BAKERY, CRM])
    assert [row["specificity"] for row in rows] == [2.0, 0.0, 0.0]
    assert tally.specific == 1 and len(tally.specificity) == 2  # paths are keywords: not counted
    summary = tally.summary()
    assert summary["specific"] == 0.5 and summary["specificity"] == 1.0
    assert "50% (+1.00)" in copy_eval.markdown_table({"formats": ["google-rsa"], "briefs": [],
                                                      "overall": summary})[-1]


def test_without_other_briefs_specificity_is_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_eval, "fluency", fake_fluency)
    tally, rows = copy_eval.evaluate_ad(object(), BARBER, "google-rsa", AD, 1.0)
    assert all(row["specificity"] is None for row in rows) and not tally.specificity
    summary = tally.summary()
    assert math.isnan(summary["specific"])
    assert "| – |" in copy_eval.markdown_table({"formats": ["google-rsa"], "briefs": [], "overall": summary})[-1]


def test_the_evaluation_samples_as_many_candidates_as_asked_else_the_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from studio.ml.text.copywriter import CopyRequest
    from tests.ml.copy_fixtures import tiny_lm

    asked: list[int] = []
    write = copy_eval.write_ads
    monkeypatch.setattr(copy_eval, "write_ads", lambda lm, request: asked.append(request.candidates)
                        or write(lm, request))
    monkeypatch.setattr(copy_eval, "fluency", lambda model, brief, lines: [-1.0] * len(lines))
    brief = Path(__file__).parents[2] / "resources" / "briefs" / "test" / "barber.json"
    lm = tiny_lm(seed=1)
    copy_eval.evaluate(lm, [brief], ["email"], candidates=2)
    copy_eval.evaluate(lm, [brief], ["email"])
    assert asked == [2, 2, CopyRequest.candidates, CopyRequest.candidates]  # the warm-up, then the ad
