"""Constrained decoding for ad copy: hard limits enforced on the token distribution, never by cutting text.

At every step :meth:`CopyConstraints.allowed` returns the tokens that may come next in the current line; every
other token is masked before sampling. A token is allowed only if

* **budget**: the line, with the token, stays within its character budget *and* the line can still end
  cleanly within the budget: the word the token leaves unfinished can be completed (the shortest lexicon word
  with that prefix fits), and if that word may not end a line ("for", "the", see
  :data:`~studio.ml.sampling.lexicon.NO_END_WORDS`), there is room for one more word after it.
* **whole words**: every word of the line is a lexicon word (SCOWL + frequent corpus words + the brief's own
  words, restricted to what the vocabulary can spell character by character) or a number, written in one
  letter case (lower, Title, UPPER, or the brief's own casing such as "PixelQuest"). A line ends (newline or
  end-of-turn token) only when the model picks that token, and that token is allowed only after a finished
  word that may end a line, or after closing punctuation. So no line is ever cut mid-word or mid-phrase.
* **banned words**: no word matching a banned entry can be finished (entries match whole words and their
  forms, case-insensitively, see :mod:`studio.core.copy_brief`): single words are removed from the lexicon with
  their inflections and compounds, so they cannot even be started unless another word shares the prefix
  (``best`` bans "Bests", "bested" and "Bestseller" but lets "bestow" through; ``best*`` bans all four).
  A phrase is banned at its last word: that word cannot be finished
  after the phrase's other words, and a partial word whose only completions are banned there is not started.
  Because the check runs on the line's text, not on tokens, phrases split across tokens are caught.
* **format**: no list markers, markup, emoji or control characters; no space before punctuation, a space
  after it; URL path fields have words, digits and hyphens only.

Duplicates: a line whose words equal an earlier line (``seen``) cannot end while anything else fits; the
copywriter rewrites the rare line that could only repeat (:mod:`studio.ml.text.copywriter`). Required keywords
get a logit bonus until used (:class:`KeywordBonus`): a nudge, not a constraint.

A budget too small for the shortest word a line may be is refused before decoding (``BadInputError``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from studio.core.copy_brief import BannedPattern, words
from studio.core.copy_checks import normalised
from studio.core.errors import BadInputError, StudioError
from studio.ml.sampling.lexicon import NO_WORD, Lexicon

ALLOWED_PUNCT = frozenset(".,!?;:'\"-–—&%$€£+/()…¿¡")
START_OK = frozenset("(¿¡$€£")  # besides letters and digits, what a line may start with
END_OK = frozenset('.!?)"%…')  # besides a finished word, what a line may end with
SPACE_AFTER = frozenset(",;:!?.…)$€£%&+")  # a letter right after one of these needs a space first
NO_SPACE_BEFORE = frozenset(",;:.!?)…%")

Width = Callable[[str], int]


class DeadEndError(StudioError):
    """No token can continue the line within its constraints (should not happen: the lookahead prevents it)."""


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() and ch != "_"


_BAD_CHAR = re.compile(r"[^\w .,!?;:'\"\-–—&%$€£+/()…¿¡]|_")
_HEAD = re.compile(r"(?:[^\W_]|')*")
_TAIL = re.compile(r"[^\W_]+(?:'[^\W_]+)*$")
_WORD_CHAR = re.compile(r"[^\W_]")


# Letter case of a word or word piece. A word is lower, Title, UPPER (or has no letters); anything else
# ("LevER") is MIXED and allowed only as a prefix of a brief's own word ("PixelQuest", "iPhone").
NONE, LOWER, UPPER1, UPPER, TITLE, MIXED = range(6)
# COMBINE[word so far, next piece] -> case of the longer word
COMBINE = np.full((6, 6), MIXED, dtype=np.int8)
for _a, _b, _c in (
    (LOWER, LOWER, LOWER), (UPPER1, LOWER, TITLE), (UPPER1, UPPER1, UPPER), (UPPER1, UPPER, UPPER),
    (UPPER, UPPER1, UPPER), (UPPER, UPPER, UPPER), (TITLE, LOWER, TITLE),
):
    COMBINE[_a, _b] = _c
for _k in range(6):
    COMBINE[NONE, _k] = _k
    COMBINE[_k, NONE] = _k


def case_class(text: str) -> int:
    letters = [ch for ch in text if ch.isupper() or ch.islower()]
    if not letters:
        return NONE
    if all(ch.islower() for ch in letters):
        return LOWER
    if all(ch.isupper() for ch in letters):
        return UPPER1 if len(letters) == 1 else UPPER
    if letters[0].isupper() and all(ch.islower() for ch in letters[1:]):
        return TITLE
    return MIXED


@dataclass(frozen=True)
class TokenShape:
    """How a token's text splits into a word continuation (``head``), break characters and a new word start
    (``tail``). ``has_break`` False means the whole token continues the current word."""

    text: str
    head: str
    has_break: bool
    tail: str


def token_shape(text: str) -> TokenShape | None:
    """None for tokens copy never contains (markup, control characters, several words, trailing space)."""
    if text == " ":  # a bare space: BPE spells rare words as " " + pieces
        return TokenShape(text, "", True, "")
    if not text or text.endswith(" ") or "  " in text or _BAD_CHAR.search(text):
        return None
    if text[0] == " " and len(text) > 1 and text[1] in NO_SPACE_BEFORE:
        return None
    folded = text.casefold()
    if len(folded) != len(text):
        return None  # case folding changes the length (rare ligatures): keep positions simple
    i = _HEAD.match(text).end()
    if i == len(text):
        return TokenShape(text, folded, False, "")
    tail = _TAIL.search(text, i)
    j = tail.start() if tail else len(text)
    if _WORD_CHAR.search(text, i, j):
        return None  # a token spanning several words: rare; the model can use the single-word tokens
    return TokenShape(text, folded[:i], True, folded[j:])


@dataclass(frozen=True)
class TokenTable:
    """What constrained decoding needs to know about a vocabulary, computed once per tokenizer."""

    texts: tuple[str, ...]
    shapes: tuple[TokenShape | None, ...]
    end_ids: np.ndarray  # tokens that end a line (newline, end of turn)
    cont_by_text: dict[str, np.ndarray]  # folded text -> ids of tokens that continue a word
    digit_ids: np.ndarray  # continuation tokens made of digits only
    break_ids: np.ndarray  # tokens with a break character
    first_ok: np.ndarray  # (V,) bool: may start a line (after stripping leading spaces)
    starts_space: np.ndarray
    inner_space: np.ndarray  # a space after the first visible character
    starts_letter: np.ndarray  # first character is a letter (for "space after punctuation")
    bare_break: np.ndarray  # (V,) bool: punctuation and spaces only
    tail_empty: np.ndarray  # (V,) bool: break tokens that end with their break (no word started)
    path_ok: np.ndarray  # (V,) bool: may appear in a URL path (words, digits, hyphens)
    head_case: np.ndarray  # (V,) int8 case class of the head (the whole text for continuation tokens)
    tail_case: np.ndarray
    head_groups: dict[str, np.ndarray]  # break tokens by the word continuation they start with
    tail_groups: dict[str, np.ndarray]  # break tokens by the word they start after their break
    sorted_tails: list[str]
    newline_id: int

    @property
    def size(self) -> int:
        return len(self.texts)


def build_token_table(token_texts: Sequence[str], end_ids: Iterable[int], special_ids: Iterable[int]) -> TokenTable:
    """``end_ids``: end-of-turn tokens; tokens that are only whitespace with a newline also end a line."""
    special = set(special_ids)
    ends = set(end_ids)
    shapes: list[TokenShape | None] = []
    cont: dict[str, list[int]] = {}
    digits, breaks = [], []
    newline_id = -1
    for i, text in enumerate(token_texts):
        shape = None
        if i in special or i in ends:
            pass
        elif "\n" in text and not text.strip(" \n"):
            ends.add(i)
            if text == "\n":
                newline_id = i
        else:
            shape = token_shape(text)
        shapes.append(shape)
        if shape is None:
            continue
        if shape.has_break:
            breaks.append(i)
        else:
            cont.setdefault(shape.head, []).append(i)
            if shape.head.isdigit():
                digits.append(i)
    if newline_id < 0:
        raise BadInputError("this model's vocabulary has no newline token; constrained copy needs one")
    n = len(token_texts)
    first_ok, starts_space, inner_space, starts_letter, bare = (np.zeros(n, dtype=bool) for _ in range(5))
    head_case = np.full(n, NONE, dtype=np.int8)
    tail_empty, path_ok = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    tail_case = np.full(n, NONE, dtype=np.int8)
    by_head: dict[str, list[int]] = {}
    by_tail: dict[str, list[int]] = {}
    for i, shape in enumerate(shapes):
        if shape is None:
            continue
        visible = shape.text.lstrip(" ")
        first_ok[i] = bool(visible) and (_is_word_char(visible[0]) or visible[0] in START_OK)
        starts_space[i] = shape.text.startswith(" ")
        inner_space[i] = " " in visible
        starts_letter[i] = shape.text[0].isalpha()
        head_case[i] = case_class(shape.text[: len(shape.head)])
        tail_case[i] = case_class(shape.text[len(shape.text) - len(shape.tail):]) if shape.tail else NONE
        between = shape.text[len(shape.head): len(shape.text) - len(shape.tail)].strip(" ")
        path_ok[i] = not shape.has_break or between in ("", "-")
        if shape.has_break:
            tail_empty[i] = not shape.tail
            bare[i] = not shape.head and not shape.tail
            by_head.setdefault(shape.head, []).append(i)
            by_tail.setdefault(shape.tail, []).append(i)
    return TokenTable(
        texts=tuple(token_texts),
        shapes=tuple(shapes),
        end_ids=np.array(sorted(ends), dtype=np.int64),
        cont_by_text={k: np.array(v, dtype=np.int64) for k, v in cont.items()},
        digit_ids=np.array(digits, dtype=np.int64),
        break_ids=np.array(breaks, dtype=np.int64),
        first_ok=first_ok,
        starts_space=starts_space,
        inner_space=inner_space,
        starts_letter=starts_letter,
        bare_break=bare,
        tail_empty=tail_empty,
        path_ok=path_ok,
        head_case=head_case,
        tail_case=tail_case,
        head_groups={h: np.array(v, dtype=np.int64) for h, v in by_head.items()},
        tail_groups={t: np.array(v, dtype=np.int64) for t, v in by_tail.items()},
        sorted_tails=sorted(t for t in by_tail if t),
        newline_id=newline_id,
    )


@lru_cache(maxsize=4)
def token_table_for(tokenizer: object) -> TokenTable:
    """The table of a :class:`studio.ml.text.tokenizer.GGUFTokenizer` (cached per tokenizer object)."""
    return build_token_table(tokenizer.token_texts, tokenizer.stop_ids, tokenizer.special_ids)


@dataclass(frozen=True)
class LineRules:
    """Per-line constraints: the character budget and whether spaces are allowed (Google's path fields)."""

    budget: int
    no_spaces: bool = False


@dataclass
class LineState:
    """What the constraints track about the line being written."""

    text: str = ""  # as generated, leading spaces stripped
    length: int = 0  # characters counted the format's way
    partial: str = ""  # the unfinished last word, case-folded ("" after a break)
    done_words: list[str] = field(default_factory=list)  # finished words of this line, case-folded

    @property
    def empty(self) -> bool:
        return not self.text


class CopyConstraints:
    """Masks for one generation job: one vocabulary, lexicon, banned list and width rule, any number of lines."""

    def __init__(
        self,
        table: TokenTable,
        lexicon: Lexicon,
        banned: Sequence[BannedPattern] = (),
        width: Width = len,
        names: Iterable[str] = (),
    ) -> None:
        """``names``: words of the brief whose own casing ("PixelQuest") is allowed besides lower/Title/UPPER."""
        self.table = table
        # only words the vocabulary can spell one character at a time, so every started word can be finished
        single = {shape.head for shape in table.shapes if shape is not None and not shape.has_break}
        spellable = {ch for ch in single if len(ch) == 1}
        lexicon = lexicon.edited(remove=banned)
        unspellable = [w for w in lexicon.words if not spellable.issuperset(w)]
        self.lexicon = Lexicon([w for w in lexicon.words if spellable.issuperset(w)], presorted=True) \
            if unspellable else lexicon
        self.singles = tuple(p for p in banned if len(p.parts) == 1)
        self.phrases = tuple(p for p in banned if len(p.parts) > 1)
        self.width = width
        n = table.size
        self.len_full = np.zeros(n, dtype=np.int32)
        self.len_visible = np.zeros(n, dtype=np.int32)
        for i, shape in enumerate(table.shapes):
            if shape is not None:
                text = shape.text
                self.len_full[i] = len(text) if text.isascii() else width(text)
                self.len_visible[i] = self.len_full[i] - (len(text) - len(text.lstrip(" ")))
        # break tokens: the word they start (tail) is fixed, so its shortest completion is too
        self.tail_extra = np.full(n, NO_WORD, dtype=np.int32)
        with_tail = [int(i) for i in table.break_ids if table.shapes[i].tail]
        tails = [table.shapes[i].tail for i in with_tail]
        self.tail_extra[with_tail] = self.lexicon.min_extra_many(tails)
        for k, tail in zip(with_tail, tails, strict=True):
            if tail.isdigit():
                self.tail_extra[k] = self._min_extra(tail)
        for i in table.break_ids:
            shape = table.shapes[i]
            if not shape.tail:
                self.tail_extra[i] = self._after_break_extra(shape.text)
        self.name_prefixes = frozenset(
            name[:k] for name in names if case_class(name) == MIXED for k in range(1, len(name) + 1)
        )
        # break tokens may start a word in any normal case, or as a prefix of a brief name
        tail_ok = table.tail_case != MIXED
        for i in table.break_ids:
            shape = table.shapes[i]
            if not tail_ok[i] and shape.text[len(shape.text) - len(shape.tail):] in self.name_prefixes:
                tail_ok[i] = True
        self.tail_extra[~tail_ok] = NO_WORD
        self._end_set = frozenset(int(i) for i in table.end_ids)
        self._cont_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._head_cache: dict[tuple[str, tuple[str, ...]], list[tuple[str, np.ndarray]]] = {}

    # --- words -----------------------------------------------------------------------------------------------

    def _banned_single(self, word: str) -> bool:
        return any(BannedPattern.part_matches(p.parts[0], word) for p in self.singles)

    def _min_extra(self, partial: str) -> int:
        if partial.isdigit():
            if not self._banned_single(partial):
                return 0
            stems = [p.parts[0][:-1] for p in self.singles if p.parts[0].endswith("*")]
            return NO_WORD if any(partial.startswith(s) for s in stems) else 1
        return self.lexicon.min_extra(partial)

    def _after_break_extra(self, text: str) -> int:
        """A token ending in a break: 0 if a line may end with it, else room for one short word."""
        last = text[-1]
        if last in END_OK:
            return 0
        return self.lexicon.shortest_ending + (1 if last in SPACE_AFTER else 0)

    def is_word(self, word: str, before: Sequence[str] = ()) -> bool:
        """May ``word`` be finished here (after the line's finished words ``before``)?"""
        if not word:
            return False
        if word.isdigit():
            if self._banned_single(word):
                return False
        elif word not in self.lexicon:
            return False
        if self.phrases:
            seq = [*before, word]
            return not any(p.matches_at_end(seq) for p in self.phrases)
        return True

    def _forbidden_next(self, before: Sequence[str]) -> tuple[BannedPattern, ...]:
        """Phrases whose words but the last end ``before``: their last word may not come next."""
        if not self.phrases:
            return ()
        found = []
        for p in self.phrases:
            head = p.parts[:-1]
            if len(before) >= len(head) and all(
                BannedPattern.part_matches(q, w) for q, w in zip(head, before[len(before) - len(head):], strict=True)
            ):
                found.append(BannedPattern(p.source, (p.parts[-1],)))
        return tuple(found)

    def _extra_avoiding(self, partial: str, avoid: tuple[BannedPattern, ...]) -> int:
        if partial.isdigit():
            ok = not any(BannedPattern.part_matches(p.parts[0], partial) for p in avoid)
            return self._min_extra(partial) if ok else 1
        return self.lexicon.min_extra_avoiding(partial, avoid)

    @staticmethod
    def _touches(partial: str, avoid: tuple[BannedPattern, ...]) -> bool:
        """Could a completion of ``partial`` match one of the single-word patterns in ``avoid``?"""
        for p in avoid:
            stem, open_ended = BannedPattern.part_prefix(p.parts[0])
            if stem.startswith(partial) or (open_ended and partial.startswith(stem)):
                return True
        return False

    # --- candidate sets (cached per partial word) --------------------------------------------------------------

    def continuations(self, partial: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, extra): tokens that continue ``partial`` into a prefix of a word, and the fewest characters
        still needed after each to finish a word."""
        cached = self._cont_cache.get(partial)
        if cached is not None:
            return cached
        found: dict[int, int] = {}
        lo, hi = self.lexicon.span(partial)
        table = self.table
        if partial and hi - lo <= 4000:
            pieces: set[str] = set()
            for word in self.lexicon.words[lo:hi]:
                rest = word[len(partial):]
                pieces.update(rest[:k] for k in range(1, len(rest) + 1))
            for piece in pieces:
                ids = table.cont_by_text.get(piece)
                if ids is not None:
                    extra = self._min_extra(partial + piece)
                    found.update((int(i), extra) for i in ids)
        else:
            pieces = list(table.cont_by_text)
            extras = self.lexicon.min_extra_many([partial + piece for piece in pieces])
            for piece, extra in zip(pieces, extras.tolist(), strict=True):
                if extra < NO_WORD:
                    found.update((int(i), extra) for i in table.cont_by_text[piece])
        if partial == "" or partial.isdigit():
            for i in table.digit_ids:
                found[int(i)] = self._min_extra(partial + table.shapes[i].head)
        ids = np.array(sorted(found), dtype=np.int64)
        extra = np.array([found[i] for i in ids], dtype=np.int32)
        self._cont_cache[partial] = (ids, extra)
        return ids, extra

    def _head_breaks(self, partial: str, before: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
        """(head, ids) of the break tokens whose head finishes ``partial`` into an allowed word."""
        key = (partial, before if self.phrases else ())
        cached = self._head_cache.get(key)
        if cached is None:
            cached = [(head, ids) for head, ids in self.table.head_groups.items()
                      if head and self.is_word(partial + head, before)]
            self._head_cache[key] = cached
        return cached

    # --- the mask ------------------------------------------------------------------------------------------------

    def check_budget(self, rules: LineRules) -> None:
        if rules.budget < self.lexicon.shortest_ending:
            raise BadInputError(
                f"a limit of {rules.budget} characters is smaller than any word a line can be "
                f"({self.lexicon.shortest_ending} characters); raise the limit"
            )

    def allowed(self, state: LineState, rules: LineRules, seen: set[str] | frozenset[str] = frozenset(),
                relax_duplicates: bool = False) -> np.ndarray:
        """(V,) bool: the tokens that may come next in this line."""
        table = self.table
        mask = np.zeros(table.size, dtype=bool)
        room = rules.budget - state.length
        lengths = self.len_visible if state.empty else self.len_full
        partial = state.partial
        before = tuple(state.done_words)
        last = state.text[-1:] if state.text else ""

        # tokens that continue (or, after a break, start) a word
        ids, extra = self.continuations(partial)
        word_case = case_class(state.text[len(state.text) - len(partial):]) if partial else NONE
        if ids.size:
            fits = (lengths[ids] + extra <= room) & self._case_ok(ids, word_case, state, partial)
            avoid = self._forbidden_next(before) if self.phrases else ()
            if avoid:
                for k in np.nonzero(fits)[0]:
                    word = partial + table.shapes[ids[k]].head
                    if self._touches(word, avoid):
                        fits[k] = lengths[ids[k]] + self._extra_avoiding(word, avoid) <= room
            mask[ids[fits]] = True

        # tokens with a break: the current word must be finishable by their head
        finished = partial == "" or self.is_word(partial, before)
        groups = list(self._head_breaks(partial, before))
        if finished and "" in self.table.head_groups:
            groups.append(("", self.table.head_groups[""]))
        no_word_yet = not (state.done_words or partial)
        for head, ids in groups:
            if head:
                ids = ids[self._case_ok(ids, word_case, state, partial)]
            extra = self.tail_extra[ids]
            room_for_word = self.lexicon.shortest_ending + 2
            if no_word_yet:  # punctuation alone is not a line: keep room for a word after it
                extra = np.where(self.table.bare_break[ids], np.maximum(extra, room_for_word), extra)
            last_word = (partial + head) or (before[-1] if before else "")
            if last_word and not self.lexicon.may_end(last_word):  # "for." cannot end the line either
                extra = np.where(self.table.tail_empty[ids], np.maximum(extra, room_for_word), extra)
            fits = lengths[ids] + extra <= room
            if self.phrases:
                fits &= self._phrase_ok(ids, partial + head, before, lengths, room)
            mask[ids[fits]] = True

        if state.empty:
            mask &= table.first_ok
        elif last == " ":
            mask &= ~table.starts_space
        elif not partial and last in SPACE_AFTER:
            mask &= ~table.starts_letter
        if rules.no_spaces:
            mask &= ~table.inner_space & table.path_ok
            if not state.empty:
                mask &= ~table.starts_space

        last_word = partial or (before[-1] if before else "")
        clean_end = (partial == "" and last in END_OK) or (partial and self.is_word(partial, before))
        clean_end = clean_end and self.lexicon.may_end(last_word)
        fresh = relax_duplicates or normalised(state.text) not in seen
        if (state.done_words or partial) and clean_end and fresh:
            mask[table.end_ids] = True
        return mask

    def _case_ok(self, ids: np.ndarray, word_case: int, state: LineState, partial: str) -> np.ndarray:
        """Tokens whose head keeps the current word in one letter case (or spells a brief name)."""
        ok = COMBINE[word_case, self.table.head_case[ids]] != MIXED
        if self.name_prefixes and not ok.all():
            word = state.text[len(state.text) - len(partial):] if partial else ""
            for k in np.nonzero(~ok)[0]:
                shape = self.table.shapes[ids[k]]
                ok[k] = word + shape.text[: len(shape.head)] in self.name_prefixes
        return ok

    def _phrase_ok(self, ids: np.ndarray, finished: str, before: tuple[str, ...], lengths: np.ndarray,
                   room: int) -> np.ndarray:
        """Break tokens that finish the word ``finished``: the word each then starts must not be forced into a
        banned phrase (its only completions within the budget would finish the phrase)."""
        ok = np.ones(ids.size, dtype=bool)
        avoid = self._forbidden_next((*before, finished) if finished else before)
        if not avoid:
            return ok
        table = self.table
        touched: set[int] = set()
        for p in avoid:
            stem, open_ended = BannedPattern.part_prefix(p.parts[0])
            for k in range(1, len(stem) + 1):
                touched.update(int(i) for i in table.tail_groups.get(stem[:k], ()))
            if open_ended:
                start = bisect.bisect_left(table.sorted_tails, stem)
                for tail in table.sorted_tails[start:]:
                    if not tail.startswith(stem):
                        break
                    touched.update(int(i) for i in table.tail_groups[tail])
        if touched:
            for k in np.nonzero(np.isin(ids, np.fromiter(touched, dtype=np.int64)))[0]:
                i = int(ids[k])
                ok[k] = lengths[i] + self._extra_avoiding(table.shapes[i].tail, avoid) <= room
        return ok

    def mask_or_raise(self, state: LineState, rules: LineRules, seen: set[str] | frozenset[str]) -> np.ndarray:
        """:meth:`allowed`, relaxing only the duplicate rule if nothing else is possible."""
        mask = self.allowed(state, rules, seen)
        if not mask.any():
            mask = self.allowed(state, rules, seen, relax_duplicates=True)
        if not mask.any():
            raise DeadEndError(f"no word can continue the line {state.text!r} within {rules.budget} characters")
        return mask

    def is_end(self, token_id: int) -> bool:
        return token_id in self._end_set

    def advance(self, state: LineState, token_id: int) -> str:
        """Add an allowed, non-ending token to the line; returns the text it added."""
        shape = self.table.shapes[token_id]
        if shape is None:
            raise ValueError(f"token {token_id} cannot be part of a line")
        piece = shape.text.lstrip(" ") if state.empty else shape.text
        state.length += self.width(piece)
        state.text += piece
        if shape.has_break:
            finished = state.partial + shape.head
            if finished:
                state.done_words.append(finished)
            state.partial = shape.tail
        else:
            state.partial += shape.head
        return piece


_BY_TEXT: dict[int, tuple[TokenTable, dict[str, list[int]]]] = {}


def _tokens_by_text(table: TokenTable) -> dict[str, list[int]]:
    """Case-folded token text -> ids, built once per vocabulary (every keyword bonus looks tokens up by text;
    keyed by identity: a table holds arrays and cannot be hashed)."""
    cached = _BY_TEXT.get(id(table))
    if cached is None or cached[0] is not table:
        found: dict[str, list[int]] = {}
        for i, shape in enumerate(table.shapes):
            if shape is not None:
                found.setdefault(shape.text.casefold(), []).append(i)
        if len(_BY_TEXT) >= 4:
            _BY_TEXT.clear()
        cached = _BY_TEXT[id(table)] = (table, found)
    return cached[1]


@dataclass
class KeywordBonus:
    """Adds ``bonus`` to the logits of tokens that start or continue a required keyword, until it is used."""

    table: TokenTable
    keywords: Sequence[str]
    bonus: float = 3.0
    used: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._by_text = _tokens_by_text(self.table)
        self._keys = [" ".join(words(k)) for k in self.keywords if words(k)]

    def mark_used(self, line: str) -> None:
        text = " " + normalised(line) + " "
        self.used.update(k for k in self._keys if f" {k} " in text)

    def ids(self, state: LineState) -> list[int]:
        """Tokens to encourage now: the rest of a keyword already begun, or the start of an unused one that this
        line does not hold yet (a keyword once per line: "Fresh, fresh, fresh" is not copy)."""
        found: list[int] = []
        folded = state.text.casefold()
        last = folded[-1:]
        in_line = f" {normalised(state.text)} "
        for key in self._keys:
            if key in self.used:
                continue
            for m in range(min(len(key) - 1, len(folded)), 0, -1):
                start = len(folded) - m
                if folded.endswith(key[:m]) and (start == 0 or not _is_word_char(folded[start - 1])):
                    rest = key[m:]
                    found.extend(i for k in range(1, len(rest) + 1) for i in self._by_text.get(rest[:k], ()))
                    break
            if f" {key} " in in_line:
                continue
            starts = [" "]
            if not last or not _is_word_char(last):
                starts.append("")
            for k in range(1, len(key) + 1):
                for space in starts:
                    found.extend(self._by_text.get(space + key[:k], ()))
        return found

    def apply(self, logits: np.ndarray, state: LineState) -> None:
        ids = self.ids(state)
        if ids:
            logits[np.array(ids, dtype=np.int64)] += self.bonus
