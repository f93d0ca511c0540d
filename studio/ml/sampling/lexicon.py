"""A word list with the questions constrained decoding asks many times per token: "can this partial word still
become a word?" and "how many more characters does the line need at least before it may end?".

Words are kept case-folded and sorted, so all words with a given prefix form one contiguous range; sparse tables
give the shortest word length of any range in O(1). A line may not end on a function word ("with", "the",
"your": :data:`NO_END_WORDS`), so a second table holds only the words a line may end on. The bundled list
(``resources/lexicon``) is SCOWL's American English list without proper names, plus a few modern words; see
:func:`studio.ml.data.copy_text.build_lexicon`.
"""

from __future__ import annotations

import bisect
import gzip
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.core.copy_brief import BannedPattern
from studio.core.errors import ModelFileError
from studio.core.word_forms import NO_END_WORDS, default_lexicon_path

NO_WORD = 10_000  # "no completion": larger than any budget
_TOP = "\U0010ffff"



def _sparse_table(lengths: np.ndarray) -> list[np.ndarray]:
    table = [lengths]
    span = 1
    while span * 2 <= len(lengths):
        prev = table[-1]
        table.append(np.minimum(prev[:-span], prev[span:]))
        span *= 2
    return table


class Lexicon:
    def __init__(self, words: Iterable[str], presorted: bool = False) -> None:
        self.words: list[str] = list(words) if presorted else sorted({w.casefold() for w in words if w})
        self.word_set = frozenset(self.words)
        self._array = np.array(self.words or [""])
        lengths = np.char.str_len(self._array).astype(np.int32) if self.words else np.array([NO_WORD])
        ending = np.array([self.may_end(w) for w in self.words] or [False])
        self._tables = (_sparse_table(lengths), _sparse_table(np.where(ending, lengths, NO_WORD).astype(np.int32)))
        self.shortest = int(self._tables[0][0].min())
        self.shortest_ending = int(self._tables[1][0].min())

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.word_set

    @staticmethod
    def may_end(word: str) -> bool:
        """Function words and lone letters cannot end a line ("… about c"); digits can ("… in 2")."""
        return word not in NO_END_WORDS and (len(word) > 1 or word.isdigit())

    def span(self, prefix: str) -> tuple[int, int]:
        """Index range of the words that start with ``prefix``."""
        lo = bisect.bisect_left(self.words, prefix)
        hi = bisect.bisect_left(self.words, prefix + _TOP, lo)
        return lo, hi

    def range_min(self, lo: int, hi: int, ending: bool = False) -> int:
        """Shortest word length among ``words[lo:hi]`` (only words a line may end on if ``ending``)."""
        if lo >= hi:
            return NO_WORD
        level = (hi - lo).bit_length() - 1
        table = self._tables[ending][level]
        return int(min(table[lo], table[hi - (1 << level)]))

    def min_extra(self, prefix: str) -> int:
        """Fewest characters after ``prefix`` (a partial word) before the line may end: finish it into a word
        a line may end on, or finish it into any word and add a space and such a word (NO_WORD if impossible)."""
        lo, hi = self.span(prefix)
        if lo >= hi:
            return NO_WORD
        ending = self.range_min(lo, hi, ending=True)
        any_word = self.range_min(lo, hi)
        return min(ending, any_word + 1 + self.shortest_ending) - len(prefix)

    def min_extra_many(self, prefixes: Sequence[str]) -> np.ndarray:
        """:meth:`min_extra` for many prefixes at once (vectorised binary search + sparse-table minima)."""
        out = np.full(len(prefixes), NO_WORD, dtype=np.int32)
        if not prefixes or not self.words:
            return out
        keys = np.array(prefixes)
        lo = np.searchsorted(self._array, keys, side="left")
        hi = np.searchsorted(self._array, np.char.add(keys, _TOP), side="left")
        has = hi > lo
        if not has.any():
            return out
        lo_h, hi_h = lo[has], hi[has]
        level = np.floor(np.log2(hi_h - lo_h)).astype(np.int64)
        best = [np.full(lo_h.shape, NO_WORD, dtype=np.int32) for _ in range(2)]
        for lev in np.unique(level):
            sel = level == lev
            for ending in (0, 1):
                table = self._tables[ending][lev]
                best[ending][sel] = np.minimum(table[lo_h[sel]], table[hi_h[sel] - (1 << int(lev))])
        need = np.minimum(best[1], best[0] + 1 + self.shortest_ending)
        out[has] = need - np.char.str_len(keys[has]).astype(np.int32)
        return out

    def min_extra_avoiding(self, prefix: str, avoid: tuple[BannedPattern, ...]) -> int:
        """:meth:`min_extra` where the word finished from ``prefix`` may not match a pattern in ``avoid``
        (single-word patterns: the last word of a banned phrase whose other words precede it)."""
        lo, hi = self.span(prefix)
        best = NO_WORD
        for word in self.words[lo:hi]:
            cost = len(word) if self.may_end(word) else len(word) + 1 + self.shortest_ending
            if cost - len(prefix) < best and not any(BannedPattern.part_matches(p.parts[-1], word) for p in avoid):
                best = cost - len(prefix)
        return best

    def edited(self, add: Iterable[str] = (), remove: Iterable[BannedPattern] = ()) -> Lexicon:
        """A copy with ``add`` words added and every word matching a single-word pattern of ``remove`` removed
        (with its forms: see :meth:`BannedPattern.part_matches`)."""
        parts = [p.parts[0] for p in remove if len(p.parts) == 1]
        extra = {w.casefold() for w in add} - self.word_set
        candidates = set(extra)
        for part in parts:
            lo, hi = self.span(BannedPattern.part_prefix(part)[0])
            candidates.update(self.words[lo:hi])
        dropped = {w for w in candidates if any(BannedPattern.part_matches(part, w) for part in parts)}
        if not (dropped or extra):
            return self
        kept = [w for w in self.words if w not in dropped]
        extra -= dropped
        if extra:
            kept = sorted([*kept, *extra])
        return Lexicon(kept, presorted=True)


@lru_cache(maxsize=2)
def load_lexicon(path: Path | None = None) -> Lexicon:
    path = Path(path) if path else default_lexicon_path()
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return Lexicon(line.strip() for line in fh)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"the word list {path} is missing or damaged ({exc}); reinstall Studio") from None
