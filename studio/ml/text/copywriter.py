"""Ad copy from a brief: plan the ad, over-generate candidates for every slot, filter, rerank, choose.

1. **Plan** (:mod:`studio.core.copy_plan`): every line slot gets an angle from the brief (product name, a
   feature as a benefit, the audience, a must-use word, an offer, the tone).
2. **Over-generate** (:mod:`studio.ml.text.candidates`): ``request.candidates`` lines per slot, all slots of a
   field in one batched decode after one shared prompt (the few-shot examples of ``resources/prompts/slots`` and
   the brief), each row then fed its slot's request. Limits, banned words and whole words are enforced while
   decoding (:mod:`studio.ml.sampling.constrained`): the character budget chooses among complete lines, it never
   cuts one.
3. **Filter and rerank** (:mod:`studio.ml.text.rerank`): the hard checks of :mod:`studio.core.copy_checks` drop
   broken candidates; the rest are scored on relevance, fluency and pointwise mutual information and picked with
   maximal marginal relevance. The ad must hold every must-use entry.
4. **Fall back**: a slot with no surviving candidate gets a grounded extractive line from the brief's own words,
   marked as such (``fallback``) so the editor can say so.

Lines stream while they are written: the first candidate of each slot is sent as it grows (``done`` False), and
the chosen line when the field is decided (``done`` True, with its ``angle`` and ``fallback`` flag).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from studio.core import copy_prompts
from studio.core.ad_formats import AdFormat, char_count
from studio.core.copy_brief import Brief, words
from studio.core.copy_checks import (
    BriefVocabulary,
    check_line,
    contains_phrase,
    invented_offers,
    looks_banned,
    made_up_numbers,
    must_use_missing,
    normalised,
    repeated_words,
)
from studio.core.copy_plan import (
    Angle,
    Slot,
    extractive_lines,
    line_opening,
    must_use_too_long,
    path_lines,
    plan_ad,
    restore_names,
)
from studio.core.errors import BadInputError, StudioError
from studio.ml.sampling.constrained import CopyConstraints, LineRules, token_table_for
from studio.ml.sampling.lexicon import Lexicon, load_lexicon
from studio.ml.sampling.text import SamplingParams
from studio.ml.text.candidates import RowJob, sample_lines
from studio.ml.text.rerank import Scored, add_pmi, mmr_pick, relevance

Ad = dict[str, list[str]]
PartialSink = Callable[[dict[str, Any]], None]
#: Sees every slot's surviving candidates, scored and best first: (variant, field, angle, pool). Self-training
#: (:mod:`studio.ml.train.copy_selftrain`) keeps the best of them as examples of the job done well.
PoolSink = Callable[[int, str, Angle, list[Scored]], None]
MIN_END_LOGPROB = math.log(0.002)  # a line the model itself would end with less than 0.2 % is dropped as cut
SLACK = 1.2  # candidates decode with this much more room than the limit; those that end past the limit are dropped
HEADLINE_LIKE = 60  # fields up to this limit are written in title case, longer ones as sentences
MIN_WORDS_LEFT = 1000  # a banned list that leaves fewer dictionary words than this is refused
PMI_PER_SLOT = 2  # candidates per slot whose generic likelihood is measured (the best by relevance + fluency)


@dataclass(frozen=True)
class CopyRequest:
    brief: Brief
    format: AdFormat
    framework: str
    counts: Mapping[str, int]  # lines per field, in the format's field order; 0 = skip the field
    variants: int = 1
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.7, top_p=0.9))
    seed: int = 0
    # lines sampled per slot (two more per extra slot of the same angle), the best kept. 6 rather than 4: half the
    # slots filled from the brief (fallback lines 83 -> 39 of 900 on the dev briefs), the same specificity and
    # fluency, Google RSA 5.7 -> 6.9 s (slowest 8.9 s) on this 2-core CPU (`studio eval copy --candidates N`)
    candidates: int = 6
    locked: Mapping[str, Mapping[int, str]] = field(default_factory=dict)  # field -> slot index -> kept line
    avoid: tuple[str, ...] = ()  # lines the new ones must differ from (the line being rewritten)
    keyword_bonus: float = 2.0  # added to tokens that spell a must-use entry, in that entry's slots

    @property
    def plan(self) -> list[tuple[str, int]]:
        return [(f.name, self.counts.get(f.name, 0)) for f in self.format.fields if self.counts.get(f.name, 0)]


@dataclass(frozen=True)
class WrittenLine:
    text: str
    angle: str = ""  # what the slot was about, e.g. "feature as a benefit: USB-C charging"
    fallback: bool = False  # an extractive line from the brief: no written candidate passed the checks
    locked: bool = False


@dataclass
class WrittenAd:
    lines: dict[str, list[WrittenLine]]

    def texts(self) -> Ad:
        return {name: [line.text for line in lines] for name, lines in self.lines.items()}

    def all_texts(self) -> list[str]:
        return [line.text for lines in self.lines.values() for line in lines]


def rules_for(fmt: AdFormat, field_name: str) -> LineRules:
    spec = fmt.field(field_name)
    return LineRules(budget=int(spec.limit), no_spaces=field_name == "path")


@lru_cache(maxsize=8)
def _constraints(tokenizer: Any, names: tuple[str, ...], banned: tuple, fmt: AdFormat) -> CopyConstraints:
    lexicon: Lexicon = load_lexicon().edited(add=[w for n in names for w in words(n)])
    return CopyConstraints(token_table_for(tokenizer), lexicon, banned, width=lambda text: char_count(text, fmt),
                           names=[w for n in names for w in n.split()])


def constraints_for(lm: Any, brief: Brief, fmt: AdFormat) -> CopyConstraints:
    """The constraints of one brief and format (cached: the same brief again costs nothing)."""
    names = (brief.product, *brief.features, *brief.must_use, brief.audience)
    return _constraints(lm.tokenizer, names, brief.banned_patterns, fmt)


def foreign_brief_note(brief: Brief) -> str:
    """A note when most of the brief's words are not English (the word list and the model are English)."""
    found = words(" ".join((brief.product, *brief.features, brief.audience)))
    if len(found) < 3:
        return ""
    lexicon = load_lexicon()
    known = sum(1 for w in found if w in lexicon or w.isdigit())
    if known / len(found) >= 0.5:
        return ""
    return ("The brief does not look English. The model and its word list are English: the copy will be in "
            "English, using your brief's own words where it can.")


def check_request(request: CopyRequest) -> None:
    """Refuse, with the reason, a request no ad can satisfy (before the model loads or runs)."""
    if not request.plan:
        raise BadInputError("nothing to write: every field has 0 lines")
    for entry, limit in must_use_too_long(request.brief, request.format, request.counts):
        raise BadInputError(
            f"the must-use words {entry!r} are {len(entry)} characters, longer than any line of this format "
            f"(at most {limit}): shorten them or choose a format with longer lines; your brief is kept"
        )


def _chat_ids(lm: Any, messages: list[dict[str, str]]) -> list[int]:
    text = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    return lm.tokenizer.encode(text, add_bos=False)


def _split_prompt(lm: Any, messages: list[dict[str, str]], request_text: str) -> tuple[list[int], list[int]]:
    """(shared prefix, this slot's tail): the chat cut where the slot's own words (its angle) start, so the
    request's wording is part of the prefix every slot shares and each tail is only the angle and the turn end."""
    text = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    cut = text.rindex(request_text)
    return (lm.tokenizer.encode(text[:cut], add_bos=False), lm.tokenizer.encode(text[cut:], add_bos=False))


def slot_prompt_ids(lm: Any, brief: Brief, fmt: AdFormat, name: str, angle: Angle,
                    framework: str = "none") -> tuple[list[int], list[int]]:
    """The tokens one slot's candidates are written after: (prefix shared by the field's slots, the slot's tail)."""
    messages = copy_prompts.slot_messages(brief, fmt, name, angle, framework)
    return _split_prompt(lm, messages, angle.instruction(brief.product))


class _FieldWriter:
    """Writes the slots of one field of one ad: one batched decode, filters, scores, MMR, fallbacks."""

    def __init__(self, lm: Any, request: CopyRequest, constraints: CopyConstraints,
                 cancel: Callable[[], None], on_partial: PartialSink, on_pool: PoolSink | None = None) -> None:
        self.lm, self.request, self.constraints = lm, request, constraints
        self.cancel, self.on_partial, self.on_pool = cancel, on_partial, on_pool
        self.vocabulary = BriefVocabulary.of(request.brief)
        self._generic: dict[str, list[int]] = {}

    def prompt(self, name: str, angle: Angle) -> tuple[list[int], list[int]]:
        request = self.request
        return slot_prompt_ids(self.lm, request.brief, request.format, name, angle, request.framework)

    def generic_prompt(self, name: str) -> list[int]:
        """The same kind of request without the brief: what the model writes for any product."""
        if name not in self._generic:
            limit = self.request.format.field(name).limit
            messages = [{"role": "system", "content": copy_prompts.render("slots/system.txt", {})},
                        {"role": "user", "content": f"Write one line of ad copy of at most {limit} characters."}]
            self._generic[name] = _chat_ids(self.lm, messages)
        return self._generic[name]

    def candidates(self, variant: int, name: str, slots: Sequence[Slot]) -> list[list[Scored]]:
        """Surviving candidates of every slot, scored (relevance, fluency, PMI), best first. Slots with the same
        angle share one pool (sampled once, one more candidate per extra slot); MMR then keeps their picks
        apart."""
        request = self.request
        limit = int(request.format.field(name).limit)
        rules = replace(rules_for(request.format, name), budget=int(limit * SLACK))
        headline_like = limit <= HEADLINE_LIKE
        groups: dict[Angle, list[int]] = {}
        for pos, slot in enumerate(slots):
            groups.setdefault(slot.angle, []).append(pos)
        prefix: list[int] = []
        jobs: list[RowJob] = []
        owner: list[Angle] = []
        first_row: dict[int, int] = {}  # row -> slot position it previews
        for angle, positions in groups.items():
            prefix, tail = self.prompt(name, angle)
            keywords = (angle.text,) if angle.kind == "must-use" else ()
            openings = _openings(request.brief, angle, headline_like)
            count = request.candidates + len(positions) - 1
            base = request.seed * 7919 + variant * 1009 + slots[positions[0]].index * 31
            for c in range(count):
                if c < len(positions):
                    first_row[len(jobs)] = positions[c]
                jobs.append(RowJob(tuple(tail), rules, base + c, keywords,
                                   self._tokens(openings[c]) if c < len(openings) else (), limit))
                owner.append(angle)

        def preview(row: int, text: str) -> None:
            if row in first_row:
                slot = slots[first_row[row]]
                self.on_partial({"variant": variant, "field": name, "index": slot.index, "text": text,
                                 "done": False})

        found = sample_lines(self.lm, prefix, jobs, self.constraints, request.sampling, self.cancel, preview,
                             request.keyword_bonus)
        by_angle: dict[Angle, list[Scored]] = {angle: [] for angle in groups}
        for cand in found:
            angle = owner[cand.row]
            cand.text = restore_names(cand.text, request.brief, limit, request.format)
            if cand.end_logprob < MIN_END_LOGPROB:  # the budget, not the model, ended it: a cut line
                continue
            report = check_line(cand.text, name, request.brief, request.format, self.vocabulary)
            if not cand.text or report.hard or not report.on_brief:  # off-brief lines are never kept
                continue
            if (looks_banned(cand.text, request.brief, self.vocabulary) or made_up_numbers(cand.text, request.brief)
                    or repeated_words(cand.text, request.brief) or invented_offers(cand.text, request.brief)):
                continue
            if any(c.text == cand.text for c in by_angle[angle]):
                continue
            by_angle[angle].append(Scored(cand.text, cand.tokens, cand.fluency,
                                          relevance(cand.text, self.vocabulary, angle)))
        pools = list(by_angle.values())
        add_pmi(self.lm, self.generic_prompt(name), pools, PMI_PER_SLOT)
        for angle, pool in by_angle.items():
            pool.sort(key=lambda c: c.score, reverse=True)
            if self.on_pool is not None:
                self.on_pool(variant, name, angle, pool)
        return [by_angle[slot.angle] for slot in slots]

    def _tokens(self, text: str) -> tuple[int, ...]:
        return tuple(self.lm.tokenizer.encode(text, add_bos=False)) if text else ()

    def fallback(self, name: str, slot: Slot, used: set[str]) -> WrittenLine | None:
        """An extractive line for the slot's angle, or failing that for any angle of the brief."""
        request = self.request
        limit = request.format.field(name).limit
        angles = [slot.angle, *(s.angle for s in plan_ad(request.brief, request.format, {name: 1}))]
        angles += [Angle(kind, text) for kind, text in (("offer", ""), ("audience", request.brief.audience))
                   if text or kind == "offer"]
        angles += [Angle("feature", f) for f in request.brief.features]
        for angle in angles:
            for line in extractive_lines(request.brief, angle, name, limit, request.format):
                if normalised(line) not in used:
                    return WrittenLine(line, slot.angle.label, fallback=True)
        return None


def _openings(brief: Brief, angle: Angle, headline_like: bool) -> list[str]:
    """How the first candidates of a slot start (the rest start as the model likes): the angle's own words, the
    product's name, the angle's first word."""
    first = line_opening(brief, angle, headline_like)
    found = [first, brief.product, first.split()[0] if first else ""]
    return [text if text not in found[:i] else "" for i, text in enumerate(found)]


def _locked_lines(request: CopyRequest, name: str) -> dict[int, str]:
    return {int(i): str(t) for i, t in (request.locked.get(name) or {}).items()}


def write_ads(lm: Any, request: CopyRequest, on_partial: PartialSink | None = None,
              cancel: Callable[[], None] | None = None, on_line: Callable[[int, int], None] | None = None,
              variants: Sequence[int] | None = None, on_pool: PoolSink | None = None) -> list[WrittenAd]:
    """The ads of ``variants`` (default all), each planned, over-generated, filtered and reranked."""
    check_request(request)
    sink = on_partial or (lambda payload: None)
    stop = cancel or (lambda: None)
    progress = on_line or (lambda done, total: None)
    constraints = constraints_for(lm, request.brief, request.format)
    if len(constraints.lexicon) < MIN_WORDS_LEFT:
        raise BadInputError(
            f"the banned words ({', '.join(request.brief.banned)}) rule out all but {len(constraints.lexicon)} words "
            "of the dictionary, too few to write with: ban fewer or more specific words (a word* pattern bans every "
            "word it starts); your brief is kept"
        )
    for name, _ in request.plan:
        if name != "path":
            constraints.check_budget(rules_for(request.format, name))
    writer = _FieldWriter(lm, request, constraints, stop, sink, on_pool)
    chosen_variants = list(range(request.variants) if variants is None else variants)
    total = sum(count for _, count in request.plan) * len(chosen_variants)
    done = 0
    ads = []
    for variant in chosen_variants:
        slots = plan_ad(request.brief, request.format, request.counts, variant)
        ad = WrittenAd({name: [] for name, _ in request.plan})
        pools_by_field: dict[str, tuple[list[Slot], list[list[Scored]]]] = {}
        for name, _ in request.plan:
            stop()
            field_slots = [s for s in slots if s.field == name]
            lines = _write_field(writer, variant, name, field_slots, ad, pools_by_field)
            ad.lines[name] = lines
            for index, line in enumerate(lines):
                sink({"variant": variant, "field": name, "index": index, "text": line.text, "done": True,
                      "angle": line.angle, "fallback": line.fallback})
            done += len(lines)
            progress(done, total)
        _cover_must_use(writer, ad, pools_by_field, variant, sink)
        ads.append(ad)
    return ads


def _write_field(writer: _FieldWriter, variant: int, name: str, slots: list[Slot], ad: WrittenAd,
                 pools_by_field: dict[str, tuple[list[Slot], list[list[Scored]]]]) -> list[WrittenLine]:
    request = writer.request
    locked = _locked_lines(request, name)
    others = [*ad.all_texts(), *request.avoid]
    if name == "path":
        keywords = path_lines(request.brief, len(slots), request.format.field(name).limit)
        free = iter(k for k in keywords if k not in locked.values())
        return [WrittenLine(locked[s.index], s.angle.label, locked=True) if s.index in locked
                else WrittenLine(next(free, request.brief.product.split()[0][:15]), s.angle.label) for s in slots]
    open_slots = [s for s in slots if s.index not in locked]
    pools = writer.candidates(variant, name, open_slots) if open_slots else []
    pools_by_field[name] = (open_slots, pools)
    picks = mmr_pick(pools, taken=list(locked.values()), blocked=others)
    leftovers = [c for pool in pools for c in pool if c not in picks]
    lines: list[WrittenLine] = []
    used = {normalised(t) for t in (*others, *locked.values(), *(p.text for p in picks if p is not None))}
    pick_of = dict(zip((s.index for s in open_slots), picks, strict=True))
    for slot in slots:
        if slot.index in locked:
            lines.append(WrittenLine(locked[slot.index], slot.angle.label, locked=True))
            continue
        pick = pick_of[slot.index]
        if pick is None and leftovers:  # another slot's spare candidate, if it still adds something
            taken = [line.text for line in lines] + list(locked.values())
            pick = mmr_pick([leftovers], taken=taken, blocked=[*others, *(p.text for p in picks if p)])[0]
            if pick is not None:
                leftovers.remove(pick)
        line = WrittenLine(pick.text, slot.angle.label) if pick is not None else writer.fallback(name, slot, used)
        if line is None:  # nothing written passed and nothing from the brief fits: the slot stays empty
            continue
        used.add(normalised(line.text))
        lines.append(line)
    if not lines:
        limit = request.format.field(name).limit
        banned = ", ".join(request.brief.banned) or "none"
        raise BadInputError(
            f"no {name} of at most {limit} characters passes the checks for this brief (banned words: {banned}): "
            "remove some banned words or give the product more words to work with; your brief is kept"
        )
    return lines


def _cover_must_use(writer: _FieldWriter, ad: WrittenAd, pools_by_field: dict[str, tuple[list[Slot],
                    list[list[Scored]]]], variant: int, sink: PartialSink) -> None:
    """Put every must-use entry into the ad: swap in the best candidate that holds it, or an extractive line."""
    request = writer.request
    for entry in must_use_missing(ad.texts(), request.brief):
        best: tuple[float, str, int, Scored] | None = None
        for name, (slots, pools) in pools_by_field.items():
            lines = ad.lines[name]
            used = {normalised(t) for t in ad.all_texts()}
            for slot, pool in zip(slots, pools, strict=True):
                if slot.index >= len(lines) or not _replaceable(lines[slot.index], request.brief):
                    continue
                for cand in pool:
                    fits = normalised(cand.text) not in used and contains_phrase([cand.text], entry)
                    if fits and (best is None or cand.score > best[0]):
                        best = (cand.score, name, slot.index, cand)
        if best is not None:
            _, name, index, cand = best
            replacement = WrittenLine(cand.text, Angle("must-use", entry).label)
        else:
            name, index, replacement = _extractive_must_use(writer, ad, entry)
            if replacement is None:
                continue
        ad.lines[name][index] = replacement
        sink({"variant": variant, "field": name, "index": index, "text": replacement.text, "done": True,
              "angle": replacement.angle, "fallback": replacement.fallback})


def _replaceable(line: WrittenLine, brief: Brief) -> bool:
    """May this line give its slot to a must-use line? Not if the user locked it or it carries a must-use entry."""
    return not line.locked and not any(contains_phrase([line.text], m) for m in brief.must_use)


def _extractive_must_use(writer: _FieldWriter, ad: WrittenAd, entry: str) -> tuple[str, int, WrittenLine | None]:
    request = writer.request
    angle = Angle("must-use", entry)
    for name, lines in sorted(ad.lines.items(), key=lambda item: -len(item[1])):  # the field with most lines
        if name == "path" or not lines:
            continue
        spec = request.format.field(name)
        unlocked = [i for i, line in enumerate(lines) if _replaceable(line, request.brief)]
        if not unlocked:
            continue
        used = {normalised(t) for t in ad.all_texts()}
        for text in extractive_lines(request.brief, angle, name, spec.limit, request.format):
            if normalised(text) not in used and contains_phrase([text], entry):
                return name, unlocked[-1], WrittenLine(text, angle.label, fallback=True)
    return "", 0, None


def generate_ads(lm: Any, request: CopyRequest, on_partial: PartialSink | None = None,
                 cancel: Callable[[], None] | None = None, on_line: Callable[[int, int], None] | None = None,
                 batch: int = 0) -> list[Ad]:
    """The texts of :func:`write_ads` (``batch`` is accepted for callers that size batches; every field of every
    variant is one batched decode already)."""
    del batch
    return [ad.texts() for ad in write_ads(lm, request, on_partial, cancel, on_line)]


def regenerate_line(lm: Any, request: CopyRequest, field_name: str, index: int, existing: Sequence[str],
                    on_partial: PartialSink | None = None, cancel: Callable[[], None] | None = None,
                    variant: int = 0) -> WrittenLine:
    """A new line for slot ``index`` of ``field_name`` (its planned angle), different from every line in
    ``existing``; the other existing lines are kept (locked) and count for diversity."""
    counts = {field_name: max(len(existing), index + 1)}
    locked = {field_name: {i: line for i, line in enumerate(existing) if i != index and line.strip()}}
    single = replace(request, counts=counts, variants=1, locked=locked, avoid=tuple(existing),
                     seed=request.seed + 104729 * (1 + sum(map(len, existing))))
    written = write_ads(lm, single, on_partial, cancel, variants=[variant])[0]
    line = written.lines[field_name][index]
    if normalised(line.text) in {normalised(t) for t in existing}:
        raise StudioError(f"no new line of at most {request.format.field(field_name).limit} characters differs "
                          "from the existing ones")
    return line
