"""Self-training of the copy model: practice briefs from package bullet points and varied briefs, which
candidates are kept, the training examples, the held-out split and the judge of the copy evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.copy_brief import brief_from_dict
from studio.core.copy_formats import generation_format
from studio.core.copy_plan import Angle
from studio.core.errors import BadInputError
from studio.ml.data.copy_text import PackageBlurb, parse_translations, read_debian_corpus
from studio.ml.data.training_briefs import debian_briefs, usable_packages, varied_briefs
from studio.ml.text.copywriter import slot_prompt_ids
from studio.ml.text.rerank import Scored
from studio.ml.train import copy_selftrain
from studio.ml.train.copy_selftrain import KeptLine, PracticeAd, example_of, keep_best, practice_ads, split_by_product
from tests.ml.copy_fixtures import tiny_lm

TRANSLATION = """Package: kbrew
Description-en: coffee brewing timer for the desktop
 Kbrew times your pour-over and French press.
 .
 Features:
  * timers for every brewing method
  * reminders when the beans run low
    and a weekly shopping list
  * --verbose

Package: libkbrew-dev
Description-en: coffee brewing timer - development files
 Headers for kbrew.
 .
  * timers for every brewing method
  * reminders when the beans run low

"""


def test_bullet_points_are_kept_with_their_wrapped_lines_and_out_of_the_blurb() -> None:
    records = list(parse_translations(TRANSLATION.splitlines(keepends=True)))
    assert records[0].blurb == "Kbrew times your pour-over and French press."
    assert records[0].features == ("timers for every brewing method",
                                   "reminders when the beans run low and a weekly shopping list", "--verbose")


def test_corpora_without_bullet_points_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text('{"package": "kbrew", "synopsis": "timer", "blurb": "Times your coffee."}\n')
    assert read_debian_corpus(path)[0].features == ()


def test_packages_become_briefs_and_libraries_do_not() -> None:
    records = list(parse_translations(TRANSLATION.splitlines(keepends=True)))
    assert [r.package for r in usable_packages(records)] == ["kbrew"]
    brief = debian_briefs(records, 10, seed=3)[0]
    assert brief.product == "Kbrew"
    assert set(brief.features) <= {"timers for every brewing method",
                                   "reminders when the beans run low and a weekly shopping list"}
    assert "--verbose" not in brief.features  # an option name is no feature


def test_banned_words_never_cover_the_product_name() -> None:
    record = PackageBlurb("freeradius", "a radius server", "A server.",
                          ("fast logins for every user", "reports on every session"))
    briefs = [b for seed in range(40) for b in debian_briefs([record], 1, seed)]
    assert briefs and all(not any(b.startswith("free") for b in brief.banned) for brief in briefs)


def test_variations_keep_the_product_and_audience_and_change_the_rest() -> None:
    brief = brief_from_dict({"product": "Brewly", "features": ["fresh beans", "pause any time", "free grinder"],
                             "audience": "home baristas", "tone": "warm", "must_use": ["fresh"]})
    found = varied_briefs([brief], 12, seed=1)
    assert {b.product for b in found} == {"Brewly"} and {b.audience for b in found} == {"home baristas"}
    assert len({b.tone for b in found}) > 1 and len({b.features for b in found}) > 1
    assert all(set(b.features) <= set(brief.features) for b in found)


def test_held_out_products_are_never_trained_on() -> None:
    briefs = [brief_from_dict({"product": f"P{n % 20}", "features": ["fast"]}) for n in range(100)]
    train, held = split_by_product(practice_ads(briefs, seed=2), share=0.1, seed=2)
    assert held and train and len(train) + len(held) == 100
    assert not {a.brief["product"] for a in train} & {a.brief["product"] for a in held}


AD = PracticeAd({"product": "Brewly", "features": ["fresh beans every week"], "audience": "home baristas",
                 "tone": "warm", "must_use": [], "banned": []}, "google-rsa", "none", 7)


def test_only_each_slot_best_fluent_survivor_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    pools = [
        ("headline", Angle("feature", "fresh beans every week"),
         [Scored("Fresh Beans Every Week", [], -0.9, 1.0), Scored("Beans Weekly", [], -1.2, 0.5)]),
        ("headline", Angle("audience", "home baristas"), [Scored("Cups Of Cups", [], -3.4, 0.3)]),  # not fluent
        ("headline", Angle("tone", "warm"), [Scored("Brewly", [], -0.5, 0.4)]),  # the bare name, not its slot
        ("headline", Angle("product", "Brewly"), [Scored("Brewly", [], -0.5, 0.4)]),
        ("description", Angle("offer", ""), []),  # nothing survived
    ]

    def fake_write_ads(lm, request, on_pool=None, **_):
        assert request.candidates == 6 and request.seed == 7
        for name, angle, pool in pools:
            on_pool(0, name, angle, pool)
        return []

    monkeypatch.setattr(copy_selftrain, "write_ads", fake_write_ads)
    kept = keep_best(object(), AD, candidates=6, round_=1)
    assert [(k.kind, k.text) for k in kept] == [("feature", "Fresh Beans Every Week"), ("product", "Brewly")]
    assert all(k.round == 1 and k.format == "google-rsa" for k in kept)


def test_a_kept_line_trains_on_the_exact_prompt_it_was_written_after() -> None:
    lm = tiny_lm()
    line = KeptLine(AD.brief, "google-rsa", "none", "headline", "feature", "fresh beans every week",
                    "Fresh coffee every week", 1.0, -1.0, 0)
    example = example_of(lm, line, max_tokens=4096)  # the tiny vocabulary spells the prompt out in bytes
    prefix, tail = slot_prompt_ids(lm, brief_from_dict(AD.brief), generation_format("google-rsa"), "headline",
                                   Angle("feature", "fresh beans every week"))
    assert example.ids[:example.target_from] == [*prefix, *tail]
    target = example.ids[example.target_from:]
    assert target[-1] == lm.tokenizer.eos_id
    assert lm.tokenizer.decode(target[:-1]) == "Fresh coffee every week"


def _line(text: str) -> KeptLine:
    return KeptLine(AD.brief, "google-rsa", "none", "headline", "feature", "fresh beans every week", text, 1.0,
                    -1.0, 0)


def test_a_journal_keeps_each_written_ad_and_resumes_without_writing_it_again(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    other = PracticeAd(AD.brief, "meta", "none", 8)
    copy_selftrain.append_journal(journal, AD, [_line("Fresh Beans Weekly")], 9.5)
    copy_selftrain.append_journal(journal, other, [], 4.0)  # written, nothing kept: still not written again
    events = []
    # every ad is in the journal: no worker process starts (the base model named does not even exist)
    kept = copy_selftrain.collect("no-such-model", None, [AD, other], 2, 6, 0, 1e12, events.append, journal)
    assert [k.text for k in kept] == ["Fresh Beans Weekly"]
    assert "2 ads already written" in events[0]["message"]


def test_a_journal_line_cut_short_by_a_crash_is_dropped_and_the_next_ad_starts_a_line(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    copy_selftrain.append_journal(journal, AD, [_line("Fresh Beans Weekly")], 9.5)
    with open(journal, "a") as fh:
        fh.write('{"ad": "cut-sh')
    assert list(copy_selftrain.read_journal(journal)) == [copy_selftrain.ad_key(AD)]
    copy_selftrain.drop_cut_line(journal)
    other = PracticeAd(AD.brief, "meta", "none", 8)
    copy_selftrain.append_journal(journal, other, [_line("Beans Weekly")], 3.0)
    assert len(copy_selftrain.read_journal(journal)) == 2


def test_a_damaged_journal_says_so_and_is_left_alone(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text('not json\n{"ad": "x", "kept": []}\n')
    with pytest.raises(BadInputError, match="line 1 is not a written ad"):
        copy_selftrain.read_journal(journal)
    assert journal.read_text().startswith("not json")


def test_a_journal_tells_ads_apart_by_their_whole_brief() -> None:
    changed = PracticeAd({**AD.brief, "tone": "bold"}, AD.format, AD.framework, AD.seed)
    assert copy_selftrain.ad_key(changed) != copy_selftrain.ad_key(AD)


def test_the_evaluation_scores_fluency_with_the_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.ml.text import copy_eval

    seen = []
    monkeypatch.setattr(copy_eval, "fluency", lambda model, brief, lines: seen.append(model) or [-1.0] * len(lines))
    writer, judge = tiny_lm(seed=1), tiny_lm(seed=2)
    brief = Path(__file__).parents[2] / "resources" / "briefs" / "test" / "barber.json"
    copy_eval.evaluate(writer, [brief], ["email"], judge=judge)
    assert seen and all(model is judge for model in seen)


def test_writing_only_needs_a_journal_to_keep_the_ads_in() -> None:
    from studio.cli import main

    with pytest.raises(SystemExit, match="give --journal FILE"):
        main(["train", "copy", "--self-train", "--briefs", "resources/briefs/dev", "--write-only"])


def test_lines_that_fail_checks_added_since_they_were_kept_are_not_trained_on() -> None:
    fine, leaky = _line("Fresh Beans Every Week"), _line("With PAS, Fresh Beans")
    assert copy_selftrain.still_passing([fine, leaky]) == [fine]
