"""Words for sprites: tags taken from tile names, a vocabulary a model is trained on, and prompts read against it.

A tile's tags are the words of its path: ``mon/undead/skeletons/skeleton_humanoid_large.png`` gives ``undead,
skeleton, humanoid, large``. Words are lower-cased, split at anything that is not a letter, stripped of digits,
and made singular by a few English rules (``skeletons`` -> ``skeleton``, ``abilities`` -> ``ability``); words of
fewer than three letters and the folder names that only say where a tile is kept (:data:`STOP_WORDS`) are dropped.

A prompt is read with the same rules, so "Skeletons!" asks for ``skeleton``. Words the vocabulary does not know are
reported with the closest known words; the prompt never fails for them alone.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MIN_TAG_COUNT = 8  # training tiles a word needs to become a tag
MAX_PROMPT_CHARS = 2000
MAX_PROMPT_TAGS = 8  # more known words than this dilute each other; the rest are reported as unused
STOP_WORDS = frozenset({
    "png", "mon", "dngn", "item", "gui", "unused", "misc", "icon", "the", "and", "with", "new", "old", "tile",
    "rltile", "sprite", "other", "type", "var", "alt", "version", "urand", "spwpn", "lorc", "hep",
})
IRREGULAR = {
    "elves": "elf", "wolves": "wolf", "dwarves": "dwarf", "knives": "knife", "staves": "staff", "mice": "mouse",
    "teeth": "tooth", "feet": "foot", "men": "man", "women": "woman", "fungi": "fungus", "simulacra": "simulacrum",
    "leaves": "leaf", "thieves": "thief", "zombies": "zombie", "pixies": "pixie",
}
_SPLIT = re.compile(r"[^a-z]+")
_KEEP_S = ("ss", "us", "is", "ous")


def singular(word: str) -> str:
    """A plural English noun made singular by rule and a short table of irregular plurals (enough for tile names)."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(_KEEP_S):
        return word[:-1]
    return word


def words_of(text: str) -> list[str]:
    """The tag-shaped words of any text (a path, a file name or a prompt), in order, without repeats."""
    out: list[str] = []
    for raw in _SPLIT.split(text.lower()):
        if len(raw) < 3:
            continue
        word = singular(raw)
        if word not in STOP_WORDS and word not in out:
            out.append(word)
    return out


def tags_from_path(path: str) -> list[str]:
    """Tags of a tile from its path relative to the tile folder (extension and folders included)."""
    return words_of(path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path)


@dataclass(frozen=True)
class PromptReading:
    """What a prompt asks for, in a model's vocabulary."""

    tags: tuple[str, ...]  # known words, in prompt order (at most MAX_PROMPT_TAGS)
    unknown: tuple[str, ...]  # words the model has no tag for
    unused: tuple[str, ...] = ()  # known words past MAX_PROMPT_TAGS
    suggestions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # unknown word -> close known words

    def explain(self) -> str:
        """One or two sentences for the user ("" when every word is known and used)."""
        parts = []
        if self.unknown:
            described = []
            for word in self.unknown:
                near = self.suggestions.get(word, ())
                described.append(f"'{word}' (did you mean {' or '.join(near)}?)" if near else f"'{word}'")
            parts.append("Not known to this model, left out: " + ", ".join(described) + ".")
        if self.unused:
            parts.append(f"Only the first {MAX_PROMPT_TAGS} known words are used; left out: {', '.join(self.unused)}.")
        return " ".join(parts)


@dataclass(frozen=True)
class TagVocabulary:
    """The tags a model knows, with how often each occurs in its training tiles per category."""

    words: tuple[str, ...]
    category_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # tag -> {category: tiles}

    @classmethod
    def build(
        cls, tile_tags: Sequence[Iterable[str]], categories: Sequence[str], min_count: int = MIN_TAG_COUNT
    ) -> TagVocabulary:
        """Words with at least ``min_count`` tiles, most frequent first (ties alphabetically)."""
        totals: Counter[str] = Counter()
        per_category: dict[str, Counter[str]] = {}
        for tags, category in zip(tile_tags, categories, strict=True):
            for tag in set(tags):
                totals[tag] += 1
                per_category.setdefault(tag, Counter())[category] += 1
        words = sorted((w for w, n in totals.items() if n >= min_count), key=lambda w: (-totals[w], w))
        return cls(tuple(words), {w: dict(per_category[w]) for w in words})

    def __len__(self) -> int:
        return len(self.words)

    def index(self, tag: str) -> int:
        return self.words.index(tag)

    def category_of(self, tags: Sequence[str]) -> str | None:
        """The category where the given tags occur most (None without tags or counts)."""
        votes: Counter[str] = Counter()
        for tag in tags:
            votes.update(self.category_counts.get(tag, {}))
        return votes.most_common(1)[0][0] if votes else None

    def read(self, prompt: str) -> PromptReading:
        """The prompt's words split into known tags and unknown words (see the module docstring)."""
        words = words_of(prompt[:MAX_PROMPT_CHARS])
        vocabulary = set(self.words)
        known = [w for w in words if w in vocabulary]
        unknown = [w for w in words if w not in known]
        suggestions = {w: tuple(difflib.get_close_matches(w, self.words, n=2, cutoff=0.75)) for w in unknown}
        return PromptReading(
            tuple(known[:MAX_PROMPT_TAGS]), tuple(unknown), tuple(known[MAX_PROMPT_TAGS:]),
            {w: s for w, s in suggestions.items() if s},
        )

    def to_dict(self) -> dict[str, object]:
        return {"words": list(self.words), "category_counts": self.category_counts}

    @classmethod
    def from_dict(cls, data: object) -> TagVocabulary:
        """From a model sidecar or data manifest; anything malformed gives an empty vocabulary."""
        if not isinstance(data, dict):
            return cls(())
        words = data.get("words")
        counts = data.get("category_counts")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            return cls(())
        clean: dict[str, dict[str, int]] = {}
        if isinstance(counts, dict):
            for tag, per in counts.items():
                if isinstance(tag, str) and isinstance(per, dict):
                    clean[tag] = {str(c): int(n) for c, n in per.items() if isinstance(n, int)}
        return cls(tuple(words), clean)
