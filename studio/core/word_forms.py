"""English word forms for ad copy: inflections (for banned words), rough stems (for "close variants" of brief
words), function words, and the common-word list that decides what is a word.

The common-word list (``resources/lexicon/common-en.txt.gz``) is SCOWL's American English list (Debian
``wamerican``) without proper names, plus a few modern words; see :func:`studio.ml.data.copy_text.build_lexicon`.
The decoder spells only these words (and the brief's own), and the copy checks call anything else a non-word.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from studio.core import paths

VOWELS = frozenset("aeiou")

#: Words a line of copy may not end on (it would read as cut off: "Roasted fresh for your").
NO_END_WORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "nor", "of", "to", "in", "on", "at", "by", "for", "with", "from",
    "into", "onto", "over", "under", "about", "as", "than", "that", "which", "who", "whom", "whose", "your",
    "our", "their", "my", "his", "her", "its", "this", "these", "those", "is", "are", "was", "were", "be",
    "been", "am", "will", "would", "can", "could", "should", "shall", "may", "might", "must", "do", "does",
    "did", "has", "have", "had", "not", "no", "so", "if", "then", "when", "while", "where", "via", "per",
    "vs", "every", "each", "some", "any", "another", "such", "very", "own", "both", "either", "neither", "whether",
    "because", "though", "although", "unless", "until", "upon", "within", "without", "between", "through", "i",
    # pronouns and contractions that open a clause ("… and we", "Don't let", "this is what it's")
    "we", "they", "let", "let's", "it's", "that's", "what's", "we're", "you're", "they're", "don't", "doesn't",
    "won't", "isn't", "aren't", "how", "why", "also",
})

#: Words that carry no content: a line sharing only these with the brief is not "on brief".
STOPWORDS = NO_END_WORDS | frozenset({
    "you", "it", "me", "us", "them", "he", "she", "one", "all", "more", "most", "just", "now", "new", "get",
    "got", "make", "made", "here", "there", "what", "out", "up", "day", "days", "way", "ways", "like", "only",
    "even", "much", "many", "other", "same", "too", "yes", "go", "see", "time", "times", "things", "thing",
    "ready", "every", "today", "yours", "ours", "two", "three", "four", "five",
})


def _doubles(word: str) -> bool:
    """Does the word double its last consonant before -ed/-ing ("stop" -> "stopped")? (One-syllable CVC words.)"""
    if len(word) < 3 or not word.isalpha():
        return False
    a, b, c = word[-3], word[-2], word[-1]
    vowels_before = sum(ch in VOWELS for ch in word[:-1])
    return a not in VOWELS and b in VOWELS and c not in VOWELS and c not in "wxy" and vowels_before == 1


@lru_cache(maxsize=4096)
def inflections(word: str) -> frozenset[str]:
    """The word and its regular inflections: plural/3rd person, past, -ing, comparative, superlative, -ly and the
    possessive (``best`` -> bests, bested, besting, bester, bestest, bestly, best's). Irregular forms (buy/bought)
    are not derived. Words of one or two letters only get -s and the possessive ("ad" -> "ads", not "added")."""
    w = word.casefold()
    forms = {w, w + "'s", w + "s'"}
    if not w.isalpha():
        return frozenset(forms)
    if w.endswith(("s", "x", "z", "ch", "sh", "o")):
        forms.add(w + "es")
    if not w.endswith("s"):
        forms.add(w + "s")
    if len(w) <= 2:
        return frozenset(forms)
    if w.endswith("e"):
        forms.update({w + "d", w + "r", w + "st", w + "ly", w[:-1] + "ing"})
        if w.endswith("ie"):
            forms.add(w[:-2] + "ying")
    elif w.endswith("y") and w[-2] not in VOWELS:
        stem = w[:-1]
        forms.update({stem + "ies", stem + "ied", stem + "ier", stem + "iest", stem + "ily", w + "ing"})
    else:
        forms.update({w + "ed", w + "ing", w + "er", w + "est", w + "ly"})
        if _doubles(w):
            last = w[-1]
            forms.update({w + last + "ed", w + last + "ing", w + last + "er", w + last + "est"})
    return frozenset(forms)


def family_prefix(word: str) -> str:
    """The longest prefix every inflection of ``word`` shares ("make" -> "mak", "happy" -> "happ")."""
    forms = inflections(word)
    prefix = word.casefold()
    while prefix and not all(f.startswith(prefix) for f in forms):
        prefix = prefix[:-1]
    return prefix


MIN_COMPOUND_REST = 4


def is_compound_of(word: str, head: str, known: frozenset[str] | None = None) -> bool:
    """Is ``word`` a closed compound that starts with ``head`` (or one of its inflections) followed by a common
    word of at least four letters? ("bestseller" = best + seller; "bestow" and "freedom" are not compounds)."""
    w, h = word.casefold(), head.casefold()
    if len(h) < 3 or not w.startswith(h) or len(w) < len(h) + MIN_COMPOUND_REST:
        return False
    vocabulary = common_words() if known is None else known
    rest = w[len(h):]
    if rest in vocabulary:
        return True
    return any(rest.startswith(s) and rest[len(s):] in vocabulary and len(rest) - len(s) >= MIN_COMPOUND_REST
               for s in ("s", "ed", "ing", "er"))


def stem(word: str) -> str:
    """A rough stem for matching close variants ("runners", "running", "run" -> "run"; "roasted" -> "roast")."""
    w = word.casefold()
    for suffix in ("'s", "s'"):
        if w.endswith(suffix):
            w = w[: -len(suffix)]
    for suffix in ("ingly", "edly", "ness", "ment", "ings", "ing", "ers", "ies", "ied", "est", "ed", "er",
                   "ly", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if suffix in ("ies", "ied"):
                w += "y"
            break
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in VOWELS and w[-1] not in "ls":  # "runn" -> "run"
        w = w[:-1]
    if len(w) >= 4 and w.endswith("e"):
        w = w[:-1]
    return w


def names_path() -> Path:
    return paths.resources_dir() / "lexicon" / "names-en.txt.gz"


@lru_cache(maxsize=1)
def proper_names() -> frozenset[str]:
    """Capitalised entries of the spelling list ("Spain"), as written; empty when the file is missing."""
    try:
        with gzip.open(names_path(), "rt", encoding="utf-8") as fh:
            return frozenset(line.strip() for line in fh if line.strip())
    except (OSError, EOFError, UnicodeDecodeError):
        return frozenset()


def default_lexicon_path() -> Path:
    return paths.resources_dir() / "lexicon" / "common-en.txt.gz"


@lru_cache(maxsize=2)
def common_words(path: Path | None = None) -> frozenset[str]:
    """The bundled common-word list (case-folded). A missing file gives an empty set (no word then counts as a
    compound's second part; the decoder's own loader reports the missing file)."""
    try:
        with gzip.open(Path(path) if path else default_lexicon_path(), "rt", encoding="utf-8") as fh:
            return frozenset(line.strip() for line in fh if line.strip())
    except (OSError, EOFError, UnicodeDecodeError):
        return frozenset()
