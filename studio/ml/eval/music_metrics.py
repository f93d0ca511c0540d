"""How good is a melody model: likelihood on held-out tunes, and generated clips compared with those tunes.

- ``val_nll``: negative log-likelihood per token (nats) of the validation tunes in their written keys.
- ``in_key_ratio``: fraction of generated notes in the key's scale, sampled with ``chromatic=True`` so the
  constraint does not decide it (the validation tunes' own ratio is reported beside it).
- ``pitch_class_tv``, ``duration_tv``, ``onset_tv``: total-variation distance (0 = same, 1 = disjoint) between
  histograms of generated and validation notes: pitch class relative to the tonic, length in ticks, onset within
  the beat. ``*_tv_reference`` is the same distance between the training and validation tunes (the floor a model
  can hope for).
- ``repeated_bars``: fraction of non-empty bars that repeat an earlier bar of the same clip exactly (tunes repeat
  phrases; a model that never does, or always does, is off), for generated clips and for the validation tunes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from torch import nn

from studio.ml.data.music import MusicData
from studio.ml.music import tokens
from studio.ml.music.sample import generate_melody, generate_period
from studio.ml.train.music import validation_nll

Events = Sequence[tokens.Event]


def in_key_ratio(events: Events, tonic: int, mode: str) -> float:
    scale = tokens.scale_pitch_classes(tonic, mode)
    return sum(e.pitch % 12 in scale for e in events) / max(1, len(events))


def pitch_class_counts(events: Events, tonic: int) -> np.ndarray:
    counts = np.zeros(12)
    for e in events:
        counts[(e.pitch - tonic) % 12] += 1
    return counts


def duration_counts(events: Events) -> np.ndarray:
    counts = np.zeros(tokens.MAX_BAR_TICKS + 1)
    for e in events:
        counts[e.dur] += 1
    return counts


def onset_counts(events: Events) -> np.ndarray:
    counts = np.zeros(tokens.TICKS_PER_BEAT)
    for e in events:
        counts[e.pos % tokens.TICKS_PER_BEAT] += 1
    return counts


def tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two histograms (normalised here)."""
    if a.sum() == 0 or b.sum() == 0:
        return 1.0
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def repeated_bar_fraction(events: Events) -> float:
    bars: dict[int, list[tuple[int, int, int]]] = {}
    for e in events:
        bars.setdefault(e.bar, []).append((e.pos, e.pitch, e.dur))
    seen: set[tuple] = set()
    repeats = 0
    for bar in sorted(bars):
        content = tuple(bars[bar])
        repeats += content in seen
        seen.add(content)
    return repeats / max(1, len(bars))


class Profile:
    """Accumulated statistics of a set of clips (each with its own key)."""

    def __init__(self) -> None:
        self.pitch_classes = np.zeros(12)
        self.durations = np.zeros(tokens.MAX_BAR_TICKS + 1)
        self.onsets = np.zeros(tokens.TICKS_PER_BEAT)
        self.in_key: list[float] = []
        self.repeats: list[float] = []

    def add(self, events: Events, tonic: int, mode: str) -> None:
        if not events:
            return
        self.pitch_classes += pitch_class_counts(events, tonic)
        self.durations += duration_counts(events)
        self.onsets += onset_counts(events)
        self.in_key.append(in_key_ratio(events, tonic, mode))
        self.repeats.append(repeated_bar_fraction(events))

    @classmethod
    def of_data(cls, data: MusicData, limit: int | None = None) -> Profile:
        profile = cls()
        for i in range(len(data) if limit is None else min(limit, len(data))):
            tune = data.tune(i)
            events = [tokens.Event(*map(int, e)) for e in tune.events]
            profile.add(events, tune.header.tonic, tune.header.mode)
        return profile

    def distances(self, other: Profile) -> dict[str, float]:
        return {
            "pitch_class_tv": tv_distance(self.pitch_classes, other.pitch_classes),
            "duration_tv": tv_distance(self.durations, other.durations),
            "onset_tv": tv_distance(self.onsets, other.onsets),
        }


def _events_of(notes: Iterable[dict[str, Any]], meter: str) -> list[tokens.Event]:
    return tokens.quantise(notes, meter)


def evaluate(
    model: nn.Module,
    train: MusicData,
    val: MusicData,
    samples: int = 32,
    max_bars: int = 16,
    seed: int = 0,
    device: str = "cpu",
    on_progress: Callable[[float, str], None] | None = None,
    form: str = "through",
) -> dict[str, float]:
    """All metrics; generated clips take their key, mode, meter, tempo and length from validation tunes and are
    written in ``form`` ("through": the model alone; "period": as the styles write them)."""
    write = generate_period if form == "period" else generate_melody
    model = model.to(device).eval()
    nll, count = validation_nll(model, val.validation_sequences(model.config.block_size), device)
    val_profile = Profile.of_data(val)
    train_profile = Profile.of_data(train)
    generated = Profile()
    picks = np.random.default_rng(seed).choice(len(val), size=min(samples, len(val)), replace=False)
    melody_picks = [int(i) for i in picks if val.header(int(i)).part == "melody"]
    for n, i in enumerate(melody_picks):
        head = val.header(i)
        bpm = {"slow": 70, "moderate": 96, "fast": 126, "very_fast": 160}[head.tempo]
        key = f"{tokens.NOTE_NAMES[head.tonic]} {head.mode}"
        notes = write(model, key, head.mode, head.meter, bpm, min(head.bars, max_bars), seed=seed + n, chromatic=True)
        generated.add(_events_of(notes, head.meter), head.tonic, head.mode)
        if on_progress:
            on_progress((n + 1) / len(melody_picks), f"generated {n + 1} of {len(melody_picks)} clips")
    metrics = {"val_nll": nll, "val_tokens": count, "val_perplexity": float(np.exp(nll))}
    metrics |= generated.distances(val_profile)
    metrics |= {f"{k}_reference": v for k, v in train_profile.distances(val_profile).items()}
    metrics |= {
        "in_key_ratio": float(np.mean(generated.in_key)) if generated.in_key else 0.0,
        "in_key_ratio_val": float(np.mean(val_profile.in_key)),
        "repeated_bars": float(np.mean(generated.repeats)) if generated.repeats else 0.0,
        "repeated_bars_val": float(np.mean(val_profile.repeats)),
        "generated_clips": len(melody_picks),
    }
    return {k: round(float(v), 4) if isinstance(v, float) else v for k, v in metrics.items()}
