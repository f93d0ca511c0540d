"""The torch synthesiser and effects: pitch by FFT, band-limiting, ADSR, exact lengths, seamless loops, loudness."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.music_styles import Instrument, find_style
from studio.core.music_theory import clip_samples, parse_key, parse_meter
from studio.ml.audio import effects
from studio.ml.audio.render import render_clip
from studio.ml.audio.synth import adsr, render_drums, render_tonal
from studio.ml.music.arrange import arrange
from studio.ml.music.rule_melody import rule_melody

RATE = 44100


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Like the worker on a 2-core machine: one thread (two threads fight each other on a busy CPU)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _note(pitch: int, start: float = 0.0, duration: float = 2.0, velocity: int = 127) -> dict:
    return {"part": "melody", "pitch": pitch, "start": start, "duration": duration, "velocity": velocity}


def _peak_frequency(signal: np.ndarray, rate: int = RATE) -> float:
    """Frequency of the strongest FFT bin, refined by parabolic interpolation of the log magnitude."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    k = int(np.argmax(spectrum[1:])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-20)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + offset) * rate / len(signal)


def _cents(measured: float, expected: float) -> float:
    return 1200 * math.log2(measured / expected)


@pytest.mark.parametrize("pitch", [45, 57, 69, 76, 88])
def test_sine_is_at_its_pitch(pitch: int) -> None:
    inst = Instrument(voice="sine", attack=0.01, decay=0.05, sustain=1.0, release=0.05)
    audio = render_tonal([_note(pitch)], inst, 120, 2 * RATE).numpy()
    expected = 440 * 2 ** ((pitch - 69) / 12)
    assert abs(_cents(_peak_frequency(audio[2000:80000]), expected)) < 2.0


@pytest.mark.parametrize("voice", ["pulse12", "pulse25", "pulse50", "saw", "triangle"])
def test_every_voice_has_its_fundamental_at_the_pitch(voice: str) -> None:
    inst = Instrument(voice=voice, sustain=1.0)
    audio = render_tonal([_note(57)], inst, 120, 2 * RATE).numpy()
    spectrum = np.abs(np.fft.rfft(audio[2000:80000] * np.hanning(78000)))
    freqs = np.fft.rfftfreq(78000, 1 / RATE)
    fundamental = spectrum[np.argmin(np.abs(freqs - 220.0)) - 3 : np.argmin(np.abs(freqs - 220.0)) + 4].max()
    below = spectrum[(freqs > 30) & (freqs < 200)].max()
    assert fundamental > 20 * below  # nothing below the fundamental: the pitch is right, no sub-harmonics
    assert abs(float(audio[2000:80000].mean())) < 0.01  # no DC, even for the narrow pulses


def _aliasing_ratio(audio: np.ndarray, f0: float) -> float:
    """Energy in bins far from every harmonic of f0, over the total: aliases land between harmonics."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    distance = np.abs(freqs / f0 - np.round(freqs / f0)) * f0
    return float(spectrum[distance > 40].sum() / spectrum.sum())


@pytest.mark.parametrize("voice", ["saw", "pulse25"])
def test_polyblep_band_limits_high_notes(voice: str) -> None:
    pitch = 96  # C7, 2093 Hz: a naive saw aliases badly here
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    audio = render_tonal([_note(pitch)], Instrument(voice=voice, sustain=1.0), 120, RATE).numpy()[4000:40000]
    t = np.arange(4000, 40000) / RATE
    phase = (f0 * t) % 1.0
    naive = 2 * phase - 1 if voice == "saw" else np.where(phase < 0.25, 1.0, -1.0)
    assert _aliasing_ratio(audio, f0) < 0.25 * _aliasing_ratio(naive, f0)
    assert _aliasing_ratio(audio, f0) < 0.01


def test_adsr_shape() -> None:
    t = torch.tensor([0.0, 0.05, 0.1, 0.15, 0.2, 0.5, 0.99, 1.05, 1.1, 1.2, 2.0])
    gate = torch.full_like(t, 1.0)
    env = adsr(t, gate, attack=0.1, decay=0.1, sustain=0.5, release=0.2)
    expected = [0.0, 0.5, 1.0, 0.75, 0.5, 0.5, 0.5, 0.375, 0.25, 0.0, 0.0]
    assert env.tolist() == pytest.approx(expected, abs=1e-5)
    # A note released during its attack releases from the level it reached, not from the sustain level.
    short = adsr(torch.tensor([0.05, 0.15]), torch.tensor([0.05, 0.05]), 0.1, 0.1, 0.5, 0.2)
    assert short.tolist() == pytest.approx([0.5, 0.25], abs=1e-5)


def test_rendered_envelope_follows_the_adsr() -> None:
    inst = Instrument(voice="sine", attack=0.1, decay=0.2, sustain=0.4, release=0.3)
    audio = render_tonal([_note(81, 0.0, 2.0)], inst, 120, 2 * RATE).numpy()  # 1 s gate at 120 bpm

    def level(at_s: float) -> float:
        window = audio[int(at_s * RATE) - 220 : int(at_s * RATE) + 220]
        return float(np.sqrt(np.mean(window**2)) * math.sqrt(2))  # the sine's amplitude

    peak = level(0.1)
    assert level(0.05) == pytest.approx(peak / 2, rel=0.05)
    assert level(0.6) == pytest.approx(0.4 * peak, rel=0.05)
    assert level(1.15) == pytest.approx(0.2 * peak, rel=0.1)
    assert level(1.5) < 1e-4


def test_wrapped_rendering_is_the_linear_rendering_folded_onto_the_loop() -> None:
    total = RATE  # a 1 s loop (2 beats at 120 bpm) with notes ringing past its end
    notes = [_note(64, 1.5, 1.2), _note(67, 1.9, 0.1)]
    inst = Instrument(voice="pulse25", release=0.3)
    wrapped = render_tonal(notes, inst, 120, total, wrap=True)
    linear = render_tonal(notes, inst, 120, 3 * total, wrap=False)
    folded = linear[:total] + linear[total : 2 * total] + linear[2 * total :]
    assert torch.allclose(wrapped, folded, atol=1e-6)
    assert float(linear[total:].abs().max()) > 0.1  # the case really crosses the loop end


def test_drums_are_deterministic_for_a_seed_and_differ_between_seeds() -> None:
    hits = [{"part": "drums", "pitch": p, "start": i * 0.5, "duration": 0.25, "velocity": 100}
            for i, p in enumerate([36, 38, 42, 46, 49, 45, 39, 37, 51, 99])]
    a = render_drums(hits, 120, 3 * RATE, seed=5)
    assert torch.equal(a, render_drums(hits, 120, 3 * RATE, seed=5))
    assert not torch.equal(a, render_drums(hits, 120, 3 * RATE, seed=6))
    kick = render_drums(hits[:1], 120, RATE).numpy()
    assert _peak_frequency(kick[2000:12000]) < 120  # the kick settles low after its pitch sweep


def _clip(style_name: str, bars: int, bpm: float, meter: str, seed: int = 1):
    style = find_style(style_name)
    key, m = parse_key(style.key), parse_meter(meter)
    melody = rule_melody(key, m, bars, seed, style.melody_density)
    notes = arrange(melody, style, key, m, bars, seed).notes
    return render_clip(notes, style, bpm, m, bars, seed)


@settings(max_examples=10, deadline=None)
@given(bars=st.integers(1, 2), bpm=st.integers(80, 300), meter=st.sampled_from(["4/4", "3/4", "6/8", "5/4", "7/8"]))
def test_clip_length_is_exact_to_the_sample(bars: int, bpm: int, meter: str) -> None:
    clip = _clip("chiptune-adventure", bars, bpm, meter)
    m = parse_meter(meter)
    expected = round(bars * m.beats_per_bar * 60 * RATE / bpm)
    assert clip.mix.shape == (expected, 2) == (clip_samples(bars, m, bpm, RATE), 2)
    assert all(stem.shape == clip.mix.shape for stem in clip.stems.values())


@pytest.mark.parametrize("style", ["chiptune-adventure", "calm-village", "boss-battle", "upbeat-jingle"])
def test_loop_wrap_has_no_click_and_loudness_is_normalised(style: str) -> None:
    clip = _clip(style, 4, 132, find_style(style).meter)
    jumps = np.abs(np.diff(clip.mix, axis=0)).max(axis=1)
    wrap = np.abs(clip.mix[0] - clip.mix[-1]).max()
    assert wrap <= np.percentile(jumps, 95)  # the wrap is an ordinary sample step, not a click
    measured = effects.loudness(torch.from_numpy(clip.mix.T.copy()), RATE)
    assert measured == pytest.approx(-14.0, abs=0.5)
    assert np.abs(clip.mix).max() < 1.0
    assert clip.true_peak_db <= -0.9
    stems_sum = sum(clip.stems.values())
    assert np.allclose(stems_sum, clip.mix, atol=1e-4)


def test_spectral_biquads_match_torchaudio_in_steady_state() -> None:
    n = 4410
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 0.1
    tiled = x.repeat(40)  # torchaudio's filter run long enough to forget its initial state
    for ours, theirs in [
        (effects.lowpass_response(n, RATE, 1200.0), AF.lowpass_biquad(tiled, RATE, 1200.0, 0.707)),
        (effects.highpass_response(n, RATE, 300.0), AF.highpass_biquad(tiled, RATE, 300.0, 0.707)),
    ]:
        y = effects.apply_response(x.float(), ours)
        assert torch.allclose(y.double(), theirs[-n:], atol=2e-5)


def test_echo_repeats_with_its_feedback() -> None:
    n, delay = 30000, 3000  # ten repeats per loop: the 11th lands on the 1st (0.5^10 = 0.001 of it)
    impulse = torch.zeros(n)
    impulse[0] = 1.0
    wet = effects.apply_response(impulse, effects.echo_response(n, RATE, delay, 0.5, damping_hz=0.0))
    assert float(wet[delay]) == pytest.approx(1.0, abs=2e-3)
    assert float(wet[2 * delay]) == pytest.approx(0.5, abs=2e-3)
    assert float(wet[3 * delay]) == pytest.approx(0.25, abs=2e-3)
    assert float(wet[delay + 100 : 2 * delay - 100].abs().max()) < 1e-3


def test_reverb_tail_wraps_around_a_short_loop() -> None:
    n = RATE // 2  # half a second, shorter than the 1.5 s reverb
    impulse = torch.zeros(2, n)
    impulse[:, n // 2] = 1.0
    wet = effects.apply_response(impulse, effects.reverb_response(n, RATE, 1.5, 0.3))
    assert float(wet[:, : n // 4].abs().max()) > 1e-3  # the tail came back round to the start
    assert not torch.allclose(wet[0], wet[1])  # stereo spread


def test_limiter_keeps_true_peak_under_the_ceiling() -> None:
    gen = torch.Generator().manual_seed(1)
    quiet = torch.randn(1, 2, RATE, generator=gen) * 0.02
    quiet[0, :, 1000:1010] = 0.9  # a spike 30 dB above the rest
    stems, lufs, peak_db = effects.normalise(quiet, RATE)
    assert lufs == pytest.approx(-14.0, abs=0.5)
    assert peak_db <= -0.95
    assert float(effects.true_peak_per_sample(stems.sum(0)).max()) <= 10 ** (-0.95 / 20)


def test_silence_stays_silent() -> None:
    stems, lufs, _ = effects.normalise(torch.zeros(1, 2, RATE), RATE)
    assert lufs == -math.inf and float(stems.abs().max()) == 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_render_matches_cpu() -> None:
    notes = [_note(60 + i, i * 0.25, 0.5) for i in range(16)]
    inst = Instrument(voice="saw", vibrato_cents=10)
    cpu = render_tonal(notes, inst, 120, 2 * RATE)
    cuda = render_tonal(notes, inst, 120, 2 * RATE, device="cuda").cpu()
    assert torch.allclose(cpu, cuda, atol=1e-3)


@pytest.mark.parametrize("seconds", [0.5, 5.0])
def test_loudness_matches_torchaudio_on_the_repeated_loop(seconds: float) -> None:
    gen = torch.Generator().manual_seed(1)
    n = round(seconds * RATE)
    tone = torch.sin(torch.arange(n) * 2 * math.pi * 220 / RATE) * 0.2
    x = torch.stack([tone, tone * 0.5]) + torch.randn(2, n, generator=gen) * 0.05  # peaks well under 1 (no clamping)
    tiled = x.repeat(1, max(1, math.ceil(3.0 * RATE / n)))
    assert effects.loudness(x, RATE) == pytest.approx(float(AF.loudness(tiled, RATE)), abs=0.02)
    assert effects.loudness(torch.zeros(2, n), RATE) == -math.inf


def test_loudness_needs_no_torchaudio() -> None:
    """The CPU bundle has torchaudio without its compiled (CUDA-built) extension; its filters then crawl in Python."""
    code = ("import sys; sys.modules['torchaudio'] = None; import torch; from studio.ml.audio import effects; "
            "print(effects.loudness(torch.sin(torch.arange(44100) * 0.06).repeat(2, 1) * 0.1, 44100))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < -10
