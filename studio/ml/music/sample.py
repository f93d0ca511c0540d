"""Constrained melody sampling from the music Transformer (public API for the ``music.*`` tasks).

Notes are dicts ``{"part", "pitch", "start", "duration", "velocity"}`` with ``start``/``duration`` in quarter-note
beats from the start of the clip; generated melodies are part ``"melody"``. Bars are numbered from 1 (as a musician
says "bars 3-4"), ``bars_from``/``bars_to`` inclusive. ``key`` is "A", "A minor" or "F# dorian" (a mode named in
``key`` wins over ``mode``); modes are major, minor, dorian, mixolydian; meters are ``tokens.METERS``.

``cancel`` is called before every token and stops sampling by raising (pass ``ctx.check_cancel``);
``on_progress(fraction, message)`` is called as each new bar starts.

Sampling: a KV-cached decoder, temperature then top-p (nucleus) over the tokens the grammar allows
(:mod:`studio.ml.music.constraints`), drawn with a ``torch.Generator`` seeded from ``seed`` alone, so the same seed,
settings and model give the same notes. Clips longer than the model's context are written with a sliding window:
the header plus the most recent whole bars are re-encoded when the context is full. Decoding one token at a time
is latency-bound, so it runs on one CPU thread (several threads only wait on each other for such small matrices,
badly so on a busy machine); the previous thread count is restored afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.core.errors import BadInputError
from studio.ml.music import tokens
from studio.ml.music.constraints import Grammar

Note = dict[str, Any]
CancelFn = Callable[[], None]
ProgressFn = Callable[[float, str], None]
MAX_CLIP_BARS = 128


class _Decoder:
    """Feeds tokens to the model lazily and returns next-token logits; slides the window when it is full."""

    def __init__(self, model: nn.Module, header: tokens.Header) -> None:
        self.model = model
        self.header = header
        self.block = int(model.config.block_size)
        self.device = next(model.parameters()).device
        self.body: list[int] = []  # every body token so far (prefix and generated)
        self.bars_started = 0
        self.past: torch.Tensor | None = None
        self.cached = 0  # tokens represented in the cache
        self.pending: list[int] = list(header.tokens())

    def push(self, token: int) -> None:
        self.body.append(token)
        self.bars_started += token == tokens.BAR
        self.pending.append(token)

    def _window(self) -> list[int]:
        """Header + the latest whole bars that fit in half the context (else the current bar, else its end)."""
        budget = self.block // 2 - tokens.HEADER_LEN
        length = len(self.body)
        starts = [i for i, t in enumerate(self.body) if t == tokens.BAR]
        fitting = [s for s in starts if length - s <= budget]
        if fitting:
            start = fitting[0]
        elif starts and length - starts[-1] < self.block - tokens.HEADER_LEN:
            start = starts[-1]
        else:  # one bar longer than the whole context: only tiny test models get here
            start = max(0, length - budget)
        tail = self.body[start:]
        visible = sum(t == tokens.BAR for t in tail)
        remaining = self.header.bars - self.bars_started
        return [*self.header.tokens(visible + remaining), *tail]

    @torch.no_grad()
    def next_logits(self) -> torch.Tensor:
        if self.cached + len(self.pending) > self.block:
            self.past, self.cached, self.pending = None, 0, self._window()
        ids = torch.tensor([self.pending], dtype=torch.long, device=self.device)
        logits, self.past = self.model(ids, self.past)
        self.cached += len(self.pending)
        self.pending = []
        return logits[0, -1].float().cpu()


@contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Decode on one CPU thread (see the module docstring), restoring the thread count afterwards."""
    previous = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _pick(logits: torch.Tensor, mask: np.ndarray, temperature: float, top_p: float, rng: torch.Generator) -> int:
    allowed = torch.from_numpy(mask)
    logits = logits.masked_fill(~allowed, -math.inf)
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    ordered, order = probs.sort(descending=True)
    keep = ordered.cumsum(0) - ordered < top_p  # the smallest set whose mass reaches top_p (never empty)
    ordered = ordered * keep
    choice = torch.multinomial(ordered / ordered.sum(), 1, generator=rng)
    return int(order[choice])


def _check_settings(temperature: float, top_p: float, seed: int) -> None:
    if not (0 <= temperature <= 5) or not (0 < top_p <= 1):
        raise BadInputError(f"temperature must be 0-5 and top-p in (0, 1] (got {temperature}, {top_p})")
    if not isinstance(seed, int | np.integer):
        raise BadInputError(f"seed must be a whole number, not {seed!r}")


def sample_tokens(
    model: nn.Module,
    grammar: Grammar,
    prefix_body: Sequence[int],
    seed: int,
    temperature: float = 0.9,
    top_p: float = 0.95,
    cancel: CancelFn | None = None,
    on_progress: ProgressFn | None = None,
) -> list[int]:
    """Body tokens after ``prefix_body`` (which ends with the BAR opening the first new bar) until the grammar is
    done; the stop token is not returned."""
    _check_settings(temperature, top_p, seed)
    decoder = _Decoder(model, grammar.header)
    for token in prefix_body:
        grammar.advance(token, check=False)
        decoder.push(token)
    first_bar = grammar.bar
    new_bars = max(1, grammar.end_bar - first_bar + 1)
    rng = torch.Generator().manual_seed(int(seed))
    generated: list[int] = []
    was_training = model.training
    model.eval()
    try:
        with _one_cpu_thread(decoder.device):
            while not grammar.done:
                if cancel:
                    cancel()
                mask = grammar.allowed()
                choices = np.flatnonzero(mask)
                if len(choices) == 1:
                    token = int(choices[0])
                else:
                    token = _pick(decoder.next_logits(), mask, temperature, top_p, rng)
                grammar.advance(token)
                if grammar.done:
                    break
                generated.append(token)
                decoder.push(token)
                if token == tokens.BAR and on_progress:
                    done = grammar.bar - first_bar
                    on_progress(done / new_bars, f"bar {grammar.bar} of {grammar.end_bar}")
    finally:
        model.train(was_training)
    if on_progress:
        on_progress(1.0, f"{grammar.end_bar} bars")
    return generated


def _header(key: str, mode: str | None, meter: str, bpm: float, bars: int, part: str) -> tokens.Header:
    if not 1 <= int(bars) <= MAX_CLIP_BARS:
        raise BadInputError(f"a clip has 1 to {MAX_CLIP_BARS} bars, not {bars}")
    return tokens.Header.from_params(key, mode, meter, bpm, int(bars), part)


def _clip_bars(notes: Sequence[Mapping[str, Any]], meter: str) -> int:
    """Bars the notes reach into (a note ending exactly on a bar line does not open the next bar)."""
    beats = tokens.bar_ticks(meter) / tokens.TICKS_PER_BEAT
    end = max((float(n["start"]) + float(n["duration"]) for n in notes), default=0.0)
    return max(1, math.ceil(end / beats - 1e-9))


def _prompt_body(events: Sequence[tokens.Event], bars: int) -> list[int]:
    """The given bars, closed by the BAR that opens the first bar to write (given bars get no new notes)."""
    return [*(t for bar in tokens.encode_bars(events, bars) for t in bar), tokens.BAR]


def _new_notes(generated: Sequence[int], first_bar: int, header: tokens.Header) -> list[Note]:
    """Generated body tokens (the notes of bar ``first_bar`` + 1 onwards) -> note dicts in clip beats."""
    events, _ = tokens.decode_events([tokens.BAR, *generated])
    shifted = [tokens.Event(e.bar + first_bar, e.pos, e.pitch, e.dur) for e in events]
    return tokens.events_to_notes(shifted, header.meter, header.part)


def _sorted(notes: Sequence[Note]) -> list[Note]:
    return sorted(notes, key=lambda n: (float(n["start"]), str(n["part"]), int(n["pitch"])))


def generate_melody(
    model: nn.Module,
    key: str,
    mode: str,
    meter: str,
    bpm: int,
    bars: int,
    seed: int,
    temperature: float = 0.9,
    top_p: float = 0.95,
    chromatic: bool = False,
    prefix_notes: Sequence[Note] | None = None,
    cancel: CancelFn | None = None,
    on_progress: ProgressFn | None = None,
    prefix_bars: int | None = None,
    part: str = "melody",
    pitch_range: tuple[int, int] | None = None,
) -> list[Note]:
    """A melody of exactly ``bars`` bars whose last bar resolves onto the tonic chord and fills the bar.

    ``prefix_notes`` (of ``part``) fix the first ``prefix_bars`` bars (default: the bars they reach into); the
    returned list holds the prefix notes as given followed by the new ones.
    """
    header = _header(key, mode, meter, bpm, bars, part)
    prefix = [dict(n) for n in prefix_notes or () if n.get("part", part) == part]
    prefix_events = tokens.quantise(prefix, header.meter, part=None)
    n_prefix = (prefix_bars if prefix_bars is not None else _clip_bars(prefix, header.meter)) if prefix else 0
    if n_prefix >= header.bars:
        raise BadInputError(f"the first {n_prefix} bars are given; ask for more than {n_prefix} bars in total")
    grammar = Grammar(header, end_bar=header.bars, chromatic=chromatic, pitch_range=pitch_range)
    generated = sample_tokens(
        model, grammar, _prompt_body(prefix_events, n_prefix), seed, temperature, top_p, cancel, on_progress
    )
    return _sorted(prefix + _new_notes(generated, n_prefix, header))


def _restated(opening: Sequence[Note], bars: int, at_bar: int, meter: str) -> list[Note]:
    """The notes of the first ``bars`` bars of ``opening`` (a note held past them cut there), moved to ``at_bar``."""
    beats = tokens.bar_ticks(meter) / tokens.TICKS_PER_BEAT
    end, shift = bars * beats, at_bar * beats
    moved = []
    for n in opening:
        start = float(n["start"])
        if start < end - 1e-9:
            moved.append({**n, "start": start + shift, "duration": min(float(n["duration"]), end - start)})
    return moved


def generate_period(
    model: nn.Module,
    key: str,
    mode: str,
    meter: str,
    bpm: int,
    bars: int,
    seed: int,
    temperature: float = 0.9,
    top_p: float = 0.95,
    chromatic: bool = False,
    cancel: CancelFn | None = None,
    on_progress: ProgressFn | None = None,
    pitch_range: tuple[int, int] | None = None,
) -> list[Note]:
    """A melody in period form: an opening phrase of ``bars / 2`` bars, then an answer that restates the opening's
    first half and ends with new bars resolving onto the tonic (8 bars: 1-4 new, 5-6 = 1-2, 7-8 new).

    Clips of fewer than 4 bars or an odd number of bars have no two equal phrases: they are written through.
    """
    if bars < 4 or bars % 2:
        return generate_melody(model, key, mode, meter, bpm, bars, seed, temperature, top_p, chromatic, cancel=cancel,
                               on_progress=on_progress, pitch_range=pitch_range)
    half = bars // 2
    restate = half // 2

    def stage(low: float, high: float) -> ProgressFn | None:
        if on_progress is None:
            return None
        return lambda fraction, message: on_progress(low + (high - low) * fraction, message)

    opening = generate_melody(model, key, mode, meter, bpm, half, seed, temperature, top_p, chromatic, cancel=cancel,
                              on_progress=stage(0.0, 0.6), pitch_range=pitch_range)
    prefix = opening + _restated(opening, restate, half, meter)
    return generate_melody(model, key, mode, meter, bpm, bars, seed + 1, temperature, top_p, chromatic, prefix,
                           cancel=cancel, on_progress=stage(0.6, 1.0), prefix_bars=half + restate,
                           pitch_range=pitch_range)


def continue_notes(
    model: nn.Module,
    notes: Sequence[Note],
    extra_bars: int,
    key: str,
    mode: str,
    meter: str,
    bpm: int,
    seed: int,
    temperature: float = 0.9,
    top_p: float = 0.95,
    chromatic: bool = False,
    cancel: CancelFn | None = None,
    on_progress: ProgressFn | None = None,
    clip_bars: int | None = None,
) -> list[Note]:
    """The whole clip: ``notes`` unchanged (all parts) plus ``extra_bars`` new melody bars after them.

    ``clip_bars`` is the length of the given clip (default: the bars its notes reach into).
    """
    tokens.check_meter(meter)
    melody = [n for n in notes if n.get("part", "melody") == "melody"]
    if not melody:
        raise BadInputError("the clip has no melody notes to continue")
    if int(extra_bars) < 1:
        raise BadInputError(f"add at least one bar (got {extra_bars})")
    have = clip_bars if clip_bars is not None else _clip_bars(notes, tokens.check_meter(meter))
    continued = generate_melody(
        model, key, mode, meter, bpm, have + int(extra_bars), seed, temperature, top_p, chromatic,
        prefix_notes=melody, cancel=cancel, on_progress=on_progress, prefix_bars=have,
    )
    others = [dict(n) for n in notes if n.get("part", "melody") != "melody"]
    return _sorted(others + continued)


def vary_bars(
    model: nn.Module,
    notes: Sequence[Note],
    bars_from: int,
    bars_to: int,
    key: str,
    mode: str,
    meter: str,
    bpm: int,
    seed: int,
    temperature: float = 0.9,
    top_p: float = 0.95,
    chromatic: bool = False,
    cancel: CancelFn | None = None,
    on_progress: ProgressFn | None = None,
    clip_bars: int | None = None,
) -> list[Note]:
    """The whole clip with melody bars ``bars_from..bars_to`` (1-based, inclusive) regenerated, the rest kept.

    The bars before ``bars_from`` are the model's prompt; melody notes after ``bars_to`` and every other part are
    returned unchanged. When ``bars_to`` is the last bar, the new ending resolves as in :func:`generate_melody`.
    """
    meter = tokens.check_meter(meter)
    total = clip_bars if clip_bars is not None else _clip_bars(notes, meter)
    if not 1 <= int(bars_from) <= int(bars_to) <= total:
        raise BadInputError(f"bars {bars_from}-{bars_to} are not inside the clip's bars 1-{total}")
    header = _header(key, mode, meter, bpm, total, "melody")
    beats = header.bar_ticks / tokens.TICKS_PER_BEAT
    range_start, range_end = (bars_from - 1) * beats, bars_to * beats
    melody = [dict(n) for n in notes if n.get("part", "melody") == "melody"]
    before = [n for n in melody if float(n["start"]) < range_start - 1e-9]
    for n in before:  # a note held into the varied bars stops where they begin
        if float(n["start"]) + float(n["duration"]) > range_start + 1e-9:
            n["duration"] = range_start - float(n["start"])
    after = [n for n in melody if float(n["start"]) >= range_end - 1e-9]
    prefix_events = tokens.quantise(before, meter, part=None)
    grammar = Grammar(header, end_bar=int(bars_to), final=int(bars_to) == total, chromatic=chromatic)
    generated = sample_tokens(
        model, grammar, _prompt_body(prefix_events, bars_from - 1), seed, temperature, top_p, cancel, on_progress
    )
    others = [dict(n) for n in notes if n.get("part", "melody") != "melody"]
    return _sorted(others + before + _new_notes(generated, bars_from - 1, header) + after)
