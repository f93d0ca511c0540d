"""Loop-aware effects: biquad filters, a feedback echo, a Schroeder reverb, BS.1770 loudness and a peak limiter.

A clip is a loop, so every effect computes its *steady state on the repeating loop*: what comes out of the end
of one pass (echo repeats, reverb tail, filter state) is heard at the start of the next, and the wrap is seamless.
For a signal of period N, the steady-state output of any stable linear filter is exactly the clip's DFT times the
filter's frequency response at the N bins. So every linear effect here is a *response* (a complex tensor over the
rfft bins) and a part's whole chain (its low-pass, echo and reverb sends, the master high- and low-pass) is one
product of responses applied with one FFT pair: exact (no truncated tails, no warm-up), and fast on a CPU.

* Filters are the RBJ-cookbook biquads that ``torchaudio.functional.lowpass_biquad``/``highpass_biquad`` use
  (same coefficients; a test checks the steady state against torchaudio's own filter).
* The echo is a feedback delay with a one-pole low-pass in its loop: z^-D L / (1 - g L z^-D).
* The reverb is Schroeder's: six parallel combs with low-pass feedback (Freeverb's delays, gains from the RT60)
  into four series allpasses; the right channel's delays are spread by 23 samples for width.
* Loudness is ITU-R BS.1770 integrated loudness: the K-weighting (the shelf and high-pass coefficients of
  ``torchaudio.functional.loudness``) is a response on the loop like every filter here, then 400 ms blocks are
  gated as the standard says, over at least 3 s of repetition. (torchaudio's own runs its filters sample by
  sample in Python when its compiled extension is missing, as beside the CPU build of torch: 100x slower.)
* The limiter estimates true peak on a 4x band-limited (FFT) upsampling, computes the gain each sample needs to
  stay under the ceiling, and smooths it with a windowed minimum followed by a moving average over the same
  window (circular), which never exceeds the needed gain, so the result does not clip.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

COMB_DELAYS = (1116, 1188, 1277, 1356, 1422, 1491)  # Freeverb's, at 44.1 kHz
ALLPASS_DELAYS = (556, 441, 341, 225)
ALLPASS_GAIN = 0.5
STEREO_SPREAD = 23
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0


@functools.lru_cache(maxsize=4)
def _roots(n: int, device: str) -> torch.Tensor:
    """exp(-2 pi i m / n) for m = 0..n-1 (complex64), so z^-D at bin k is ``roots[(k * D) % n]`` exactly."""
    m = torch.arange(n, dtype=torch.float64, device=device)
    return torch.polar(torch.ones_like(m), -2 * math.pi * m / n).to(torch.complex64)


def delay_response(n: int, samples: int, device: str = "cpu") -> torch.Tensor:
    """z^-samples at the n//2+1 rfft bins of an n-point DFT (the angle is reduced exactly in integers)."""
    if samples in (1, 2):
        return _short_delay(n, samples, str(device))
    k = torch.arange(n // 2 + 1, device=device, dtype=torch.int64)
    return _roots(n, str(device))[(k * samples) % n]


@functools.lru_cache(maxsize=4)
def _short_delay(n: int, samples: int, device: str) -> torch.Tensor:
    """z^-1 and z^-2, which every biquad and damping filter needs (cached; never modified in place)."""
    k = torch.arange(n // 2 + 1, device=device, dtype=torch.int64)
    return _roots(n, device)[(k * samples) % n]


def biquad_response(n: int, b: tuple[float, float, float], a: tuple[float, float, float],
                    device: str = "cpu") -> torch.Tensor:
    z1, z2 = delay_response(n, 1, device), delay_response(n, 2, device)
    return (b[0] + b[1] * z1 + b[2] * z2) / (a[0] + a[1] * z1 + a[2] * z2)


def _rbj(rate: int, cutoff_hz: float, q: float) -> tuple[float, float]:
    w0 = 2 * math.pi * cutoff_hz / rate
    return math.cos(w0), math.sin(w0) / 2 / q


def lowpass_response(n: int, rate: int, cutoff_hz: float, q: float = 0.707, device: str = "cpu") -> torch.Tensor:
    """The RBJ low-pass biquad (torchaudio's ``lowpass_biquad`` coefficients); cutoff <= 0 or near Nyquist: flat."""
    if cutoff_hz <= 0 or cutoff_hz >= rate * 0.475:
        return torch.ones(n // 2 + 1, dtype=torch.complex64, device=device)
    cos_w0, alpha = _rbj(rate, cutoff_hz, q)
    b = ((1 - cos_w0) / 2, 1 - cos_w0, (1 - cos_w0) / 2)
    return biquad_response(n, b, (1 + alpha, -2 * cos_w0, 1 - alpha), device)


def highpass_response(n: int, rate: int, cutoff_hz: float, q: float = 0.707, device: str = "cpu") -> torch.Tensor:
    """The RBJ high-pass biquad (torchaudio's ``highpass_biquad`` coefficients); cutoff <= 0: flat."""
    if cutoff_hz <= 0:
        return torch.ones(n // 2 + 1, dtype=torch.complex64, device=device)
    cos_w0, alpha = _rbj(rate, cutoff_hz, q)
    b = ((1 + cos_w0) / 2, -1 - cos_w0, (1 + cos_w0) / 2)
    return biquad_response(n, b, (1 + alpha, -2 * cos_w0, 1 - alpha), device)


def one_pole_lowpass_response(n: int, rate: int, cutoff_hz: float, device: str = "cpu") -> torch.Tensor:
    """(1 - d) / (1 - d z^-1), d = exp(-2 pi fc / rate): the gentle damping inside echo and reverb loops."""
    d = math.exp(-2 * math.pi * cutoff_hz / rate) if cutoff_hz > 0 else 0.0
    return (1 - d) / (1 - d * delay_response(n, 1, device))


def echo_response(n: int, rate: int, delay_samples: int, feedback: float, damping_hz: float,
                  device: str = "cpu") -> torch.Tensor:
    """Wet response of a feedback delay with a low-pass in its loop: z^-D L / (1 - g L z^-D)."""
    delayed = delay_response(n, max(1, delay_samples), device) * one_pole_lowpass_response(n, rate, damping_hz,
                                                                                          device)
    return delayed / (1 - feedback * delayed)


def reverb_response(n: int, rate: int, rt60: float, damping: float, device: str = "cpu") -> torch.Tensor:
    """(2, n//2+1) stereo Schroeder reverb response, scaled to unit mean energy gain over the bins."""
    scale = rate / 44100.0
    low = (1 - damping) / (1 - damping * delay_response(n, 1, device))
    channels = []
    for spread in (0, STEREO_SPREAD):
        combs = torch.zeros(n // 2 + 1, dtype=torch.complex64, device=device)
        for base in COMB_DELAYS:
            delay = max(1, round((base + spread) * scale))
            gain = 10 ** (-3 * delay / (rate * max(rt60, 0.05)))
            z = delay_response(n, delay, device)
            combs = combs + z / (1 - gain * low * z)
        response = combs / len(COMB_DELAYS)
        for base in ALLPASS_DELAYS:
            z = delay_response(n, max(1, round((base + spread) * scale)), device)
            response = response * (-ALLPASS_GAIN + z) / (1 - ALLPASS_GAIN * z)
        channels.append(response)
    stacked = torch.stack(channels)
    return stacked / stacked.abs().pow(2).mean().sqrt()


def apply_response(x: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """Loop steady-state filtering of x (..., n) by a response at its rfft bins (broadcast over leading dims)."""
    n = x.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(x, n=n) * response, n=n)


def high_shelf_response(n: int, rate: int, cutoff_hz: float, gain_db: float, q: float,
                        device: str = "cpu") -> torch.Tensor:
    """The RBJ high shelf (torchaudio's ``treble_biquad`` coefficients)."""
    cos_w0, alpha = _rbj(rate, cutoff_hz, q)
    a = 10 ** (gain_db / 40)
    t1, t2, t3 = 2 * math.sqrt(a) * alpha, (a - 1) * cos_w0, (a + 1) * cos_w0
    b = (a * ((a + 1) + t2 + t1), -2 * a * ((a - 1) + t3), a * ((a + 1) + t2 - t1))
    return biquad_response(n, b, ((a + 1) - t2 + t1, 2 * ((a - 1) - t3), (a + 1) - t2 - t1), device)


def k_weighting_response(n: int, rate: int, device: str = "cpu") -> torch.Tensor:
    """BS.1770's K-weighting: a +4 dB shelf above 1.5 kHz, then a 38 Hz high-pass."""
    return (high_shelf_response(n, rate, 1500.0, 4.0, 1 / math.sqrt(2), device)
            * highpass_response(n, rate, 38.0, 0.5, device))


def loudness(x: torch.Tensor, rate: int) -> float:
    """Integrated loudness (LUFS, BS.1770) of a loop (channels, n), measured over at least 3 s of repetition."""
    n = x.shape[-1]
    weighted = apply_response(x.float(), k_weighting_response(n, rate, str(x.device)))
    reps = max(1, math.ceil(3.0 * rate / n))
    tiled = weighted.repeat(1, reps) if reps > 1 else weighted
    block = round(0.4 * rate)
    energy = tiled.double().square().unfold(-1, block, round(block * 0.25)).mean(-1)  # (channels, blocks)
    block_loudness = -0.691 + 10 * torch.log10(energy.sum(0))
    gated = block_loudness > -70.0
    if not bool(gated.any()):
        return -math.inf
    relative_gate = -0.691 + 10 * math.log10(float(energy[:, gated].mean(-1).sum())) - 10
    gated &= block_loudness > relative_gate
    return -0.691 + 10 * math.log10(float(energy[:, gated].mean(-1).sum()))


def true_peak_per_sample(x: torch.Tensor, oversample: int = 4) -> torch.Tensor:
    """max |x| over channels and over the ``oversample`` band-limited points in each sample period (circular)."""
    n = x.shape[-1]
    up = torch.fft.irfft(torch.fft.rfft(x.float(), n=n), n=n * oversample) * oversample
    return up.abs().amax(dim=0).reshape(n, oversample).amax(dim=1)


def limiter_gain(peak: torch.Tensor, rate: int, ceiling_db: float = CEILING_DBTP,
                 window_s: float = 0.004) -> torch.Tensor:
    """Per-sample gain (n,) <= 1 keeping ``peak`` (per-sample true-peak estimate) under the ceiling; circular."""
    ceiling = 10 ** (ceiling_db / 20)
    needed = torch.clamp(ceiling / torch.clamp(peak, min=1e-9), max=1.0)
    if bool((needed >= 1.0).all()):
        return needed
    half = max(1, round(window_s * rate))
    width = 2 * half + 1
    padded = F.pad(needed.view(1, 1, -1), (half, half), mode="circular")
    floor = -F.max_pool1d(-padded, width, stride=1)  # windowed minimum
    floor = F.pad(floor, (half, half), mode="circular").view(-1).double()
    sums = torch.cat([floor.new_zeros(1), torch.cumsum(floor, 0)])  # moving average in O(n)
    return ((sums[width:] - sums[:-width]) / width).to(peak.dtype)


def normalise(stems: torch.Tensor, rate: int, target_lufs: float = TARGET_LUFS,
              ceiling_db: float = CEILING_DBTP, rounds: int = 3) -> tuple[torch.Tensor, float, float]:
    """Scale stems (P, 2, n) so their sum is at ``target_lufs`` with its true peak under ``ceiling_db``.

    Returns (stems, measured LUFS, true peak in dBTP). Limiting lowers loudness a little, so gain and limiting
    alternate for up to ``rounds`` rounds; silence stays silence.
    """
    measured = loudness(stems.sum(0), rate)
    if not math.isfinite(measured):
        return stems, measured, -math.inf
    for _ in range(rounds):
        stems = stems * 10 ** ((target_lufs - measured) / 20)
        peak = true_peak_per_sample(stems.sum(0))
        if float(peak.max()) <= 10 ** (ceiling_db / 20):
            return stems, target_lufs, 20 * math.log10(float(peak.max()))
        stems = stems * limiter_gain(peak, rate, ceiling_db)
        measured = loudness(stems.sum(0), rate)
        if abs(measured - target_lufs) < 0.3:
            break
    peak = float(true_peak_per_sample(stems.sum(0)).max())
    return stems, measured, 20 * math.log10(peak)
