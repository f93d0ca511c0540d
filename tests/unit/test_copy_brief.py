"""The ad-copy brief: loading, validation with clear messages, and the banned-word matching rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.copy_brief import BannedPattern, brief_from_dict, find_banned, load_brief, parse_banned, save_brief
from studio.core.errors import BadInputError

GOOD = {
    "product": "Brewly",
    "features": ["fresh beans every week", "pause any time"],
    "audience": "home baristas",
    "tone": "warm",
    "must_use": ["fresh"],
    "banned": ["cheap", "free*", "best price"],
}


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    brief = brief_from_dict(GOOD)
    path = save_brief(tmp_path / "brief.json", brief)
    again = load_brief(path)
    assert again == brief
    assert json.loads(path.read_text(encoding="utf-8")) == GOOD


def test_other_languages_and_emoji_are_kept(tmp_path: Path) -> None:
    data = {"product": "Café Lumière ☕", "features": ["грёзы", "新鮮なコーヒー 🚀"], "tone": "chaleureux"}
    path = save_brief(tmp_path / "b.json", brief_from_dict(data))
    brief = load_brief(path)
    assert brief.product == "Café Lumière ☕"
    assert brief.features == ("грёзы", "新鮮なコーヒー 🚀")
    assert "☕" in path.read_text(encoding="utf-8")  # written as UTF-8, not \\u escapes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"product": ""}, "product\" is empty"),
        ({"product": "   "}, "product\" is empty"),
        ({}, "product\" is empty"),
        ({"product": "🚀🚀"}, "no letters or digits"),
        ({"product": "X", "features": "fast"}, "must be a list of texts"),
        ({"product": "X", "features": {"a": 1}}, "must be a list of texts"),
        ({"product": "X", "features": ["ok", 3]}, "features[1] must be text"),
        ({"product": "X", "tone": ["warm"]}, "'tone' must be text"),
        ({"product": "X", "feature": ["typo"]}, "unknown field(s) feature"),
        ({"product": "Free Budget", "banned": ["free"]}, "cover the product name"),
        ({"product": "FreeBudget", "banned": ["free*"]}, "cover the product name"),
        ({"product": "Brewly", "must_use": ["best price"], "banned": ["best price"]}, "both required and banned"),
        ({"product": "Brewly", "banned": ["!!!"]}, "no letters or digits"),
        ({"product": "X" * 201}, "keep it under 200"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_briefs_get_clear_messages(data: object, message: str) -> None:
    with pytest.raises(BadInputError, match=None) as info:
        brief_from_dict(data)
    assert message in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file"):
        load_brief(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{\"product\": ", encoding="utf-8")
    with pytest.raises(BadInputError, match="not valid JSON"):
        load_brief(broken)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"product": "Caf\xe9"}'.encode("latin-1"))
    with pytest.raises(BadInputError, match="not UTF-8"):
        load_brief(latin)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert load_brief(bom).product == "Brewly"


def test_banned_words_match_whole_words_in_any_case() -> None:
    patterns = parse_banned(["free"])
    for text in ("FREE trial", "Get it free!", "free-range", "It's Free."):
        assert find_banned(text, patterns) == ["free"], text
    for text in ("freedom to roast", "carefree mornings"):
        assert find_banned(text, patterns) == [], text


def test_a_banned_word_blocks_its_inflections_and_compounds() -> None:
    """The issue's lines with ``best`` banned: each must be caught; words that only share letters must not."""
    patterns = parse_banned(["best"])
    for text in ("One of your bests and that's G", "The bested innovation out oder", "Bestseller review",
                 "Headlamp - Bestsellers", "besting the rest"):
        assert find_banned(text, patterns) == ["best"], text
    for text in ("bestow a gift", "a bestial roar"):
        assert find_banned(text, patterns) == [], text
    verbs = parse_banned(["stop", "happy", "make"])
    assert find_banned("Stopped. Happier. Making.", verbs) == ["stop", "happy", "make"]
    assert find_banned("freely", parse_banned(["free"])) == ["free"]


def test_square_brackets_ban_the_exact_word_only() -> None:
    exact = parse_banned(["[best]"])
    assert find_banned("The BEST!", exact) == ["[best]"]
    assert find_banned("Bestsellers and bests", exact) == []
    assert find_banned("best price", parse_banned(["[best price]"])) == ["[best price]"]
    assert find_banned("best prices", parse_banned(["[best price]"])) == []
    assert find_banned("best prices", parse_banned(["best price"])) == ["best price"]


def test_a_star_bans_every_word_with_the_stem() -> None:
    patterns = parse_banned(["free*"])
    assert find_banned("Freedom awaits", patterns) == ["free*"]
    assert find_banned("a FREEBIE", patterns) == ["free*"]
    assert find_banned("carefree", patterns) == []


def test_phrases_match_across_punctuation_not_alone() -> None:
    patterns = parse_banned(["best price", "100% guaranteed"])
    assert find_banned("The BEST, price!", patterns) == ["best price"]
    assert find_banned("100 % Guaranteed", patterns) == ["100% guaranteed"]
    assert find_banned("best coffee at a fair price", patterns) == []


def test_pattern_parts() -> None:
    assert BannedPattern.parse("Best  Price*").parts == ("best", "price*")
    assert BannedPattern.parse("don't").parts == ("don't",)
