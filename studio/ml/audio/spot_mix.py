"""Mixing an ad spot: the voice-over over a music bed that ducks under it (side-chain), fades, and the loudness of
the preset (BS.1770 integrated, true peak under -1 dBTP).

* The bed is first set :data:`BED_BELOW_VOICE_DB` under the voice's loudness, so the two start balanced.
* Side-chain: the voice's level in 10 ms frames says where it speaks; the bed's gain goes down by ``duck_db`` from
  :data:`LOOKAHEAD_S` before each word (so no word starts over full music), holds :data:`HOLD_S` after, and moves
  with :data:`ATTACK_S` / :data:`RELEASE_S` ramps (no pumping between words). If the voice is not at least
  :data:`MIN_VOICE_OVER_BED_DB` above the bed while it speaks, the duck deepens until it is.
* Fades: a short fade-in (no click) and a fade-out over the tail.
* The whole mix is then normalised to the preset (:func:`studio.ml.audio.effects.normalise`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from studio.core.spot import TRUE_PEAK_DBTP, SpotRequest
from studio.ml.audio import effects

FRAME_S = 0.01
SPEAKING_DB = -45.0  # a voice frame louder than this (dBFS RMS) is speech
LOOKAHEAD_S = 0.12
HOLD_S = 0.25
ATTACK_S = 0.08
RELEASE_S = 0.35
FADE_IN_S = 0.05
FADE_OUT_S = 1.5
BED_BELOW_VOICE_DB = 6.0
MIN_VOICE_OVER_BED_DB = 8.0
MARGIN_WINDOW_S = 0.4


def frame_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """RMS level in dBFS of each :data:`FRAME_S` frame of a mono or (n, 2) signal."""
    mono = audio if audio.ndim == 1 else audio.mean(axis=1)
    size = max(1, round(FRAME_S * rate))
    frames = len(mono) // size
    power = np.square(mono[: frames * size].reshape(frames, size)).mean(axis=1)
    return 10 * np.log10(np.maximum(power, 1e-12))


def speaking(voice: np.ndarray, rate: int) -> np.ndarray:
    """Per frame: True where the voice speaks, widened by the lookahead before and the hold after."""
    active = frame_db(voice, rate) > SPEAKING_DB
    before, after = round(LOOKAHEAD_S / FRAME_S), round(HOLD_S / FRAME_S)
    padded = np.pad(active, (after, before))  # frame i looks from `after` frames back to `before` ahead
    return np.lib.stride_tricks.sliding_window_view(padded, after + before + 1).any(axis=1)


def duck_gain(voice: np.ndarray, rate: int, duck_db: float, length: int) -> np.ndarray:
    """Per-sample gain of the bed (``length`` samples): 1 where the voice is silent, ``duck_db`` under it."""
    target_db = np.where(speaking(voice, rate), duck_db, 0.0)
    smoothed = np.empty_like(target_db)
    down, up = abs(duck_db) * FRAME_S / ATTACK_S, abs(duck_db) * FRAME_S / RELEASE_S
    level = 0.0
    for i, want in enumerate(target_db):  # linear ramps in dB: fast down, slow back up
        level = max(want, level - down) if want < level else min(want, level + up)
        smoothed[i] = level
    frame = max(1, round(FRAME_S * rate))
    per_sample = np.interp(np.arange(length) / frame, np.arange(len(smoothed)), smoothed, right=0.0)
    return (10 ** (per_sample / 20)).astype(np.float32)


def fades(length: int, rate: int) -> np.ndarray:
    gain = np.ones(length, np.float32)
    fade_in = min(length, round(FADE_IN_S * rate))
    fade_out = min(length, round(FADE_OUT_S * rate))
    gain[:fade_in] = np.linspace(0.0, 1.0, fade_in, endpoint=False)
    gain[length - fade_out:] *= np.cos(np.linspace(0.0, math.pi / 2, fade_out)) ** 2
    return gain


def voice_over_bed_db(voice: np.ndarray, bed: np.ndarray, rate: int) -> float:
    """How far the voice is above the bed while it speaks: over :data:`MARGIN_WINDOW_S` windows where it speaks
    most of the time, the voice's RMS minus the bed's, the 10th percentile (dB)."""
    window = round(MARGIN_WINDOW_S / FRAME_S)
    voice_db, bed_db = frame_db(voice, rate), frame_db(bed, rate)
    active = voice_db > SPEAKING_DB
    margins = []
    for start in range(0, len(voice_db) - window + 1, window // 2):
        part = slice(start, start + window)
        if active[part].mean() < 0.6:
            continue
        v = 10 * np.log10(np.mean(10 ** (voice_db[part] / 10)))
        b = 10 * np.log10(np.mean(10 ** (bed_db[part] / 10)))
        margins.append(v - b)
    return float(np.percentile(margins, 10)) if margins else math.inf


def loudness_lufs(stereo: np.ndarray, rate: int) -> float:
    return effects.loudness(torch.from_numpy(np.ascontiguousarray(stereo.T)), rate)


def mix_spot(voice: np.ndarray, bed: np.ndarray, rate: int, request: SpotRequest) -> tuple[dict[str, np.ndarray],
                                                                                          dict[str, float]]:
    """Stems {"voice", "music"} ((n, 2) float32, summing to the mix) and measurements of the mixed spot.

    ``voice``: mono, already placed on the spot's timeline (zeros before the lead-in); ``bed``: (n, 2) music of the
    spot's length."""
    n = len(bed)
    voice = np.pad(voice, (0, max(0, n - len(voice))))[:n].astype(np.float32)
    voice_lufs = loudness_lufs(np.stack([voice, voice], axis=1), rate)
    bed_lufs = loudness_lufs(bed, rate)
    if math.isfinite(voice_lufs) and math.isfinite(bed_lufs):
        bed = bed * 10 ** ((voice_lufs - BED_BELOW_VOICE_DB - bed_lufs) / 20)
    bed = bed * fades(n, rate)[:, None]
    duck = request.duck_db
    for _ in range(4):  # deepen the duck until the voice stands clear of the bed
        ducked = bed * duck_gain(voice, rate, duck, n)[:, None]
        margin = voice_over_bed_db(voice, ducked, rate)
        if margin >= MIN_VOICE_OVER_BED_DB + 1.0 or duck <= -30.0:
            break
        duck = max(-30.0, duck - (MIN_VOICE_OVER_BED_DB + 2.0 - margin))
    stems = torch.from_numpy(np.stack([np.stack([voice, voice]), ducked.T.astype(np.float32)]))
    stems, lufs, peak_db = effects.normalise(stems, rate, request.target_lufs, TRUE_PEAK_DBTP)
    voice_out, bed_out = (stems[i].T.contiguous().numpy() for i in range(2))
    measured = {"lufs": round(float(lufs), 2), "true_peak_dbtp": round(float(peak_db), 2),
                "voice_over_bed_db": round(voice_over_bed_db(voice_out[:, 0], bed_out, rate), 1),
                "duck_db": round(duck, 1)}
    return {"voice": voice_out, "music": bed_out}, measured
