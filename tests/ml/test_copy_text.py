"""Reading the user's example lines and the Debian descriptions corpus; clear messages for bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from studio.core.errors import BadInputError
from studio.ml.data import copy_text
from studio.ml.data.copy_text import build_lexicon, parse_translations, read_training_lines, split_held_out


def test_txt_one_example_per_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    lines = [f"Line number {i}  with   spaces" for i in range(12)]
    path.write_text("\n".join(lines) + "\n\n\n" + lines[0] + "\n")
    text = read_training_lines(path)
    assert len(text.lines) == 12
    assert text.lines[0] == "Line number 0 with spaces"
    assert text.skipped == 3  # two blanks and a duplicate
    assert not text.sampled


def test_csv_uses_the_text_column(tmp_path: Path) -> None:
    path = tmp_path / "ads.csv"
    rows = ["id,Headline,clicks"] + [f'{i},"Fresh, bold coffee {i}",{i * 3}' for i in range(10)]
    path.write_text("\n".join(rows), encoding="utf-8")
    assert read_training_lines(path).lines[3] == "Fresh, bold coffee 3"


def test_utf16_is_read(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_text("\n".join(f"Café crème {i}" for i in range(10)), encoding="utf-16")
    assert read_training_lines(path).lines[0] == "Café crème 0"


def test_too_few_lines_binary_or_missing(tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("Only one example\n")
    with pytest.raises(BadInputError, match="need at least 10"):
        read_training_lines(one)
    binary = tmp_path / "x.txt"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(BadInputError, match=r"not UTF-8|binary"):
        read_training_lines(binary)
    with pytest.raises(BadInputError, match="no such file"):
        read_training_lines(tmp_path / "nope.txt")


def test_huge_files_are_sampled_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_text, "SAMPLE_ABOVE_BYTES", 1000)
    monkeypatch.setattr(copy_text, "MAX_EXAMPLES", 50)
    path = tmp_path / "big.txt"
    path.write_text("\n".join(f"Example line {i}" for i in range(5000)))
    text = read_training_lines(path, seed=3)
    assert text.sampled and len(text.lines) == 50 and text.total == 5000
    assert "random sample of 5,000" in text.message
    assert read_training_lines(path, seed=3).lines == text.lines  # seeded


def test_held_out_split_is_seeded_and_disjoint() -> None:
    lines = [f"l{i}" for i in range(50)]
    train, held = split_held_out(lines, 0.2, seed=1)
    assert len(held) == 10 and not set(train) & set(held) and sorted(train + held) == sorted(lines)
    assert split_held_out(lines, 0.2, seed=1) == (train, held)


def test_parse_translations() -> None:
    text = """Package: brewly
Description-md5: 0
Description-en: coffee subscription manager
 Brewly keeps track of your beans
 and reminds you to reorder.
 .
 This package has the data files.

Package: empty
Description-en: no long description

"""
    records = list(parse_translations(text.splitlines(keepends=True)))
    assert len(records) == 1
    assert records[0].package == "brewly"
    assert records[0].synopsis == "coffee subscription manager"
    assert records[0].blurb == "Brewly keeps track of your beans and reminds you to reorder."


def test_lexicon_builder(tmp_path: Path) -> None:
    wordlist = tmp_path / "words"
    wordlist.write_text("coffee\ncoffee's\nGI\nx\na\nRoast\nFromm\n")
    out = tmp_path / "lex.txt.gz"
    count = build_lexicon(wordlist, ["the roguelike game", "a roguelike"] * 6, out, min_count=10)
    with gzip.open(out, "rt", encoding="utf-8") as fh:
        words = fh.read().split()
    assert words == sorted(words) and count == len(words)
    assert {"coffee", "coffee's", "a", "roguelike", "monday"} <= set(words)
    assert "gi" not in words and "x" not in words and "game" not in words  # short junk, and too rare
    assert "fromm" not in words and "roast" not in words  # capitalised entries are names, not common words
    first = out.read_bytes()
    build_lexicon(wordlist, ["the roguelike game", "a roguelike"] * 6, out, min_count=10)
    assert out.read_bytes() == first  # reproducible bytes (no timestamp in the gzip header)
