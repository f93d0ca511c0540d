"""Exporting generated ads: CSV that ad tools import, Markdown for people, JSON with the recipe; and reading
each back (so an export can be reopened and round-trip tests can prove nothing is lost).

CSV: one row per ad, one column per line slot, titled as the ad tools title them (Google Ads Editor:
``Headline 1`` .. ``Headline 15``, ``Description 1`` .. ``Description 4``, ``Path 1``, ``Path 2``; Meta:
``Primary Text N``, ``Headline N``; email ``Subject N``; ``Tagline N``; ``Blurb N``). Written as UTF-8 with a
byte-order mark so spreadsheet programs detect the encoding.

Pinning (Google responsive search ads): a headline can be pinned to position 1, 2 or 3 and a description to 1
or 2, so Google always shows it there. The CSV then has a ``Headline N position`` column after ``Headline N``
(and ``Description N position``), as Google Ads Editor writes and reads them; JSON keeps ``pins`` too.

An export is refused (with the reason) when a line is over its limit or a field has more lines than the ad
platform accepts: limits are hard, and an ad tool would reject the file anyway.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.ad_formats import AdFormat, char_count
from studio.core.copy_formats import GENERATION_FORMATS, generation_format
from studio.core.errors import BadInputError
from studio.core.formats.json_file import parse_json
from studio.core.safe_write import write_atomic

Ad = dict[str, list[str]]

COLUMN_TITLES = {
    "headline": "Headline",
    "description": "Description",
    "path": "Path",
    "primary": "Primary Text",
    "subject": "Subject",
    "tagline": "Tagline",
    "blurb": "Blurb",
}
_COLUMN_RE = re.compile(r"^(?P<title>.+?) (?P<index>\d+)$")
_PIN_RE = re.compile(r"^(?P<title>.+?) (?P<index>\d+) position$", re.IGNORECASE)
#: Fields that can be pinned, per format, and how many positions each has.
PIN_POSITIONS = {"google-rsa": {"headline": 3, "description": 2}}
Pins = dict[str, dict[int, int]]  # field -> line index -> position
_MD_META = re.compile(r"^<!-- studio (?P<json>\{.*\}) -->$")
MAX_IMPORT_BYTES = 20 << 20


@dataclass
class AdSet:
    """The ads of one generation (or one edited document) in one format, with the recipe that made them."""

    format: str
    ads: list[Ad]
    recipe: dict[str, Any] = field(default_factory=dict)
    pins: list[Pins] = field(default_factory=list)  # per ad (missing = nothing pinned)

    def pins_of(self, n: int) -> Pins:
        return self.pins[n] if n < len(self.pins) else {}

    @property
    def spec(self) -> AdFormat:
        return generation_format(self.format)


def check_ads(adset: AdSet) -> None:
    """Raise BadInputError naming every line that an ad platform would refuse."""
    fmt = adset.spec
    known = {f.name for f in fmt.fields}
    found = []
    for n, ad in enumerate(adset.ads, 1):
        for name in sorted(set(ad) - known):
            found.append(f"ad {n}: the {fmt.title} format has no field {name!r}")
        for spec in fmt.fields:
            lines = ad.get(spec.name, [])
            if spec.max_count is not None and len(lines) > spec.max_count:
                found.append(f"ad {n}: {len(lines)} {spec.heading.lower()}, at most {spec.max_count} allowed")
            for i, line in enumerate(lines, 1):
                if "\n" in line or "\r" in line:
                    found.append(f"ad {n}: {spec.role}{i} spans several lines")
                if spec.limit is not None and char_count(line, fmt) > spec.limit:
                    found.append(
                        f"ad {n}: {spec.role}{i} is {char_count(line, fmt)} characters, limit {spec.limit}"
                    )
    found += pin_problems(adset)
    if found:
        shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise BadInputError(f"cannot export: {shown}")


def pin_problems(adset: AdSet) -> list[str]:
    """Pins on fields that cannot be pinned, on lines that do not exist, or to positions that do not exist."""
    found = []
    allowed = PIN_POSITIONS.get(adset.format, {})
    for n, ad in enumerate(adset.ads, 1):
        for name, pins in adset.pins_of(n - 1).items():
            if name not in allowed:
                found.append(f"ad {n}: {name} lines cannot be pinned in the {adset.spec.title} format")
                continue
            for index, position in pins.items():
                if not 0 <= index < len(ad.get(name, [])):
                    found.append(f"ad {n}: a pin on {name} {index + 1}, which does not exist")
                elif not 1 <= position <= allowed[name]:
                    found.append(f"ad {n}: {name} {index + 1} pinned to position {position}; "
                                 f"{name}s have positions 1 to {allowed[name]}")
    return found


def csv_columns(adset: AdSet) -> list[tuple[str, str, int, bool]]:
    """(column title, field name, line index, whether it is the line's pin position) for every CSV column."""
    columns = []
    pinnable = PIN_POSITIONS.get(adset.format, {})
    for spec in adset.spec.fields:
        slots = spec.max_count
        if slots is None:
            slots = max([len(ad.get(spec.name, [])) for ad in adset.ads] + [1])
        title = COLUMN_TITLES.get(spec.name, spec.name.title())
        for i in range(slots):
            columns.append((f"{title} {i + 1}", spec.name, i, False))
            if spec.name in pinnable:
                columns.append((f"{title} {i + 1} position", spec.name, i, True))
    return columns


def to_csv(adset: AdSet) -> str:
    check_ads(adset)
    columns = csv_columns(adset)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([title for title, _, _, _ in columns])
    for n, ad in enumerate(adset.ads):
        pins = adset.pins_of(n)
        row = []
        for _, name, index, is_pin in columns:
            lines = ad.get(name, [])
            if is_pin:
                row.append(str(pins.get(name, {}).get(index, "")))
            else:
                row.append(lines[index] if index < len(lines) else "")
        writer.writerow(row)
    return out.getvalue()


def _format_for_titles(titles: set[str]) -> AdFormat:
    """The format whose column titles cover ``titles`` most tightly (e.g. only ``Headline N`` -> Meta)."""
    candidates = []
    for fmt in GENERATION_FORMATS.values():
        names = {COLUMN_TITLES.get(f.name, f.name.title()) for f in fmt.fields}
        if titles <= names:
            candidates.append((len(names), fmt.name))
    if not candidates:
        raise BadInputError(f"the CSV columns ({', '.join(sorted(titles))}) do not match any ad format")
    return generation_format(min(candidates)[1])


def from_csv(text: str, format_name: str | None = None) -> AdSet:
    """Read ads from CSV text; columns that are not line slots (e.g. ``Campaign``) are ignored."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise BadInputError("the CSV file is empty")
    slots: list[tuple[int, str, int]] = []  # (column, title, slot number)
    pin_columns: list[tuple[int, str, int]] = []
    for col, name in enumerate(rows[0]):
        pin = _PIN_RE.match(name.strip())
        match = _COLUMN_RE.match(name.strip())
        if pin:
            pin_columns.append((col, pin["title"], int(pin["index"])))
        elif match:
            slots.append((col, match["title"], int(match["index"])))
    if not slots:
        raise BadInputError("the CSV has no ad columns (expected e.g. 'Headline 1', 'Description 1')")
    fmt = generation_format(format_name) if format_name else _format_for_titles({t for _, t, _ in slots})
    by_title = {COLUMN_TITLES.get(f.name, f.name.title()): f.name for f in fmt.fields}
    ads = []
    pins: list[Pins] = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        ad: Ad = {f.name: [] for f in fmt.fields}
        slot_of: dict[tuple[str, int], int] = {}  # (title, slot number) -> index of the line in its field
        for col, title, number in sorted(slots, key=lambda s: (s[1], s[2])):
            if title in by_title and col < len(row) and row[col]:
                slot_of[(title, number)] = len(ad[by_title[title]])
                ad[by_title[title]].append(row[col])
        ad_pins: Pins = {}
        for col, title, number in pin_columns:
            cell = row[col].strip() if col < len(row) else ""
            if cell and (title, number) in slot_of and title in by_title:
                if not cell.isdigit():
                    raise BadInputError(f"{title} {number} position must be a number, not {cell!r}")
                ad_pins.setdefault(by_title[title], {})[slot_of[(title, number)]] = int(cell)
        ads.append(ad)
        pins.append(ad_pins)
    adset = AdSet(fmt.name, ads, pins=pins if any(pins) else [])
    problems = pin_problems(adset)
    if problems:
        raise BadInputError("; ".join(problems[:3]))
    return adset


def to_markdown(adset: AdSet) -> str:
    check_ads(adset)
    fmt = adset.spec
    product = adset.recipe.get("params", {}).get("brief", {}).get("product", "")
    lines = [f"# {fmt.title}" + (f": {product}" if product else ""), ""]
    meta = {"format": fmt.name, "recipe": adset.recipe}
    lines += [f"<!-- studio {json.dumps(meta, sort_keys=True, ensure_ascii=False)} -->", ""]
    for n, ad in enumerate(adset.ads, 1):
        lines += [f"## Ad {n}", ""]
        for spec in fmt.fields:
            items = ad.get(spec.name, [])
            if not items:
                continue
            lines += [f"### {spec.heading}", ""]
            lines += [f"- {item}" for item in items]
            lines.append("")
    return "\n".join(lines)


def from_markdown(text: str, format_name: str | None = None) -> AdSet:
    """Read the Markdown that :func:`to_markdown` writes (headings ``## Ad N``, ``### <field>``, ``- line``)."""
    recipe: dict[str, Any] = {}
    for line in text.splitlines():
        match = _MD_META.match(line.strip())
        if match:
            meta = parse_json(match["json"], "the Markdown file's Studio comment")
            if not isinstance(meta, dict) or not isinstance(meta.get("format", ""), str) \
                    or not isinstance(meta.get("recipe", {}), dict):
                raise BadInputError("the Markdown file's Studio comment is damaged")
            format_name = format_name or meta.get("format")
            recipe = meta.get("recipe", {})
            break
    if not format_name:
        raise BadInputError("this Markdown file was not written by Studio (no format recorded); pick the format")
    fmt = generation_format(format_name)
    by_heading = {f.heading.lower(): f.name for f in fmt.fields}
    ads: list[Ad] = []
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            ads.append({f.name: [] for f in fmt.fields})
            current = None
        elif line.startswith("### "):
            current = by_heading.get(line[4:].strip().lower())
        elif line.startswith("- ") and ads and current:
            ads[-1][current].append(line[2:])
    return AdSet(fmt.name, ads, recipe)


def to_json(adset: AdSet) -> str:
    check_ads(adset)
    data: dict[str, Any] = {"format": adset.format, "ads": adset.ads, "recipe": adset.recipe}
    if any(adset.pins):
        data["pins"] = [{name: {str(i): p for i, p in pins.items()} for name, pins in ad_pins.items()}
                        for ad_pins in adset.pins]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def from_json(text: str) -> AdSet:
    data = parse_json(text, "the ad export")
    if not isinstance(data, dict) or not isinstance(data.get("ads"), list) or "format" not in data:
        raise BadInputError("not a Studio ad export (needs 'format' and a list of 'ads')")
    ads = []
    for ad in data["ads"]:
        if not isinstance(ad, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in ad.values()
        ):
            raise BadInputError("each ad must map field names to lists of texts")
        ads.append({str(k): list(v) for k, v in ad.items()})
    recipe = data.get("recipe") or {}
    if not isinstance(recipe, dict):
        raise BadInputError("the ad export's 'recipe' must be an object")
    try:
        pins = [{str(name): {int(i): int(p) for i, p in field_pins.items()} for name, field_pins in ad_pins.items()}
                for ad_pins in data.get("pins") or []]
    except (AttributeError, TypeError, ValueError):
        raise BadInputError("'pins' must map each field to {line index: position}") from None
    adset = AdSet(str(data["format"]), ads, recipe, pins)
    check_ads(adset)
    return adset


_WRITERS = {".csv": to_csv, ".md": to_markdown, ".json": to_json}


def export_ads(path: Path, adset: AdSet) -> Path:
    """Write ``adset`` as CSV, Markdown or JSON by the file's extension."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise BadInputError(f"cannot export to {path.suffix or 'a file without extension'}: use .csv, .md or .json")
    text = writer(adset)
    encoding = "utf-8-sig" if path.suffix.lower() == ".csv" else "utf-8"
    return write_atomic(path, text.encode(encoding), f"the ads {path.name}")


def import_ads(path: Path, format_name: str | None = None) -> AdSet:
    """Read an export back (CSV, Markdown or JSON by extension)."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path.name}: no such file")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise BadInputError(f"{path.name} is larger than {MAX_IMPORT_BYTES >> 20} MB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInputError(f"{path.name} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return from_csv(text, format_name)
    if suffix == ".md":
        return from_markdown(text, format_name)
    if suffix == ".json":
        return from_json(text)
    raise BadInputError(f"cannot read {path.suffix or 'files without extension'}: use .csv, .md or .json")
