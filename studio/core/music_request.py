"""The typed request of ``music.generate``: a clip of a style, anything not given taken from the style preset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from studio.core.music_theory import validate_bars, validate_bpm
from studio.core.requests import Request, choice, number


@dataclass(frozen=True)
class MusicRequest(Request):
    kind: ClassVar[str] = "music.generate"
    style: str = "chiptune-adventure"
    key: str | None = None  # "A minor"
    bpm: float | None = None
    meter: str | None = None  # "4/4"
    bars: int | None = None
    form: str | None = None  # "period" | "through"
    temperature: float = number(0.9, 0.0, 2.0)
    top_p: float = number(0.95, 0.01, 1.0)
    renderer: str = choice("synth", ("synth", "soundfont"))
    soundfont: str = ""
    arrange_seed: int | None = None  # chords, bass, drums and the synth's noise (default: the seed)
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bpm is not None:
            validate_bpm(self.bpm)
        if self.bars is not None:
            validate_bars(self.bars)
