"""Ad formats (field limits) and the plain-text layout the copy editor uses for an ad.

An ad is ``dict[field name, list[str]]``, e.g. ``{"headline": [...], "description": [...], "path": [...]}``; the field
names are the ones ``copy.generate`` streams in its PARTIAL payloads.

Plain-text layout (what the copy editor shows and what ``.txt``/``.md`` files hold)::

    # Headlines
    Fresh beans every week
    Roasted the day we ship
    # Descriptions
    Pick a roast, pick a rhythm. We roast, grind and ship the same day.
    # Paths
    coffee

- A line ``# <heading>`` starts a section; the heading is the field's plural title or its name, any case
  (``# Headlines``, ``# headline``). An unknown heading starts a section whose lines have no role and no limit.
- Every other non-blank line is one item of the current section's field; blank lines are ignored.
- Lines before the first heading belong to the format's first field, so pasting bare lines just works.
- The ``free`` format has a single unlimited field and no headings.

Lengths are counted in characters (code points). Google Ads counts double-width (CJK) characters as two, so the
Google format does too.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from studio.core.errors import BadInputError

HEADING_PREFIX = "# "


@dataclass(frozen=True)
class FieldSpec:
    name: str  # key in the ad dict and in copy.generate payloads
    heading: str  # section title in the plain-text layout
    role: str  # line label prefix: "H" -> H1, H2, ...
    limit: int | None  # max characters per line; None = unlimited
    min_count: int
    max_count: int | None  # None = unlimited


@dataclass(frozen=True)
class AdFormat:
    name: str
    title: str
    fields: tuple[FieldSpec, ...]
    wide_chars_count_double: bool = False

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise BadInputError(f"the {self.title} format has no field {name!r}")

    @property
    def sectioned(self) -> bool:
        return len(self.fields) > 1 or self.fields[0].limit is not None


FORMATS: dict[str, AdFormat] = {
    fmt.name: fmt
    for fmt in (
        AdFormat(
            "google-rsa",
            "Google responsive search ad",
            (
                FieldSpec("headline", "Headlines", "H", 30, 3, 15),
                FieldSpec("description", "Descriptions", "D", 90, 2, 4),
                FieldSpec("path", "Paths", "P", 15, 0, 2),
            ),
            wide_chars_count_double=True,
        ),
        AdFormat(
            "meta",
            "Meta ad",
            (
                FieldSpec("primary", "Primary text", "T", 125, 1, 5),
                FieldSpec("headline", "Headlines", "H", 40, 1, 5),
            ),
        ),
        AdFormat("email", "Email subject", (FieldSpec("subject", "Subjects", "S", 60, 1, None),)),
        AdFormat("free", "Free text", (FieldSpec("text", "Text", "", None, 0, None),)),
    )
}


def get_format(name: str) -> AdFormat:
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise BadInputError(f"unknown ad format {name!r}; choose one of {known}") from None


def char_count(text: str, fmt: AdFormat) -> int:
    if not fmt.wide_chars_count_double:
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def fit_prefix(text: str, limit: int, fmt: AdFormat) -> int:
    """How many characters of ``text`` fit within ``limit`` (where the over-limit part starts)."""
    total = 0
    for i, ch in enumerate(text):
        total += char_count(ch, fmt)
        if total > limit:
            return i
    return len(text)


@dataclass(frozen=True)
class LineInfo:
    """What one document line is: a heading, a blank, or item ``index`` of ``field`` (role e.g. "H3")."""

    kind: str  # "heading" | "blank" | "item"
    field: str | None = None
    index: int = 0
    role: str = ""
    length: int = 0
    limit: int | None = None
    excess: bool = False  # beyond the field's maximum count

    @property
    def over(self) -> bool:
        return self.limit is not None and self.length > self.limit


def _heading_field(line: str, fmt: AdFormat) -> tuple[bool, FieldSpec | None]:
    """(is a heading, its field or None for an unknown heading)."""
    if not fmt.sectioned or not line.startswith(HEADING_PREFIX):
        return False, None
    title = line[len(HEADING_PREFIX):].strip().lower()
    for spec in fmt.fields:
        if title in (spec.heading.lower(), spec.name.lower(), spec.name.lower() + "s"):
            return True, spec
    return True, None


def is_heading(line: str, fmt: AdFormat) -> bool:
    return _heading_field(line, fmt)[0]


def analyse(text: str, fmt: AdFormat) -> list[LineInfo]:
    """One :class:`LineInfo` per line of ``text`` (split on ``\\n``), in order."""
    current: FieldSpec | None = fmt.fields[0]
    counts: dict[str, int] = {}
    infos: list[LineInfo] = []
    for line in text.split("\n"):
        is_heading, spec = _heading_field(line, fmt)
        if is_heading:
            current = spec
            infos.append(LineInfo("heading", spec.name if spec else None))
            continue
        if not line.strip():
            infos.append(LineInfo("blank"))
            continue
        length = char_count(line, fmt)
        if current is None:
            infos.append(LineInfo("item", None, 0, "?", length))
            continue
        index = counts.get(current.name, 0)
        counts[current.name] = index + 1
        excess = current.max_count is not None and index >= current.max_count
        role = f"{current.role}{index + 1}" if current.role else ""
        infos.append(LineInfo("item", current.name, index, role, length, current.limit, excess))
    return infos


def parse_ad(text: str, fmt: AdFormat) -> dict[str, list[str]]:
    """The ad in ``text`` (every field present, possibly empty; lines under unknown headings are dropped)."""
    ad: dict[str, list[str]] = {spec.name: [] for spec in fmt.fields}
    for line, info in zip(text.split("\n"), analyse(text, fmt), strict=True):
        if info.kind == "item" and info.field is not None:
            ad[info.field].append(line)
    return ad


def format_ad(ad: dict[str, list[str]], fmt: AdFormat) -> str:
    """The plain-text layout of ``ad`` (inverse of :func:`parse_ad` for clean input)."""
    unknown = set(ad) - {spec.name for spec in fmt.fields}
    if unknown:
        raise BadInputError(f"the {fmt.title} format has no field(s) {', '.join(sorted(unknown))}")
    def one_line(text: str) -> str:
        return " ".join(str(text).splitlines())

    if not fmt.sectioned:
        return "\n".join(one_line(line) for line in ad.get(fmt.fields[0].name, []))
    blocks = []
    for spec in fmt.fields:
        lines = [one_line(line) for line in ad.get(spec.name, [])]
        blocks.append("\n".join([HEADING_PREFIX + spec.heading, *lines]))
    return "\n".join(blocks)


def problems(ad: dict[str, list[str]], fmt: AdFormat) -> list[str]:
    """Everything that keeps ``ad`` from being accepted by the ad platform, as sentences."""
    found = []
    for spec in fmt.fields:
        lines = ad.get(spec.name, [])
        if len(lines) < spec.min_count:
            found.append(f"{spec.heading}: {len(lines)} of at least {spec.min_count}")
        if spec.max_count is not None and len(lines) > spec.max_count:
            found.append(f"{spec.heading}: {len(lines)}, at most {spec.max_count} allowed")
        if spec.limit is not None:
            for i, line in enumerate(lines):
                n = char_count(line, fmt)
                if n > spec.limit:
                    found.append(f"{spec.role}{i + 1} is {n} characters, limit {spec.limit}")
    return found
