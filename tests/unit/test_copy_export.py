"""Ad exports: CSV with the columns ad tools import, Markdown, JSON with the recipe; each reads back unchanged."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.copy_export import AdSet, csv_columns, export_ads, from_csv, import_ads, to_csv
from studio.core.copy_formats import GENERATION_FORMATS
from studio.core.errors import BadInputError

RSA_COLUMNS = (
    [c for i in range(1, 16) for c in (f"Headline {i}", f"Headline {i} position")]
    + [c for i in range(1, 5) for c in (f"Description {i}", f"Description {i} position")] + ["Path 1", "Path 2"]
)
RECIPE = {"model": "smollm2-135m-instruct", "model_sha256": "ab" * 32, "kind": "copy.generate", "seed": 7,
          "params": {"brief": {"product": "Brewly"}, "format": "google-rsa", "variants": 2}}


def rsa_ad(n: int) -> dict[str, list[str]]:
    return {
        "headline": [f"Fresh beans, batch {n}-{i}" for i in range(15)],
        "description": [f"Roasted, ground and shipped the same day, \"really\" (ad {n})." for _ in range(4)],
        "path": ["coffee", f"beans-{n}"],
    }


def test_google_csv_has_the_ad_tool_columns_one_row_per_ad(tmp_path: Path) -> None:
    adset = AdSet("google-rsa", [rsa_ad(1), rsa_ad(2)], RECIPE)
    path = export_ads(tmp_path / "ads.csv", adset)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == RSA_COLUMNS
    assert len(rows) == 3
    assert rows[1][0] == "Fresh beans, batch 1-0" and rows[2][-1] == "beans-2"


def test_other_formats_name_their_columns() -> None:
    meta = AdSet("meta", [{"primary": ["Wake up to fresh coffee."], "headline": ["Fresh beans"]}])
    assert [c[0] for c in csv_columns(meta)][:2] == ["Primary Text 1", "Primary Text 2"]
    email = AdSet("email", [{"subject": ["a", "b", "c"]}, {"subject": ["d"]}])
    assert [c[0] for c in csv_columns(email)] == ["Subject 1", "Subject 2", "Subject 3"]


def test_pins_go_into_the_google_ads_position_columns_and_read_back(tmp_path: Path) -> None:
    pins = [{"headline": {0: 1, 4: 2}, "description": {1: 2}}, {}]
    adset = AdSet("google-rsa", [rsa_ad(1), rsa_ad(2)], RECIPE, pins)
    path = export_ads(tmp_path / "pinned.csv", adset)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["Headline 1 position"] == "1" and rows[0]["Headline 5 position"] == "2"
    assert rows[0]["Headline 2 position"] == "" and rows[0]["Description 2 position"] == "2"
    assert all(v == "" for k, v in rows[1].items() if k.endswith("position"))
    back = import_ads(path)
    assert back.ads == adset.ads and back.pins == [pins[0], {}]
    assert import_ads(export_ads(tmp_path / "pinned.json", adset)).pins == pins


@pytest.mark.parametrize(
    ("pins", "message"),
    [([{"headline": {0: 4}}], "positions 1 to 3"), ([{"description": {0: 3}}], "positions 1 to 2"),
     ([{"path": {0: 1}}], "cannot be pinned"), ([{"headline": {20: 1}}], "does not exist")],
)
def test_impossible_pins_are_refused(tmp_path: Path, pins: list, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        export_ads(tmp_path / "bad.csv", AdSet("google-rsa", [rsa_ad(1)], RECIPE, pins))


@pytest.mark.parametrize("suffix", [".csv", ".md", ".json"])
def test_every_export_reads_back(tmp_path: Path, suffix: str) -> None:
    adset = AdSet("google-rsa", [rsa_ad(1), {"headline": ["Only one", "and two", "and three"],
                                             "description": ["A", "B"], "path": []}], RECIPE)
    back = import_ads(export_ads(tmp_path / f"ads{suffix}", adset))
    assert back.format == "google-rsa"
    assert back.ads == adset.ads
    if suffix != ".csv":
        assert back.recipe == RECIPE


line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\r\n\x85"),
    min_size=1, max_size=25,
).map(str.strip).filter(bool)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(GENERATION_FORMATS)),
    data=st.data(),
)
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, name: str, data: st.DataObject) -> None:
    fmt = GENERATION_FORMATS[name]
    ads = []
    for _ in range(data.draw(st.integers(1, 3))):
        ad = {}
        for spec in fmt.fields:
            top = min(spec.max_count or 4, 4)
            lines = data.draw(st.lists(line_text, min_size=1, max_size=top))
            ad[spec.name] = [line[: spec.limit // 2] or "x" for line in lines]  # wide chars count double
        ads.append(ad)
    adset = AdSet(name, ads, {"seed": 1, "params": {"brief": {"product": "Ünïcödé, \"quoted\""}}})
    folder = tmp_path_factory.mktemp("export")
    for suffix in (".csv", ".md", ".json"):
        back = import_ads(export_ads(folder / f"x{suffix}", adset), name if suffix == ".csv" else None)
        assert back.ads == ads, suffix


def test_over_limit_or_too_many_lines_is_refused(tmp_path: Path) -> None:
    too_long = AdSet("google-rsa", [{"headline": ["x" * 31], "description": [], "path": []}])
    with pytest.raises(BadInputError, match="H1 is 31 characters, limit 30"):
        export_ads(tmp_path / "a.csv", too_long)
    wide = AdSet("google-rsa", [{"headline": ["新鮮" * 8], "description": [], "path": []}])
    with pytest.raises(BadInputError, match="32 characters"):
        to_csv(wide)
    many = AdSet("google-rsa", [{"headline": ["a"] * 16, "description": [], "path": []}])
    with pytest.raises(BadInputError, match="at most 15"):
        to_csv(many)
    with pytest.raises(BadInputError, match=r"use \.csv, \.md or \.json"):
        export_ads(tmp_path / "a.xlsx", AdSet("email", [{"subject": ["hi"]}]))


def test_csv_from_an_ad_tool_with_extra_columns() -> None:
    text = "Campaign,Ad group,Headline 1,Headline 2,Description 1,Path 1\r\nC,G,Fresh,Bold,Roasted daily.,coffee\r\n"
    adset = from_csv(text)
    assert adset.format == "google-rsa"
    assert adset.ads == [{"headline": ["Fresh", "Bold"], "description": ["Roasted daily."], "path": ["coffee"]}]


def test_unreadable_imports(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no ad columns"):
        from_csv("a,b\n1,2\n")
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(BadInputError, match="not a Studio ad export"):
        import_ads(bad)
    md = tmp_path / "x.md"
    md.write_text("# Some notes\n- a line\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="not written by Studio"):
        import_ads(md)
