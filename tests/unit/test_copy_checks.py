"""The copy checks on constructed lines: every broken line the issue quotes is caught by the rule it breaks,
and ordinary copy passes."""

from __future__ import annotations

import pytest

from studio.core.ad_formats import FORMATS
from studio.core.copy_brief import brief_from_dict
from studio.core.copy_checks import (
    BriefVocabulary,
    check_line,
    contains_phrase,
    dangling,
    garbled_phrases,
    instruction_talk,
    must_use_missing,
    non_words,
)
from studio.core.copy_formats import DEFAULT_COUNTS, generation_format
from studio.core.copy_plan import Angle, extractive_lines, path_lines, plan_ad

BRIEF = brief_from_dict({"product": "Lumen Trail", "features": ["400 lumen beam for night runs",
                                                                "USB-C charging in two hours"],
                         "audience": "trail runners", "tone": "energetic", "must_use": ["headlamp"],
                         "banned": ["best"]})
VOCABULARY = BriefVocabulary.of(BRIEF)


@pytest.mark.parametrize("line", ["How to make a go at", "Watch Your Back: Stop doing", "Curb your cravings: 15",
                                  "The next step is removing all", "The battery only gives about c",
                                  "Built for your", "Runs (all night", "Light up -",
                                  # seen in the test split's ads, passed by the checks before they knew these:
                                  "Walk-ins Welcome with a Warm", "Private by Design for the Well",
                                  "Remote IT Support for the New", "Tally Your Way to Happier"])
def test_dangling_endings(line: str) -> None:
    assert dangling(line)


@pytest.mark.parametrize("line", ["Charge It Anywhere", "Charge with USB-C", "Open till 9pm", "Ready? Go!",
                                  "Light for every run.", "Do Your Best", "Feel Better", "Tally for a Better You",
                                  "Habits for a Lifetime", "Sakura Tea for Summer", "Built to Last"])
def test_complete_lines_do_not_dangle(line: str) -> None:
    assert not dangling(line)


@pytest.mark.parametrize("line", ["Reworded 50% differently", 'Headline: "Headlamp, a sunrise',
                                  "How does it work? - 50 words, no bold text.", "Here are 3 headlines",
                                  "Product: Lumen Trail", "Tally in a Encouraging Tone",
                                  "Billable in a Practical Tone", "With PAS, you can get all the features you love",
                                  "Follow the AIDA Way"])
def test_instruction_talk(line: str) -> None:
    assert instruction_talk(line, VOCABULARY)


def test_instruction_words_of_the_brief_itself_are_fine() -> None:
    brief = brief_from_dict({"product": "Headline Pro", "features": ["writes headlines for you"]})
    assert instruction_talk("Headline Pro Writes Headlines", BriefVocabulary.of(brief)) == []
    assert instruction_talk("Bold Light for Night Runs", VOCABULARY) == []


def test_non_words_against_the_lexicon_and_the_brief() -> None:
    assert non_words("What makes you different fromm", VOCABULARY) == ["fromm"]
    assert non_words("Spain vswitch Aorta", VOCABULARY) == ["vswitch"]  # a name where it is capitalised
    assert non_words("Headlamp is a light source ing", VOCABULARY) == ["ing"]
    assert non_words("Lumen Trail: USB-C in 2 hours, 400 lumens", VOCABULARY) == []


def test_banned_inflections_are_hard_failures() -> None:
    fmt = FORMATS["google-rsa"]
    for line in ("One of your bests", "Bestseller review", "The bested innovation"):
        assert "banned word" in check_line(line, "headline", BRIEF, fmt).hard


def test_on_brief_means_a_shared_content_word_or_close_variant() -> None:
    assert VOCABULARY.shares("Charge Up for Night Running") == ["charge", "night", "running"]
    assert VOCABULARY.shares("Enjoy Your Day Off") == []


def test_must_use_coverage_per_ad() -> None:
    assert must_use_missing({"headline": ["Lumen Trail Headlamps"]}, BRIEF) == []
    assert must_use_missing({"headline": ["Lumen Trail"], "description": ["Light."]}, BRIEF) == ["headlamp"]
    assert contains_phrase(["Balance Bikes for Toddlers"], "balance bike")
    assert not contains_phrase(["Bike balance"], "balance bike")
    assert contains_phrase(["New Batteries", "The shop's hours"], "battery")
    assert contains_phrase(["Open Every Day"], "Open every day")


def test_must_use_words_are_not_covered_by_other_forms() -> None:
    """Seen in the test split: must-use "reading" counted as present in "Read together" (stems compared)."""
    brief = brief_from_dict({"product": "ReadTogether", "must_use": ["reading"]})
    assert must_use_missing({"subject": ["Books for every classroom. Read together."]}, brief) == ["reading"]
    assert must_use_missing({"subject": ["Reading for every classroom"]}, brief) == []


def test_the_plan_gives_every_feature_the_audience_and_an_offer_a_headline() -> None:
    slots = plan_ad(BRIEF, FORMATS["google-rsa"], DEFAULT_COUNTS["google-rsa"])
    headlines = [s.angle for s in slots if s.field == "headline"]
    assert len(headlines) == 15
    kinds = {a.kind for a in headlines}
    assert {"product", "feature", "audience", "must-use", "offer", "tone"} <= kinds
    assert {a.text for a in headlines if a.kind == "feature"} == set(BRIEF.features)
    assert [s.angle.kind for s in slots if s.field == "path"] == ["keyword", "keyword"]


def test_extractive_lines_fit_end_cleanly_and_keep_banned_words_out() -> None:
    fmt = FORMATS["google-rsa"]
    brief = brief_from_dict({"product": "Brewly", "features": ["freshly roasted beans delivered every two weeks"],
                             "banned": ["try"]})
    for angle in (Angle("feature", brief.features[0]), Angle("offer", ""), Angle("product", "Brewly")):
        lines = extractive_lines(brief, angle, "headline", 30, fmt)
        assert lines, angle
        for line in lines:
            assert len(line) <= 30 and not dangling(line) and "try" not in line.lower().split()
    assert "Freshly Roasted Beans" in extractive_lines(brief, Angle("feature", brief.features[0]), "headline", 30,
                                                       fmt)
    assert all(len(p) <= 15 and " " not in p for p in path_lines(BRIEF, 2, 15))


def test_non_latin_and_emoji_names_are_kept_intact() -> None:
    brief = brief_from_dict({"product": "Sakura 桜 Tea ☕", "features": ["cherry blossom green tea"]})
    lines = extractive_lines(brief, Angle("product", brief.product), "headline", 30, FORMATS["google-rsa"])
    assert any("Sakura 桜 Tea ☕" in line for line in lines)
    assert non_words("Sakura 桜 Tea for You", BriefVocabulary.of(brief)) == []


def test_made_up_numbers_and_repeated_words_are_caught() -> None:
    from studio.core.copy_checks import made_up_numbers, repeated_words

    brief = brief_from_dict({"product": "Lumen Trail", "features": ["USB-C charging in two hours",
                                                                    "weighs only 80 grams"]})
    assert made_up_numbers("USB-C Charging for Ten Hours", brief) == ["10"]
    assert made_up_numbers("Lumen Trail, 25% more power", brief) == ["25"]
    assert made_up_numbers("Charged in 2 Hours, 80g Light", brief) == []
    assert repeated_words("Weighs only 80 grams. Weighing only 80 grams.", brief) == ["weigh", "gram"]
    assert repeated_words("Lumen Trail for Trail Runners", brief) == []


def test_offers_the_brief_never_made_are_caught() -> None:
    from studio.core.copy_checks import invented_offers

    barber = brief_from_dict({"product": "Fade Street Barbers", "features": ["walk-ins welcome"]})
    assert invented_offers("Free Fare for Men in the City", barber) == ["free"]
    assert invented_offers("Fresh Fades, 20% off Today", barber) == ["% off"]
    shop = brief_from_dict({"product": "Spoke & Chain", "features": ["free safety check"]})
    assert invented_offers("Free Safety Check Today", shop) == []


def test_names_keep_their_emoji_and_long_must_use_words_get_a_note() -> None:
    from studio.core.copy_plan import must_use_notes, restore_names

    fmt = FORMATS["google-rsa"]
    brief = brief_from_dict({"product": "Sakura 桜 Tea ☕", "must_use": ["green tea harvested in early spring"]})
    assert restore_names("Sakura 桜 Tea for You", brief, 30, fmt) == "Sakura 桜 Tea ☕ for You"
    assert restore_names("Sakura 桜 Tea for You, Every Day", brief, 30, fmt) == "Sakura 桜 Tea for You, Every Day"
    notes = must_use_notes(brief, fmt, {"headline": 15, "description": 4})
    assert len(notes) == 1 and "longer than a line of the headlines" in notes[0]


BARBER = brief_from_dict({"product": "Fade Street Barbers", "features": ["hot towel shaves", "open till 9pm"],
                          "audience": "men in the city centre"})


@pytest.mark.parametrize("line, garbled", [("Hot Towel Shakes Your Business", ["shakes"]),
                                           ("Face Street Barbers", ["face"])])
def test_a_brief_phrase_broken_by_one_letter_is_caught(line: str, garbled: list[str]) -> None:
    assert garbled_phrases(line, BARBER) == garbled
    assert "garbles the brief" in check_line(line, "headline", BARBER, generation_format("google-rsa")).hard


@pytest.mark.parametrize("line", ["Hot Towel Shaves Tonight", "A Hot Towel Shave", "Hot Towel Shaving",
                                  "Men in the City Center", "Hot Bars on the Go"])
def test_other_forms_and_spellings_of_a_brief_word_are_not_garbled(line: str) -> None:
    assert garbled_phrases(line, BARBER) == []
