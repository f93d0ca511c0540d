"""Ad copy from a brief: prompts from the editable templates, lines written under hard constraints, variants
in one batch, every token streamed.

The model answers in a chat: the first user message holds the brief, the format, the framework and the request
for the first field; each further field is a new user turn in the same conversation (so descriptions see the
headlines). Every line the assistant writes starts with a ``-`` marker that Studio feeds itself (the model never
numbers its lines) and ends when the model picks a newline or its end-of-turn token, which the constraints allow
only where the line may end (see :mod:`studio.ml.sampling.constrained`). Studio then feeds the next marker, or
the turn change to the next field. Forced tokens are fed in chunks when every row has some.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from studio.core import copy_prompts
from studio.core.ad_formats import AdFormat, char_count
from studio.core.copy_brief import Brief, words
from studio.core.errors import StudioError
from studio.ml.models.llama import KVCache
from studio.ml.sampling.constrained import (
    CopyConstraints,
    KeywordBonus,
    LineRules,
    LineState,
    normalise_line,
    token_table_for,
)
from studio.ml.sampling.lexicon import Lexicon, load_lexicon
from studio.ml.sampling.text import SamplingParams, sample_row
from studio.ml.text.lm import LanguageModel

Ad = dict[str, list[str]]
PartialSink = Callable[[dict[str, Any]], None]
MARKER = "-"
_SENTINEL = "\x1fSTUDIO\x1f"


@dataclass(frozen=True)
class CopyRequest:
    brief: Brief
    format: AdFormat
    framework: str
    counts: Mapping[str, int]  # lines per field, in the format's field order; 0 = skip the field
    variants: int = 1
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.7, top_p=0.9))
    seed: int = 0
    keyword_bonus: float = 3.0
    repetition_penalty: float = 1.15  # over the tokens of the field so far (not the prompt)
    same_start_penalty: float = 3.0  # subtracted from tokens that would start a line like an earlier one
    end_bias: float = 4.0  # added to the line-end logit as the line nears its limit (0 at half the limit)

    @property
    def plan(self) -> list[tuple[str, int]]:
        return [(f.name, self.counts.get(f.name, 0)) for f in self.format.fields if self.counts.get(f.name, 0)]


def rules_for(fmt: AdFormat, field_name: str) -> LineRules:
    spec = fmt.field(field_name)
    return LineRules(budget=int(spec.limit), no_spaces=field_name == "path")


@lru_cache(maxsize=8)
def _constraints(tokenizer: Any, names: tuple[str, ...], banned: tuple, fmt: AdFormat) -> CopyConstraints:
    lexicon: Lexicon = load_lexicon().edited(add=[w for n in names for w in words(n)])
    return CopyConstraints(token_table_for(tokenizer), lexicon, banned, width=lambda text: char_count(text, fmt),
                           names=[w for n in names for w in n.split()])


def constraints_for(lm: LanguageModel, brief: Brief, fmt: AdFormat) -> CopyConstraints:
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


def transition_text(lm: LanguageModel, system: str, first: str, request: str) -> str:
    """What the chat template puts between the end of an assistant reply and the next assistant reply."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": first},
                {"role": "assistant", "content": _SENTINEL}, {"role": "user", "content": request}]
    rendered = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    if _SENTINEL not in rendered:
        raise StudioError("this model's chat template drops the assistant's reply; it cannot write ad copy")
    return rendered.split(_SENTINEL, 1)[1]


@dataclass
class _Row:
    variant: int
    generator: torch.Generator
    plan: list[tuple[str, int]]
    bonus: KeywordBonus
    ad: Ad
    field_pos: int = 0
    line_index: int = 0
    state: LineState = field(default_factory=LineState)
    forced: deque[int] = field(default_factory=deque)
    history: list[int] = field(default_factory=list)
    starts: set[str] = field(default_factory=set)  # first words of this field's lines so far
    banned_first: set[int] = field(default_factory=set)  # first tokens whose lines led nowhere (strict mode)
    finished: bool = False

    @property
    def field(self) -> str:
        return self.plan[self.field_pos][0]


def _rewind(cache: Any, length: int) -> Any:
    """The cache as it was at ``length`` positions: a preallocated torch cache is cut back in place; an
    onnxruntime cache is immutable (each step makes a new one), so the saved object is still that state."""
    if isinstance(cache, KVCache):
        cache.length = length
    return cache


class RepeatedLineError(StudioError):
    """A line could only end as a copy of an earlier one (raised when duplicates are not tolerated)."""


class Copywriter:
    """Writes the lines of one request; ``on_partial`` receives the streaming payloads, ``cancel`` is called
    before every step (pass ``ctx.check_cancel``).

    A line that equals an earlier line (of any field and variant, or of ``seen``) cannot end while anything else
    fits its limit; when nothing else fits, a batch keeps it and lists it in ``repeated`` (``generate_ads`` then
    writes it again alone), and a single-row writer made with ``strict=True`` backtracks: it starts the line
    again with another first token, and raises :class:`RepeatedLineError` when every start is exhausted.
    """

    def __init__(self, lm: LanguageModel, request: CopyRequest, on_partial: PartialSink | None = None,
                 cancel: Callable[[], None] | None = None, on_line: Callable[[int, int], None] | None = None,
                 seen: Mapping[str, Sequence[str]] | None = None, asked: int | None = None,
                 strict: bool = False) -> None:
        self.lm = lm
        self.request = request
        self.on_partial = on_partial or (lambda payload: None)
        self.cancel = cancel or (lambda: None)
        self.on_line = on_line or (lambda done, total: None)
        self.constraints = constraints_for(lm, request.brief, request.format)
        # one set for all fields: a description that repeats a headline is as useless as a repeated headline
        self.seen: set[str] = {normalise_line(x) for lines in (seen or {}).values() for x in lines}
        tok = lm.tokenizer
        self.marker = tok.encode(MARKER, add_bos=False)
        self.newline = self.constraints.table.newline_id
        brief, fmt, fw = request.brief, request.format, request.framework
        self.system = copy_prompts.system_message(brief, fmt, fw)
        plan = request.plan
        if not plan:
            raise StudioError("nothing to write: every field has 0 lines")
        for name, _ in plan:
            self.constraints.check_budget(rules_for(fmt, name))
        self.first = copy_prompts.first_request(brief, fmt, fw, plan[0][0], asked or plan[0][1])
        self.transitions = [
            tok.encode(transition_text(lm, self.system, self.first,
                                       copy_prompts.field_request(brief, fmt, fw, name, count)), add_bos=False)
            for name, count in plan[1:]
        ]
        self.total_lines = sum(count for _, count in plan) * request.variants
        self.lines_done = 0
        self.strict = strict
        self._start_cache: dict[frozenset[str], np.ndarray] = {}
        self._pieces: dict[str, list[int]] = {}  # first word piece of a line -> tokens
        self.repeated: list[tuple[int, str, int]] = []  # (variant, field, index) kept although repeated

    def prompt_ids(self, reply_so_far: str = "") -> list[int]:
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": self.first}]
        text = self.lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True) + reply_so_far
        return self.lm.tokenizer.encode(text, add_bos=False) + self.marker

    def _room(self) -> int:
        fmt = self.request.format
        lines = sum(count * (fmt.field(name).limit // 2 + 4) for name, count in self.request.plan)
        return lines + sum(len(t) for t in self.transitions) + 16

    def run(self, prompt: list[int] | None = None, variants: Sequence[int] | None = None) -> list[Ad]:
        """The ads of ``variants`` (default all), written as one batch; variant v samples with seed + v."""
        request = self.request
        prompt = prompt or self.prompt_ids()
        rows = [
            _Row(v, torch.Generator().manual_seed(request.seed + v), request.plan,
                 KeywordBonus(self.constraints.table, request.brief.must_use, request.keyword_bonus),
                 {name: [] for name, _ in request.plan})
            for v in (range(request.variants) if variants is None else variants)
        ]
        logits, cache = self.lm.prefill(prompt, max_new_tokens=self._room(), copies=len(rows))
        active = list(rows)
        line_start: tuple[Any, int, torch.Tensor, int] | None = None  # strict: cache, its length, logits, history
        while active:
            self.cancel()
            if self.strict:
                row = active[0]
                if row.state.empty and not row.forced and (line_start is None or line_start[1] != cache.length):
                    line_start = (cache, cache.length, logits.clone(), len(row.history))
                try:
                    feed = [self._step(row, logits[0])]
                except RepeatedLineError:
                    saved_cache, length, saved, written = line_start
                    if len(row.history) <= written:
                        raise
                    row.banned_first.add(row.history[written])  # start the line again, differently
                    del row.history[written:]
                    row.state = LineState()
                    cache, logits = _rewind(saved_cache, length), saved.clone()
                    continue
            else:
                feed = [self._step(row, logits[k]) for k, row in enumerate(active)]
            keep = [k for k, row in enumerate(active) if not row.finished]
            if not keep:
                break
            if len(keep) < len(active):
                cache = cache.select(torch.tensor(keep, device=cache.k.device))
                active = [active[k] for k in keep]
                feed = [feed[k] for k in keep]
            extra = min(len(row.forced) for row in active)
            if extra:
                chunk = [[token, *(row.forced.popleft() for _ in range(extra))] for token, row in zip(feed, active,
                                                                                                       strict=True)]
                logits, cache = self.lm.prefill(chunk, max_new_tokens=self._room(), cache=cache)
            else:
                logits, cache = self.lm.decode_step(feed, cache)
        return [row.ad for row in rows]

    def _step(self, row: _Row, logits: torch.Tensor) -> int:
        """Choose the row's next token (forced or sampled under the constraints); returns the token to feed."""
        if row.forced:
            return row.forced.popleft()
        request = self.request
        rules = rules_for(request.format, row.field)
        if self.strict:
            mask = self.constraints.allowed(row.state, rules, self.seen)
            if row.state.empty and row.banned_first:
                mask[list(row.banned_first)] = False
            if not mask.any():
                raise RepeatedLineError(f"{row.state.text!r} repeats an earlier line and nothing else fits")
        else:
            mask = self.constraints.mask_or_raise(row.state, rules, self.seen)
        scores = logits.numpy().copy()
        row.bonus.apply(scores, row.state)
        if row.state.empty and row.starts:  # vary how lines begin ("Pillar 1: …", "Pillar 2: …")
            scores[self._start_ids(frozenset(row.starts))] -= request.same_start_penalty
        fill = row.state.length / rules.budget
        if fill > 0.5:  # a soft nudge to finish near the limit; the limit itself is the mask's job
            scores[self.constraints.table.end_ids] += request.end_bias * (fill - 0.5) / 0.5
        scores[~mask] = -np.inf
        params = SamplingParams(request.sampling.temperature, request.sampling.top_p, request.sampling.top_k,
                                request.repetition_penalty)
        token = sample_row(torch.from_numpy(scores), params, row.generator, row.history)
        row.history.append(token)
        if not self.constraints.is_end(token):
            self.constraints.advance(row.state, token)
            self._emit(row, done=False)
            return token
        return self._end_line(row)

    def _end_line(self, row: _Row) -> int:
        line = row.state.text.strip()
        row.ad[row.field].append(line)
        if normalise_line(line) in self.seen:
            self.repeated.append((row.variant, row.field, row.line_index))
        self.seen.add(normalise_line(line))
        row.bonus.mark_used(line)
        row.banned_first.clear()
        first = words(line)
        if first:
            row.starts.add(first[0])
        self._emit(row, done=True)
        self.lines_done += 1
        self.on_line(self.lines_done, self.total_lines)
        row.state = LineState()
        row.line_index += 1
        if row.line_index < row.plan[row.field_pos][1]:
            row.forced.extend(self.marker)
            return self.newline
        row.field_pos += 1
        row.line_index = 0
        row.history = []
        row.starts = set()
        if row.field_pos >= len(row.plan):
            row.finished = True
            return self.newline
        row.forced.extend([*self.transitions[row.field_pos - 1][1:], *self.marker])
        return self.transitions[row.field_pos - 1][0]

    def _start_ids(self, starts: frozenset[str]) -> np.ndarray:
        """Tokens that begin a line with one of ``starts`` (the whole word, or its first three letters or more)."""
        cached = self._start_cache.get(starts)
        if cached is None:
            if not self._pieces:
                for i, shape in enumerate(self.constraints.table.shapes):
                    if shape is not None:
                        piece = shape.tail if shape.has_break and not shape.head else shape.head
                        self._pieces.setdefault(piece, []).append(i)
            found = {i for w in starts for k in [*range(3, len(w)), len(w)] for i in self._pieces.get(w[:k], ())}
            cached = np.array(sorted(found), dtype=np.int64)
            self._start_cache[starts] = cached
        return cached

    def _emit(self, row: _Row, done: bool) -> None:
        text = row.state.text.strip() if done else row.state.text
        self.on_partial({"variant": row.variant, "field": row.field, "index": row.line_index, "text": text,
                         "done": done})


RETRIES = 4


def generate_ads(lm: LanguageModel, request: CopyRequest, on_partial: PartialSink | None = None,
                 cancel: Callable[[], None] | None = None, on_line: Callable[[int, int], None] | None = None,
                 batch: int = 0) -> list[Ad]:
    """``request.variants`` ads, each with ``request.counts`` lines per field, ``batch`` variants at a time
    (0 = all at once). A line that could only repeat another line of its field is written again on its own,
    backtracking until it differs; only when no different line fits the limit at all does the repeat stay."""
    writer = Copywriter(lm, request, on_partial, cancel, on_line)
    batch = batch or request.variants
    ads: list[Ad] = []
    for start in range(0, request.variants, batch):
        ads += writer.run(variants=range(start, min(request.variants, start + batch)))
    for variant, name, index in writer.repeated:
        lines = ads[variant][name]
        everywhere = [line for ad in ads for field_lines in ad.values() for line in field_lines]
        for attempt in range(1, RETRIES + 1):
            retry = replace(request, seed=request.seed + 7919 * attempt + variant)  # a fresh start each time

            def stream(payload: dict[str, Any], variant: int = variant, index: int = index) -> None:
                if on_partial:
                    on_partial({**payload, "variant": variant, "index": index})

            try:
                lines[index] = regenerate_line(lm, retry, name, index, lines, stream, cancel, avoid=everywhere,
                                               strict=True)
                break
            except RepeatedLineError:
                continue
    return ads


def regenerate_line(lm: LanguageModel, request: CopyRequest, field_name: str, index: int,
                    existing: Sequence[str], on_partial: PartialSink | None = None,
                    cancel: Callable[[], None] | None = None, avoid: Sequence[str] = (),
                    strict: bool = False) -> str:
    """A new line for slot ``index`` of ``field_name``, different from every line in ``existing`` and
    ``avoid``; the other existing lines are shown to the model as the lines written so far."""
    single = replace(request, counts={field_name: 1}, variants=1)
    writer = Copywriter(lm, single, on_partial, cancel, seen={field_name: [*existing, *avoid]},
                        asked=max(1, len(existing)), strict=strict)
    others = [line for i, line in enumerate(existing) if i != index and line.strip()]
    so_far = "".join(f"{MARKER} {line}\n" for line in others)
    return writer.run(writer.prompt_ids(so_far))[0][field_name][0]
