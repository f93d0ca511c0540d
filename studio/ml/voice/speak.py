"""A script to one voice-over: pieces synthesised side by side (one CPU thread each), pitch and rate set in one
resampling, silences between sentences and lines, each line's timing, and the level of spoken word online
(-16 LUFS, peaks under -1 dBFS).

Pitch without changing the pace: the voice speaks ``2**(semitones/12)`` times slower, then the piece is played that
much faster (resampled), which raises its pitch by the same factor and brings its length back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import numpy as np
import torch
import torchaudio.functional as AF

from studio.core.voice import LineTiming, Piece, Speech, VoiceRequest, check_script, script_lines, script_pieces
from studio.ml.audio import effects

OUTPUT_RATE = 44100
RATE_STEP = 50  # pitched rates are rounded to a multiple of this, so resampling kernels stay small
SILENCE = 1e-3  # below this a piece's start and end count as silence (trimmed for exact line timings)
EDGE_S = 0.02  # silence kept at the trimmed edges
VOICE_LUFS = -16.0
PEAK = 10 ** (-1 / 20)


class VoiceEngine(Protocol):
    name: str
    sha256: str
    rate: int
    engine: str

    def synthesize(self, text: str, length_scale: float, seed: int) -> np.ndarray: ...


def pitch_factor(semitones: float) -> float:
    return 2.0 ** (semitones / 12.0)


def resample(audio: np.ndarray, source_rate: int, target_rate: int = OUTPUT_RATE) -> np.ndarray:
    if source_rate == target_rate or len(audio) == 0:
        return audio.astype(np.float32)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), source_rate, target_rate)
    return out.numpy()


def trim(audio: np.ndarray, rate: int) -> np.ndarray:
    """The piece without the silence the voice put around it (a little kept at each edge)."""
    loud = np.flatnonzero(np.abs(audio) > SILENCE)
    if not len(loud):
        return audio[:0]
    edge = round(EDGE_S * rate)
    return audio[max(0, loud[0] - edge): loud[-1] + 1 + edge]


def render_piece(engine: VoiceEngine, piece: Piece, request: VoiceRequest, index: int) -> np.ndarray:
    factor = pitch_factor(request.pitch)
    raw = engine.synthesize(piece.text, factor / request.speed, request.seed + index)
    heard_rate = max(RATE_STEP, round(engine.rate * factor / RATE_STEP) * RATE_STEP)  # played `factor` faster
    return trim(resample(raw, heard_rate), OUTPUT_RATE)


def level(audio: np.ndarray) -> np.ndarray:
    """Spoken-word loudness (-16 LUFS), then peaks kept under -1 dBFS."""
    if len(audio) < OUTPUT_RATE // 2 or not np.any(audio):
        return audio
    measured = effects.loudness(torch.from_numpy(audio)[None], OUTPUT_RATE)
    if math.isfinite(measured):
        audio = audio * 10 ** ((VOICE_LUFS - measured) / 20)
    peak = float(np.abs(audio).max())
    return (audio * (PEAK / peak) if peak > PEAK else audio).astype(np.float32)


def speak(engine: VoiceEngine, request: VoiceRequest, progress: Callable[[float, str], None],
          check_cancel: Callable[[], None], workers: int = 2, note: Callable[[str], None] | None = None) -> Speech:
    """The voice-over of ``request.text`` (see the module docstring); ``progress`` and ``check_cancel`` are called
    between pieces, so a long script reports and stops at once."""
    text, left_out = check_script(request.text, request.skip_unsayable)
    if left_out and note is not None:
        note(left_out)
    pieces = script_pieces(text, request.line_pause, request.sentence_pause)
    lines = script_lines(text)
    total_chars = sum(len(p.text) for p in pieces) or 1
    started = time.perf_counter()
    audio_parts: list[np.ndarray] = []
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    position = 0
    done_chars = 0
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pieces)))) as pool:
        futures: list[Future[np.ndarray]] = [pool.submit(render_piece, engine, p, request, i)
                                             for i, p in enumerate(pieces)]
        try:
            for piece, future in zip(pieces, futures, strict=True):
                check_cancel()  # between pieces too: pieces already rendered must not outrun a cancel
                while not future.done():
                    check_cancel()
                    wait([future], timeout=0.05)
                rendered = future.result()
                starts.setdefault(piece.line, position / OUTPUT_RATE)
                audio_parts.append(rendered)
                position += len(rendered)
                ends[piece.line] = position / OUTPUT_RATE
                gap = round(piece.pause_after * OUTPUT_RATE)
                audio_parts.append(np.zeros(gap, np.float32))
                position += gap
                done_chars += len(piece.text)
                progress(done_chars / total_chars, f"speaking line {piece.line + 1} of {len(lines)}")
        except BaseException:
            for pending in futures:
                pending.cancel()
            raise
    audio = level(np.concatenate(audio_parts) if audio_parts else np.zeros(0, np.float32))
    timings = tuple(LineTiming(number, line, starts.get(i, 0.0), ends.get(i, 0.0))
                    for i, (number, line) in enumerate(lines))
    seconds = time.perf_counter() - started
    recipe: dict[str, Any] = {
        "kind": request.kind, "model": engine.name, "model_sha256": engine.sha256, "engine": engine.engine,
        "seed": request.seed, "params": {k: v for k, v in request.to_dict().items() if k != "seed"},
        "rate": OUTPUT_RATE, "duration_s": round(len(audio) / OUTPUT_RATE, 3), "lufs": VOICE_LUFS,
        "realtime_factor": round(len(audio) / OUTPUT_RATE / max(seconds, 1e-9), 2),
    }
    return Speech(OUTPUT_RATE, audio, timings, recipe)
