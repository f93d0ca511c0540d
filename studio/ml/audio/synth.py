"""The project's own synthesiser: chiptune voices with ADSR envelopes and noise drums, vectorised in torch.

All notes of a part are rendered at once, with no per-sample Python loop: the notes' sample ranges are laid end to
end in one buffer (``segments``), every sample knows its note and its time since that note's start, phases,
waveforms and envelopes are computed in closed form on the worker's device, and ``index_add_`` sums the buffer
into the clip at sample-accurate positions. With ``wrap=True`` (a loop) a note's tail that runs past the clip's
end is added at the start instead, so the loop continues into itself without a click.

Pulse and saw waves are band-limited with PolyBLEP; the triangle's harmonics fall at 12 dB per octave, so its
aliasing stays far below the pulse's and it is left plain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from studio.core.music_styles import Instrument

SAMPLE_RATE = 44100
PULSE_WIDTHS = {"pulse12": 0.125, "pulse25": 0.25, "pulse50": 0.5}
RMS_TARGET = 1 / math.sqrt(3)  # every voice is scaled to the RMS of a full-scale saw
MIN_ATTACK_S, MIN_RELEASE_S = 0.001, 0.003

Note = dict[str, Any]


def midi_to_hz(pitch: torch.Tensor | float) -> torch.Tensor | float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def note_samples(notes: Sequence[Note], bpm: float, rate: int) -> tuple[list[int], list[int]]:
    """(start sample, gate length in samples) per note; touching notes share their boundary sample exactly."""
    per_beat = 60.0 * rate / bpm
    starts, gates = [], []
    for n in notes:
        start = round(float(n["start"]) * per_beat)
        end = round((float(n["start"]) + float(n["duration"])) * per_beat)
        starts.append(start)
        gates.append(max(1, end - start))
    return starts, gates


def segments(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For notes of ``lengths`` samples laid end to end: (note index, sample index within the note) per sample."""
    index = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
    offsets = torch.cumsum(lengths, 0) - lengths
    local = torch.arange(index.numel(), device=lengths.device) - offsets[index]
    return index, local


def adsr(t: torch.Tensor, gate: torch.Tensor, attack: float, decay: float, sustain: float,
         release: float) -> torch.Tensor:
    """Linear ADSR at times ``t`` (s) for notes held ``gate`` seconds; the release starts from the level reached."""
    attack = max(attack, MIN_ATTACK_S)
    decay = max(decay, 1e-4)
    release = max(release, MIN_RELEASE_S)

    def held(time: torch.Tensor) -> torch.Tensor:
        rising = time / attack
        falling = 1.0 - (1.0 - sustain) * (time - attack) / decay
        return torch.where(time < attack, rising, torch.where(time < attack + decay, falling,
                                                               torch.full_like(time, sustain)))

    level_at_gate = held(gate)
    released = level_at_gate * torch.clamp(1.0 - (t - gate) / release, min=0.0)
    return torch.where(t < gate, held(t), released)


def poly_blep(phase: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """The PolyBLEP residual that removes a naive waveform's step discontinuity at phase 0 (band-limits it)."""
    after = phase / dt
    before = (phase - 1.0) / dt
    zero = torch.zeros_like(phase)
    return torch.where(phase < dt, 2 * after - after * after - 1.0,
                       torch.where(phase > 1.0 - dt, before * before + 2 * before + 1.0, zero))


def oscillator(voice: str, phase: torch.Tensor, dt: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One cycle per unit of ``phase`` (in [0, 1)); ``dt`` is the phase increment per sample."""
    if voice in PULSE_WIDTHS:
        width = PULSE_WIDTHS[voice]
        wave = torch.where(phase < width, 1.0, -1.0)
        wave = wave + poly_blep(phase, dt) - poly_blep(torch.remainder(phase + (1.0 - width), 1.0), dt)
        wave = wave - (2 * width - 1)  # remove the DC of an asymmetric pulse
        return wave * (RMS_TARGET / (2 * math.sqrt(width * (1 - width))))
    if voice == "saw":
        return 2.0 * phase - 1.0 - poly_blep(phase, dt)
    if voice == "triangle":
        return 4.0 * torch.abs(phase - 0.5) - 1.0
    if voice == "sine":
        return torch.sin(2 * math.pi * phase) * (RMS_TARGET * math.sqrt(2))
    if voice == "noise":
        if noise is None:
            raise ValueError("the noise voice needs a noise buffer")
        return noise * RMS_TARGET
    raise ValueError(f"unknown voice {voice!r}")


def _place(out: torch.Tensor, starts: torch.Tensor, index: torch.Tensor, local: torch.Tensor,
           values: torch.Tensor, wrap: bool) -> torch.Tensor:
    positions = starts[index] + local
    total = out.numel()
    if wrap:
        return out.index_add_(0, torch.remainder(positions, total), values)
    keep = positions < total
    return out.index_add_(0, positions[keep], values[keep])


def render_tonal(notes: Sequence[Note], inst: Instrument, bpm: float, total: int, rate: int = SAMPLE_RATE,
                 device: str = "cpu", seed: int = 0, wrap: bool = True) -> torch.Tensor:
    """A pitched part as a mono (total,) float32 tensor on ``device``."""
    out = torch.zeros(total, device=device)
    if not notes:
        return out
    starts_list, gates_list = note_samples(notes, bpm, rate)
    release = max(inst.release, MIN_RELEASE_S)
    tail = math.ceil(release * rate)
    starts = torch.tensor(starts_list, device=device)
    gates = torch.tensor(gates_list, device=device).clamp(max=max(1, total - tail))
    lengths = (gates + tail).clamp(max=total)
    index, local = segments(lengths)
    freq = midi_to_hz(torch.tensor([float(n["pitch"]) for n in notes], device=device, dtype=torch.float64))
    amp = torch.tensor([int(n["velocity"]) / 127.0 for n in notes], device=device)
    t64 = local.to(torch.float64) / rate
    f = freq[index]
    cycles = f * t64
    if inst.vibrato_cents > 0:
        depth = 2.0 ** (inst.vibrato_cents / 1200.0) - 1.0
        rate_hz = inst.vibrato_hz
        ramp = torch.clamp(t64 / 0.25, max=1.0)  # vibrato fades in over the first quarter second
        cycles = cycles + f * depth * ramp * (1 - torch.cos(2 * math.pi * rate_hz * t64)) / (2 * math.pi * rate_hz)
    phase = torch.remainder(cycles, 1.0).to(torch.float32)
    dt = (f / rate).to(torch.float32).clamp(max=0.5)
    noise = None
    if inst.voice == "noise":
        generator = torch.Generator(device=device).manual_seed(seed)
        noise = torch.randn(index.numel(), generator=generator, device=device)
    wave = oscillator(inst.voice, phase, dt, noise)
    t = t64.to(torch.float32)
    env = adsr(t, (gates[index].to(torch.float32) / rate), inst.attack, inst.decay, inst.sustain, release)
    return _place(out, starts, index, local, wave * env * amp[index], wrap)


# --- drums -----------------------------------------------------------------------------------------------

DRUM_KINDS = {35: "kick", 36: "kick", 37: "rim", 38: "snare", 40: "snare", 39: "clap", 42: "hat", 44: "hat",
              46: "open_hat", 49: "crash", 52: "crash", 55: "crash", 57: "crash", 51: "ride", 53: "ride",
              59: "ride", 41: "tom", 43: "tom", 45: "tom", 47: "tom", 48: "tom", 50: "tom"}
DRUM_SECONDS = {"kick": 0.4, "snare": 0.3, "rim": 0.08, "clap": 0.25, "hat": 0.09, "open_hat": 0.45,
                "crash": 1.6, "ride": 0.9, "tom": 0.45}
TOM_HZ = {41: 82.0, 43: 98.0, 45: 110.0, 47: 131.0, 48: 147.0, 50: 165.0}


def _sweep(t: torch.Tensor, f_end: float | torch.Tensor, f_start: float | torch.Tensor, tau: float) -> torch.Tensor:
    """sin of the phase of a frequency falling exponentially from f_start to f_end (closed-form integral)."""
    cycles = f_end * t + (f_start - f_end) * tau * (1 - torch.exp(-t / tau))
    return torch.sin(2 * math.pi * cycles)


def _drum_voice(kind: str, t: torch.Tensor, pitch: torch.Tensor, bright: torch.Tensor) -> torch.Tensor:
    """One drum kind's waveform x envelope; ``bright`` is high-passed white noise."""
    attack = torch.clamp(t / 0.001, max=1.0)
    if kind == "kick":
        body = _sweep(t, 48.0, 150.0, 0.04) * torch.exp(-t / 0.22)
        return attack * (body + 0.25 * bright * torch.exp(-t / 0.003))
    if kind == "snare":
        tone = torch.sin(2 * math.pi * 185.0 * t) * torch.exp(-t / 0.05)
        return attack * (0.6 * tone + 0.9 * bright * torch.exp(-t / 0.07))
    if kind == "rim":
        return attack * (torch.sin(2 * math.pi * 820.0 * t) * 0.6 + bright * 0.5) * torch.exp(-t / 0.012)
    if kind == "clap":
        bursts = 1.0 + 0.8 * torch.cos(2 * math.pi * t / 0.011) * (t < 0.03)
        return attack * bright * bursts * torch.exp(-t / 0.06) * 0.8
    if kind == "hat":
        return attack * bright * torch.exp(-t / 0.025) * 0.55
    if kind == "open_hat":
        return attack * bright * torch.exp(-t / 0.18) * 0.5
    if kind == "crash":
        return attack * bright * torch.exp(-t / 0.6) * 0.45
    if kind == "ride":
        ping = torch.sin(2 * math.pi * 3200.0 * t) * 0.15
        return attack * (bright * 0.3 + ping) * torch.exp(-t / 0.4)
    if kind == "tom":
        return attack * _sweep(t, pitch, pitch * 1.6, 0.03) * torch.exp(-t / 0.2)
    raise ValueError(f"unknown drum kind {kind!r}")


def render_drums(notes: Sequence[Note], bpm: float, total: int, rate: int = SAMPLE_RATE, device: str = "cpu",
                 seed: int = 0, wrap: bool = True) -> torch.Tensor:
    """General MIDI drum notes as noise/sine-sweep drums: a mono (total,) tensor."""
    out = torch.zeros(total, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    by_kind: dict[str, list[Note]] = {}
    for n in notes:
        by_kind.setdefault(DRUM_KINDS.get(int(n["pitch"]), "hat"), []).append(n)
    for kind in sorted(by_kind):
        group = by_kind[kind]
        starts_list, _ = note_samples(group, bpm, rate)
        length = min(total, round(DRUM_SECONDS[kind] * rate))
        starts = torch.tensor(starts_list, device=device)
        lengths = torch.full((len(group),), length, device=device, dtype=torch.long)
        index, local = segments(lengths)
        noise = torch.randn(index.numel() + 2, generator=generator, device=device)
        bright = (noise[2:] - 2 * noise[1:-1] + noise[:-2]) * 0.4  # (1 - z^-1)^2: +12 dB/octave
        pitch = torch.tensor([TOM_HZ.get(int(n["pitch"]), 110.0) for n in group], device=device)[index]
        amp = torch.tensor([int(n["velocity"]) / 127.0 for n in group], device=device)[index]
        t = local.to(torch.float32) / rate
        values = _drum_voice(kind, t, pitch, bright) * amp
        _place(out, starts, index, local, values, wrap)
    return out


def render_part(part: str, notes: Sequence[Note], inst: Instrument, bpm: float, total: int,
                rate: int = SAMPLE_RATE, device: str = "cpu", seed: int = 0, wrap: bool = True) -> torch.Tensor:
    """A part's notes with its instrument: drums through the drum kit, everything else through a voice."""
    if part == "drums":
        return render_drums(notes, bpm, total, rate, device, seed, wrap)
    return render_tonal(notes, inst, bpm, total, rate, device, seed, wrap)
