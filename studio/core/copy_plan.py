"""Planning an ad before writing it: every line slot gets an angle taken from the brief (the product name, one
feature turned into a benefit, the audience, a must-use word, an offer or call to action, the tone), and every
slot has a grounded extractive line to fall back on when no written candidate passes the checks.

Google's responsive search ad guidance asks for keywords and features in the headlines; the plan cycles through
the angles so a full RSA covers each feature, the audience, the offer and the product name at least once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from studio.core.ad_formats import AdFormat, char_count
from studio.core.copy_brief import Brief, find_banned, words
from studio.core.copy_checks import dangling
from studio.core.word_forms import NO_END_WORDS, STOPWORDS

#: Angle kinds, in the order a headline plan uses them.
KINDS = ("product", "feature", "audience", "must-use", "offer", "tone")

ANGLE_LABELS = {"product": "product name", "feature": "feature as a benefit", "audience": "audience",
                "must-use": "must-use words", "offer": "offer / call to action", "tone": "tone",
                "keyword": "keyword path"}


@dataclass(frozen=True)
class Angle:
    kind: str  # one of KINDS, or "keyword" for paths
    text: str  # the brief's words this slot is about ("" for the offer)

    @property
    def label(self) -> str:
        """What the editor shows beside the line, e.g. "feature: USB-C charging"."""
        title = ANGLE_LABELS.get(self.kind, self.kind)
        return f"{title}: {self.text}" if self.text and self.kind != "product" else title

    def instruction(self, product: str) -> str:
        """The angle as the request to the model says it."""
        if self.kind == "product":
            return f"the product name, {product}"
        if self.kind == "feature":
            return f"the benefit of this feature: {self.text}"
        if self.kind == "audience":
            return f"why it suits {self.text}"
        if self.kind == "must-use":
            return f"{product}, using the words \"{self.text}\""
        if self.kind == "offer":
            return f"a call to action to try {product}"
        return f"{product}, in a {self.text} tone"


@dataclass(frozen=True)
class Slot:
    field: str
    index: int
    angle: Angle


def _angles(brief: Brief) -> list[Angle]:
    found = [Angle("product", brief.product)]
    found += [Angle("feature", f) for f in brief.features]
    if brief.audience:
        found.append(Angle("audience", brief.audience))
    found += [Angle("must-use", m) for m in brief.must_use]
    found.append(Angle("offer", ""))
    if brief.tone:
        found.append(Angle("tone", brief.tone))
    return found


def plan_ad(brief: Brief, fmt: AdFormat, counts: Mapping[str, int], variant: int = 0) -> list[Slot]:
    """One angle per slot of every field with lines to write. Fields take the angles in turn, starting at a
    different place per field and per variant, so variants and fields do not all open the same way."""
    angles = _angles(brief)
    slots = []
    for offset, spec in enumerate(fmt.fields):
        count = counts.get(spec.name, 0)
        if spec.name == "path":
            keywords = path_keywords(brief)
            slots += [Slot(spec.name, i, Angle("keyword", keywords[i % len(keywords)] if keywords else ""))
                      for i in range(count)]
            continue
        start = (variant + offset) % len(angles) if offset or variant else 0
        slots += [Slot(spec.name, i, angles[(start + i) % len(angles)]) for i in range(count)]
    return slots


def line_opening(brief: Brief, angle: Angle, headline_like: bool) -> str:
    """Words from the brief a candidate for this angle may be started with, so it is grounded from its first
    word ("" where the model should choose: the offer, the tone)."""
    shape = title_case if headline_like else sentence_case
    if angle.kind == "product":
        return brief.product
    if angle.kind == "must-use":
        return shape(angle.text)
    if angle.kind in ("feature", "audience"):
        return shape(" ".join(angle.text.split()[:2]))
    return ""


def path_keywords(brief: Brief) -> list[str]:
    """Keywords of the brief for display paths, best first: the must-use entries and the product's name (words
    joined by hyphens), then the content words of the features and the audience."""
    found: list[str] = []
    for text in (*brief.must_use, brief.product):
        joined = "-".join(w for w in words(text) if w.isalnum())
        if joined and joined not in found:
            found.append(joined)
    found += [w for w in words(brief.product) if len(w) > 3 and w not in STOPWORDS and w not in found]
    for text in (*brief.features, brief.audience):
        feature_words = words(text)
        if len(feature_words) > 2 and feature_words[0].endswith("s"):
            feature_words = feature_words[1:]  # "runs payroll …", "feeds families …": the verb is no keyword
        for w in feature_words:
            if w not in STOPWORDS and len(w) > 3 and not w.isdigit() and w not in found:
                found.append(w)
    return found


def title_case(text: str) -> str:
    """Title case that keeps the brief's own casing of words ("USB-C", "iPhone") and lowers small words."""
    small = {"a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "at", "by", "from"}
    out = []
    for i, w in enumerate(text.split()):
        if any(ch.isupper() for ch in w) or not w[:1].isalpha() or (i and w in small):
            out.append(w)
        else:
            out.append(w[:1].upper() + w[1:])
    return " ".join(out)


def sentence_case(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text


def _phrases(text: str) -> list[str]:
    """``text`` and its shorter complete leading phrases: cut only before a function word, a participle or after
    a comma, so the phrase ends on a content word ("freshly roasted beans delivered every two weeks" ->
    "freshly roasted beans delivered", "freshly roasted beans"), never mid-word."""
    tokens = text.split()
    found = [text]
    for k in range(len(tokens) - 1, 0, -1):
        nxt = re.sub(r"\W", "", tokens[k].casefold())
        head = " ".join(tokens[:k]).rstrip(",;:")
        clause = nxt in NO_END_WORDS or (k >= 2 and nxt.endswith(("ed", "ing")))  # "… beans | delivered …"
        if (clause or tokens[k - 1].endswith(",")) and not dangling(head):
            found.append(head)
    return found


def extractive_lines(brief: Brief, angle: Angle, field: str, limit: int, fmt: AdFormat) -> list[str]:
    """Grounded lines for a slot, built only from the brief's words and a few plain connectives, best first;
    each fits ``limit``, ends cleanly and holds no banned word."""
    product = brief.product
    headline_like = limit <= 60
    shape = title_case if headline_like else sentence_case
    candidates: list[str] = []
    if angle.kind == "feature":
        for phrase in _phrases(angle.text):
            candidates += [shape(phrase), f"{product}: {shape(phrase)}", f"{shape(phrase)} with {product}"]
    elif angle.kind == "audience":
        candidates += [f"{product} for {shape(angle.text)}", shape(f"made for {angle.text}"),
                       shape(f"built for {angle.text}"), f"For {angle.text}"]
    elif angle.kind == "must-use":
        candidates += [f"{shape(angle.text)} from {product}", f"{product}: {shape(angle.text)}",
                       f"{shape(angle.text)} by {product}", shape(angle.text)]
    elif angle.kind == "offer":
        end = "" if headline_like else "."
        for verb, tail in (("Try", " Today"), ("Get", " Now"), ("Discover", ""), ("Start With", ""),
                           ("Choose", ""), ("Meet", "")):
            candidates.append(shape(f"{verb} {product}{tail if headline_like else tail.lower()}") + end)
    elif angle.kind == "keyword":
        candidates += [angle.text]
    if not headline_like and brief.features:
        joined = ". ".join(sentence_case(f) for f in brief.features[:2]) + "."
        candidates += [f"{product}: {brief.features[0]}.", joined, f"{sentence_case(brief.features[0])}."]
    candidates += [product, f"Discover {product}"]
    found = []
    for line in candidates:
        line = " ".join(line.split())
        if (line and line not in found and char_count(line, fmt) <= limit and not dangling(line)
                and not find_banned(line, brief.banned_patterns)):
            found.append(line)
    return found


def path_lines(brief: Brief, count: int, limit: int) -> list[str]:
    """Display paths: one keyword, or two joined by a hyphen, each within ``limit``, from the brief's words."""
    keywords = [w for w in path_keywords(brief) if not find_banned(w, brief.banned_patterns)]
    found: list[str] = []
    for text in keywords:
        if len(found) >= count:
            break
        if len(text) <= limit and text not in found:
            found.append(text)
    return found


def must_use_too_long(brief: Brief, fmt: AdFormat, counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """(must-use entry, longest limit) for entries longer than every field being written."""
    limits = [spec.limit for spec in fmt.fields if counts.get(spec.name, 0) and spec.limit and spec.name != "path"]
    if not limits:
        return []
    longest = max(limits)
    return [(m, longest) for m in brief.must_use if char_count(m, fmt) > longest]


def must_use_notes(brief: Brief, fmt: AdFormat, counts: Mapping[str, int]) -> list[str]:
    """Notes for must-use entries too long for some of the fields being written (they go into the others)."""
    fields = [spec for spec in fmt.fields if counts.get(spec.name, 0) and spec.limit and spec.name != "path"]
    notes = []
    for entry in brief.must_use:
        short = [spec.heading.lower() for spec in fields if char_count(entry, fmt) > spec.limit]
        if short and len(short) < len(fields):
            notes.append(f"The must-use words {entry!r} are longer than a line of the {', '.join(short)}: "
                         "they will appear in the other lines only")
    return notes


_NAME_SYMBOLS = re.compile(r"[^\w\s'&.-]")


def restore_names(line: str, brief: Brief, limit: int, fmt: AdFormat) -> str:
    """Put back the symbols of a brief name the decoder cannot write (emoji: "Sakura 桜 Tea" -> "Sakura 桜 Tea ☕")
    where the line holds the name without them and the whole name still fits the limit."""
    for name in (brief.product, *brief.must_use):
        plain = " ".join(_NAME_SYMBOLS.sub(" ", name).split())
        if plain == name or not plain or plain not in line or name in line:
            continue
        restored = line.replace(plain, name, 1)
        if char_count(restored, fmt) <= limit:
            line = restored
    return line


def slots_by_field(slots: Sequence[Slot]) -> dict[str, list[Slot]]:
    found: dict[str, list[Slot]] = {}
    for slot in slots:
        found.setdefault(slot.field, []).append(slot)
    return found
