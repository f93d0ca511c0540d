"""Ad formats: field limits, the plain-text layout (roles, counts, over-limit lines) and its round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.core.ad_formats import (
    FORMATS,
    analyse,
    char_count,
    fit_prefix,
    format_ad,
    get_format,
    is_heading,
    parse_ad,
    problems,
)
from studio.core.errors import BadInputError

RSA = FORMATS["google-rsa"]


def test_platform_limits():
    limits = {(f.name, f.limit, f.min_count, f.max_count) for f in RSA.fields}
    assert limits == {("headline", 30, 3, 15), ("description", 90, 2, 4), ("path", 15, 0, 2)}
    assert {(f.name, f.limit) for f in FORMATS["meta"].fields} == {("primary", 125), ("headline", 40)}
    assert [(f.name, f.limit) for f in FORMATS["email"].fields] == [("subject", 60)]
    assert [(f.name, f.limit) for f in FORMATS["free"].fields] == [("text", None)]


def test_unknown_format_is_a_clear_error():
    with pytest.raises(BadInputError, match=r"unknown ad format 'tiktok'.*google-rsa"):
        get_format("tiktok")


def test_roles_counts_and_over_limit_lines():
    text = "# Headlines\nShort one\n" + "x" * 31 + "\n\n# Descriptions\nA description\n# Paths\ncoffee"
    infos = analyse(text, RSA)
    assert [i.kind for i in infos] == ["heading", "item", "item", "blank", "heading", "item", "heading", "item"]
    assert [(i.role, i.length, i.limit, i.over) for i in infos if i.kind == "item"] == [
        ("H1", 9, 30, False), ("H2", 31, 30, True), ("D1", 13, 90, False), ("P1", 6, 15, False),
    ]


def test_lines_before_a_heading_belong_to_the_first_field_and_extras_are_flagged():
    text = "\n".join(f"headline {i}" for i in range(16))
    infos = analyse(text, RSA)
    assert infos[0].role == "H1" and infos[14].role == "H15"
    assert not infos[14].excess and infos[15].excess


def test_headings_match_title_or_field_name_in_any_case_and_unknown_sections_have_no_limit():
    assert is_heading("# descriptions", RSA) and is_heading("# PATH", RSA) and is_heading("# Nonsense", RSA)
    assert not is_heading("#Headlines", RSA)
    assert not is_heading("# Headlines", FORMATS["free"])  # free text has no sections
    infos = analyse("# Nonsense\n" + "y" * 200, RSA)
    assert (infos[1].role, infos[1].limit, infos[1].over) == ("?", None, False)
    assert parse_ad("# Nonsense\nlost line", RSA) == {"headline": [], "description": [], "path": []}


def test_double_width_characters_count_twice_for_google_only():
    assert char_count("日本語ab", RSA) == 8
    assert char_count("日本語ab", FORMATS["meta"]) == 5
    assert fit_prefix("abc日本", 4, RSA) == 3  # the first wide character no longer fits
    assert fit_prefix("abc", 30, RSA) == 3


def test_format_then_parse_round_trip_and_skeleton():
    ad = {"headline": ["Fresh beans weekly", "Roasted today"], "description": ["We ship the day we roast."],
          "path": ["coffee"]}
    text = format_ad(ad, RSA)
    assert text.splitlines()[0] == "# Headlines"
    assert parse_ad(text, RSA) == ad
    assert format_ad({}, FORMATS["meta"]) == "# Primary text\n# Headlines"
    assert format_ad({"text": ["a", "b"]}, FORMATS["free"]) == "a\nb"


def test_format_refuses_fields_the_format_does_not_have():
    with pytest.raises(BadInputError, match=r"no field.*subject"):
        format_ad({"subject": ["hi"]}, RSA)


def test_multi_line_items_are_joined_so_the_layout_stays_one_item_per_line():
    text = format_ad({"subject": ["two\nlines"]}, FORMATS["email"])
    assert parse_ad(text, FORMATS["email"]) == {"subject": ["two lines"]}


def test_problems_lists_counts_and_limits():
    ad = {"headline": ["ok", "x" * 31], "description": ["d1", "d2"], "path": []}
    found = problems(ad, RSA)
    assert "Headlines: 2 of at least 3" in found
    assert "H2 is 31 characters, limit 30" in found
    assert problems({"headline": ["a", "b", "c"], "description": ["d", "e"], "path": ["p"]}, RSA) == []


line = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40).filter(
    lambda s: s.strip() and not s.startswith("# ") and "\x85" not in s
)


@given(st.lists(line, max_size=15), st.lists(line, max_size=4), st.lists(line, max_size=2))
def test_round_trip_property(headlines, descriptions, paths):
    ad = {"headline": headlines, "description": descriptions, "path": paths}
    assert parse_ad(format_ad(ad, RSA), RSA) == ad
