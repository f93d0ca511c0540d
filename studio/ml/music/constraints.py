"""The decoding grammar: which tokens may come next, as a boolean mask over the vocabulary.

Rules (every reachable state has at least one legal token, so decoding never dead-ends):

- after the header: ``BAR``; the clip's first bar opens on its downbeat (a loop has no pickup); then notes as
  ``POS PITCH DUR`` triples, onsets at or after the end of the previous note, every note ending inside its bar;
  ``BAR`` starts the next bar until ``end_bar`` bars are written;
- pitches within ``pitch_range`` and, unless ``chromatic``, in the scale of the key (see ``tokens.MODES``);
- the clip's last bar (``final=True``) is filled without rests, its last note is a tonic-chord tone ending
  exactly on the bar line (so a loop wraps onto its first beat), and ``EOS`` follows it.

With ``final=False`` (varying bars in the middle of a clip) decoding stops when the model starts the bar after
``end_bar``: the ``BAR`` token that would open it is legal once ``end_bar`` has started and ends generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from studio.ml.music import tokens

_PITCHES = np.arange(tokens.PITCH_LOW, tokens.PITCH_HIGH + 1)
PART_RANGES = {"melody": (52, 93), "bass": (28, 64)}


@dataclass
class Grammar:
    header: tokens.Header
    end_bar: int  # bars that exist when decoding stops (1-based count)
    final: bool = True
    chromatic: bool = False
    pitch_range: tuple[int, int] | None = None
    bar: int = 0  # bars started so far
    cursor: int = 0  # tick where the previous note of this bar ended
    phase: str = "free"  # "free" (BAR/POS/EOS next) | "pitch" | "dur" | "done"
    pos: int = 0
    pitch: int = 0
    _scale_pitches: np.ndarray = field(init=False, repr=False)
    _tonic_pitches: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        low, high = self.pitch_range or PART_RANGES[self.header.part]
        in_range = (low <= _PITCHES) & (high >= _PITCHES)
        scale = tokens.scale_pitch_classes(self.header.tonic, self.header.mode)
        tonic = tokens.tonic_chord_pitch_classes(self.header.tonic, self.header.mode)
        classes = _PITCHES % 12
        in_scale = np.isin(classes, list(scale)) | self.chromatic
        self._scale_pitches = in_range & in_scale
        self._tonic_pitches = in_range & np.isin(classes, list(tonic))
        if not self._tonic_pitches.any():
            raise ValueError(f"pitch range {low}-{high} holds no tonic-chord tone")

    @property
    def bar_ticks(self) -> int:
        return self.header.bar_ticks

    @property
    def in_final_bar(self) -> bool:
        return self.final and self.bar == self.end_bar

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def allowed(self) -> np.ndarray:
        mask = np.zeros(tokens.VOCAB_SIZE, dtype=bool)
        length = self.bar_ticks
        if self.phase == "free":
            if self.bar == 0:
                mask[tokens.BAR] = True
            elif self.bar == 1 and self.cursor == 0:  # nothing played yet: start on the downbeat
                mask[tokens.pos_token(0)] = True
            elif self.in_final_bar:
                if self.cursor == length:
                    mask[tokens.EOS] = True
                else:
                    mask[tokens.pos_token(self.cursor)] = True  # no rests in the last bar
            else:
                mask[tokens.pos_token(self.cursor) : tokens.pos_token(length)] = True
                mask[tokens.BAR] = True  # the next bar, or (at end_bar of a middle stretch) the stop signal
        elif self.phase == "pitch":
            pitches = self._scale_pitches
            if self.in_final_bar and length - self.pos < 2:  # no room for another note after this one
                pitches = pitches & self._tonic_pitches
            mask[tokens.PITCH_BASE : tokens.PITCH_BASE + len(_PITCHES)] = pitches
        elif self.phase == "dur":
            longest = length - self.pos
            if self.in_final_bar and not self._is_tonic(self.pitch):
                longest -= 1  # only a tonic-chord tone may end the clip
            mask[tokens.dur_token(1) : tokens.dur_token(longest) + 1] = True
        return mask

    def _is_tonic(self, pitch: int) -> bool:
        return bool(self._tonic_pitches[pitch - tokens.PITCH_LOW])

    def advance(self, token: int, check: bool = True) -> None:
        """Take ``token``; with ``check`` an illegal token is a ValueError (prefixes pass ``check=False``)."""
        if check and not self.allowed()[token]:
            raise ValueError(f"token {tokens.VOCAB[token]} is not allowed here ({self.phase}, bar {self.bar})")
        if self.phase == "free":
            if token == tokens.EOS:
                self.phase = "done"
            elif token == tokens.BAR:
                if not self.final and self.bar == self.end_bar:
                    self.phase = "done"
                else:
                    self.bar += 1
                    self.cursor = 0
            elif tokens.is_pos(token):
                self.pos = tokens.token_pos(token)
                self.phase = "pitch"
            else:
                raise ValueError(f"expected BAR, POS or EOS, found {tokens.VOCAB[token]}")
        elif self.phase == "pitch":
            if not tokens.is_pitch(token):
                raise ValueError(f"expected a PITCH token, found {tokens.VOCAB[token]}")
            self.pitch = tokens.token_pitch(token)
            self.phase = "dur"
        elif self.phase == "dur":
            if not tokens.is_dur(token):
                raise ValueError(f"expected a DUR token, found {tokens.VOCAB[token]}")
            self.cursor = self.pos + tokens.token_dur(token)
            self.phase = "free"
        else:
            raise ValueError("the sequence has already ended")
