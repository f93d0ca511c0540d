"""A word list with the two questions constrained decoding asks many times per token:
"can this partial word still become a word?" and "how many more characters does that need at least?".

Words are kept case-folded and sorted, so all words with a given prefix form one contiguous range; a sparse
table gives the shortest word length of any range in O(1). The bundled list (``resources/lexicon``) is SCOWL's
American English list plus frequent words of the Debian descriptions corpus; see
:func:`studio.ml.data.copy_text.build_lexicon`.
"""

from __future__ import annotations

import bisect
import gzip
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.core import paths
from studio.core.copy_brief import BannedPattern
from studio.core.errors import ModelFileError

NO_WORD = 10_000  # "no completion": larger than any budget
_TOP = "\U0010ffff"


def default_lexicon_path() -> Path:
    return paths.resources_dir() / "lexicon" / "words-en.txt.gz"


class Lexicon:
    def __init__(self, words: Iterable[str], presorted: bool = False) -> None:
        self.words: list[str] = list(words) if presorted else sorted({w.casefold() for w in words if w})
        self.word_set = frozenset(self.words)
        self._array = np.array(self.words or [""])
        lengths = np.char.str_len(self._array).astype(np.int32) if self.words else np.array([NO_WORD])
        self._table = [lengths]
        span = 1
        while span * 2 <= len(lengths):
            prev = self._table[-1]
            self._table.append(np.minimum(prev[:-span], prev[span:]))
            span *= 2
        self.shortest = int(lengths.min()) if self.words else NO_WORD

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.word_set

    def span(self, prefix: str) -> tuple[int, int]:
        """Index range of the words that start with ``prefix``."""
        lo = bisect.bisect_left(self.words, prefix)
        hi = bisect.bisect_left(self.words, prefix + _TOP, lo)
        return lo, hi

    def is_prefix(self, prefix: str) -> bool:
        lo, hi = self.span(prefix)
        return lo < hi

    def range_min(self, lo: int, hi: int) -> int:
        """Shortest word length among ``words[lo:hi]`` (NO_WORD for an empty range)."""
        if lo >= hi:
            return NO_WORD
        level = (hi - lo).bit_length() - 1
        table = self._table[level]
        return int(min(table[lo], table[hi - (1 << level)]))

    def min_extra(self, prefix: str) -> int:
        """Fewest characters to add to ``prefix`` to make a whole word (0 if it is one; NO_WORD if none)."""
        if prefix in self.word_set:
            return 0
        lo, hi = self.span(prefix)
        found = self.range_min(lo, hi)
        return found - len(prefix) if found < NO_WORD else NO_WORD

    def min_extra_avoiding(self, prefix: str, avoid: tuple[BannedPattern, ...]) -> int:
        """Like :meth:`min_extra` but no completion may match one of the single-word patterns in ``avoid``."""
        lo, hi = self.span(prefix)
        best = NO_WORD
        for word in self.words[lo:hi]:
            if len(word) - len(prefix) < best and not any(BannedPattern.part_matches(p.parts[-1], word)
                                                          for p in avoid):
                best = len(word) - len(prefix)
                if best == 0:
                    break
        return best

    def min_extra_many(self, prefixes: Sequence[str]) -> np.ndarray:
        """:meth:`min_extra` for many prefixes at once (vectorised: binary search + sparse-table minimum)."""
        if not prefixes:
            return np.zeros(0, dtype=np.int32)
        keys = np.array(prefixes)
        lo = np.searchsorted(self._array, keys, side="left")
        hi = np.searchsorted(self._array, np.char.add(keys, _TOP), side="left")
        out = np.full(len(prefixes), NO_WORD, dtype=np.int32)
        has = hi > lo
        if self.words and has.any():
            lo_h, hi_h = lo[has], hi[has]
            level = np.floor(np.log2(hi_h - lo_h)).astype(np.int64)
            best = np.full(lo_h.shape, NO_WORD, dtype=np.int32)
            for lev in np.unique(level):
                sel = level == lev
                table = self._table[lev]
                best[sel] = np.minimum(table[lo_h[sel]], table[hi_h[sel] - (1 << int(lev))])
            out[has] = best - np.char.str_len(keys[has]).astype(np.int32)
        exact = np.array([p in self.word_set for p in prefixes])
        out[exact] = 0
        return out

    def edited(self, add: Iterable[str] = (), remove: Iterable[BannedPattern] = ()) -> Lexicon:
        """A copy with ``add`` words added and every word matching a single-word pattern of ``remove`` removed."""
        singles = [p.parts[0] for p in remove if len(p.parts) == 1]
        exact = {p for p in singles if not p.endswith("*")}
        stems = tuple(p[:-1] for p in singles if p.endswith("*"))
        extra = {w.casefold() for w in add} - self.word_set
        if not (exact or stems or extra):
            return self
        kept = [w for w in self.words if w not in exact and not (stems and w.startswith(stems))]
        extra = {w for w in extra if w not in exact and not (stems and w.startswith(stems))}
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
