"""Key estimation for clips that do not say their key (Krumhansl-Kessler profiles, duration-weighted)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class_weights(notes: Iterable[Mapping[str, Any]]) -> np.ndarray:
    weights = np.zeros(12)
    for note in notes:
        weights[int(note["pitch"]) % 12] += float(note["duration"])
    return weights


def estimate_key(notes: Iterable[Mapping[str, Any]]) -> tuple[int, str]:
    """(tonic pitch class, "major" | "minor") best correlated with the notes' pitch-class durations."""
    weights = pitch_class_weights(notes)
    if not weights.any():
        return 0, "major"
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            score = float(np.corrcoef(weights, np.roll(profile, tonic))[0, 1])
            if np.isfinite(score) and score > best[0]:
                best = (score, tonic, mode)
    return best[1], best[2]
