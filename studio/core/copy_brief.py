"""The ad-copy brief: what the product is, who it is for, words to use and words never to use.

A brief is a JSON file (the copy workspace's form reads and writes the same shape)::

    {"product": "Brewly", "features": ["fresh beans every week"], "audience": "home baristas",
     "tone": "warm", "must_use": ["fresh"], "banned": ["cheap", "free*", "best price"]}

Banned entries match whole words, case-insensitively, whatever the punctuation around them, and a banned word
also bans its forms (see :mod:`studio.core.word_forms`):

* ``best`` bans "best", "BEST", "Best!", its regular inflections ("bests", "bested", "besting", "best's") and
  closed compounds that start with it and go on with a common word of four letters or more ("bestseller",
  "Bestsellers"). It does not ban words that merely start with the same letters ("bestow", "bestial"; ``free``
  does not ban "freedom" or "carefree": banning word parts would ban innocent words, the "Scunthorpe problem").
* ``free*`` bans every word that starts with the stem ("freebie", "freedom").
* ``[free]`` (in square brackets, as an exact-match keyword in Google Ads) bans only the word itself: "frees" and
  "freely" stay allowed.
* An entry of several words bans that phrase, each word with its forms (``best price`` bans "Best price!",
  "best, prices", not "best" alone; ``[best price]`` only the exact words).

The same matching is used by the decoder that keeps banned words out of generated copy, by the validation below
and by the copy checks, so all three agree.

Other languages and emoji are allowed in every field and kept as written.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from studio.core.errors import BadInputError
from studio.core.formats.json_file import read_json
from studio.core.safe_write import write_atomic
from studio.core.word_forms import family_prefix, inflections, is_compound_of

#: A word: letters and digits of any script, with apostrophes inside (``don't``, ``coffee's``).
WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

MAX_BRIEF_BYTES = 1 << 20
MAX_PRODUCT_CHARS = 200
MAX_ITEM_CHARS = 300
MAX_ITEMS = 50
FIELDS = ("product", "features", "audience", "tone", "must_use", "banned")


def words(text: str) -> list[str]:
    """The words of ``text``, case-folded (the unit that banned-word matching works on)."""
    return [w.casefold() for w in WORD_RE.findall(text)]


EXACT = "="  # part prefix: this word only
PREFIX = "*"  # part suffix: every word starting with the stem


@dataclass(frozen=True)
class BannedPattern:
    """One banned entry as a sequence of word patterns: ``word`` (the word and its forms), ``word*`` (by prefix)
    or ``=word`` (exactly)."""

    source: str
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, entry: str) -> BannedPattern:
        text = entry.strip()
        exact = len(text) > 2 and text.startswith("[") and text.endswith("]")
        parts = []
        for raw in (text[1:-1] if exact else text).split():
            star = raw.endswith("*") and not exact
            found = words(raw)
            if not found:
                continue
            mark = EXACT if exact else ""
            parts.extend(mark + w for w in found[:-1])
            parts.append(mark + found[-1] + (PREFIX if star else ""))
        if not parts:
            raise BadInputError(
                f"banned entry {entry!r} has no letters or digits: Studio bans words and phrases, not symbols"
            )
        return cls(text, tuple(parts))

    @staticmethod
    def part_matches(part: str, word: str) -> bool:
        """Does one pattern part match one case-folded word?"""
        if part.endswith(PREFIX):
            return word.startswith(part[:-1])
        if part.startswith(EXACT):
            return word == part[1:]
        return word == part or word in inflections(part) or is_compound_of(word, part)

    @staticmethod
    def part_prefix(part: str) -> tuple[str, bool]:
        """(prefix every matching word starts with, whether matches may be longer than that prefix)."""
        if part.endswith(PREFIX):
            return part[:-1], True
        if part.startswith(EXACT):
            return part[1:], False
        return family_prefix(part), True

    def matches_at_end(self, seq: list[str] | tuple[str, ...]) -> bool:
        """Does the pattern match the last words of ``seq`` (case-folded words)?"""
        n = len(self.parts)
        if len(seq) < n:
            return False
        tail = seq[len(seq) - n:]
        return all(self.part_matches(p, w) for p, w in zip(self.parts, tail, strict=True))


def parse_banned(entries: list[str] | tuple[str, ...]) -> tuple[BannedPattern, ...]:
    return tuple(BannedPattern.parse(e) for e in entries)


def find_banned(text: str, patterns: tuple[BannedPattern, ...] | list[BannedPattern]) -> list[str]:
    """The banned entries that occur in ``text`` (empty when it is clean)."""
    seq = words(text)
    hits = []
    for pattern in patterns:
        if any(pattern.matches_at_end(seq[: i + 1]) for i in range(len(seq))):
            hits.append(pattern.source)
    return hits


@dataclass(frozen=True)
class Brief:
    product: str
    features: tuple[str, ...] = ()
    audience: str = ""
    tone: str = ""
    must_use: tuple[str, ...] = ()
    banned: tuple[str, ...] = ()
    banned_patterns: tuple[BannedPattern, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("banned_patterns")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def _text(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInputError(f"brief: {key!r} must be text, not {type(value).__name__}")
    value = " ".join(value.split())
    if len(value) > limit:
        raise BadInputError(f"brief: {key!r} is {len(value)} characters; keep it under {limit}")
    return value


def _text_list(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if value is None:
        return ()
    if isinstance(value, str):
        raise BadInputError(f'brief: {key!r} must be a list of texts, e.g. ["{value}"], not a single text')
    if not isinstance(value, list):
        raise BadInputError(f"brief: {key!r} must be a list of texts, not {type(value).__name__}")
    if len(value) > MAX_ITEMS:
        raise BadInputError(f"brief: {key!r} has {len(value)} entries; at most {MAX_ITEMS} are used")
    items = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise BadInputError(f"brief: {key}[{i}] must be text, not {type(item).__name__}")
        item = " ".join(item.split())
        if len(item) > MAX_ITEM_CHARS:
            raise BadInputError(f"brief: {key}[{i}] is {len(item)} characters; keep it under {MAX_ITEM_CHARS}")
        if item and item not in items:
            items.append(item)
    return tuple(items)


def brief_from_dict(data: Any) -> Brief:
    """Validate a brief given as plain data (from JSON or the workspace form); raises BadInputError."""
    if not isinstance(data, dict):
        raise BadInputError("a brief must be a JSON object with at least a \"product\"")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise BadInputError(f"brief: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    product = _text(data, "product", MAX_PRODUCT_CHARS)
    if not product:
        raise BadInputError('brief: "product" is empty; say what you are advertising')
    if not words(product):
        raise BadInputError(f'brief: the product {product!r} has no letters or digits to write about')
    brief = Brief(
        product=product,
        features=_text_list(data, "features"),
        audience=_text(data, "audience", MAX_ITEM_CHARS),
        tone=_text(data, "tone", MAX_ITEM_CHARS),
        must_use=_text_list(data, "must_use"),
        banned=_text_list(data, "banned"),
    )
    patterns = parse_banned(brief.banned)
    hits = find_banned(brief.product, patterns)
    if hits:
        raise BadInputError(
            f"brief: the banned word(s) {', '.join(map(repr, hits))} cover the product name {product!r}; "
            "no ad could name the product: remove them from the banned list"
        )
    for keyword in brief.must_use:
        if not words(keyword):
            raise BadInputError(f"brief: must-use entry {keyword!r} has no letters or digits")
        hits = find_banned(keyword, patterns)
        if hits:
            raise BadInputError(f"brief: {keyword!r} is both required and banned (by {', '.join(map(repr, hits))})")
    return replace(brief, banned_patterns=patterns)


def load_brief(path: Path) -> Brief:
    return brief_from_dict(read_json(Path(path), max_bytes=MAX_BRIEF_BYTES))


def save_brief(path: Path, brief: Brief) -> Path:
    path = Path(path)
    return write_atomic(path, json.dumps(brief.to_dict(), indent=2, ensure_ascii=False) + "\n",
                        f"the brief {path.name}")
