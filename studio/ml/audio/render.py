"""From notes to a finished loop: each part through the synth, its filter, pan, echo/reverb sends, the master
filters and loudness normalisation. Stems are processed identically, so they always sum to the mix."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from studio.core.music_styles import Instrument, Style
from studio.core.music_theory import Meter, clip_samples
from studio.ml.audio import effects
from studio.ml.audio.synth import SAMPLE_RATE, render_part
from studio.ml.music.arrange import apply_swing

Note = dict[str, Any]
DEFAULT_DRUMS = Instrument(voice="noise", volume=0.5)


@dataclass
class RenderedClip:
    rate: int
    mix: np.ndarray  # (n, 2) float32
    stems: dict[str, np.ndarray]  # part -> (n, 2) float32
    lufs: float
    true_peak_db: float


def instrument_for(part: str, style: Style) -> Instrument:
    """The style's instrument for ``part``; parts the style does not name (imported MIDI) use the melody's."""
    if part in style.instruments:
        return style.instruments[part]
    return DEFAULT_DRUMS if part == "drums" else style.instruments["melody"]


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan: -1 hard left, 0 centre (both -3 dB), 1 hard right."""
    angle = (pan + 1) * math.pi / 4
    return math.cos(angle), math.sin(angle)


class EffectChain:
    """Each part's linear chain as one loop-exact response: its low-pass, 1 + echo and reverb sends, then the
    master high- and low-pass. Responses are built once per clip length and shared by the parts."""

    def __init__(self, style: Style, bpm: float, n: int, rate: int, device: str) -> None:
        fx = style.effects
        self.n, self.rate, self.device = n, rate, device
        self.master = (effects.highpass_response(n, rate, fx.highpass_hz, device=device)
                       * effects.lowpass_response(n, rate, fx.lowpass_hz, device=device))
        delay = round(fx.echo_beats * 60.0 * rate / bpm)
        self.echo = effects.echo_response(n, rate, delay, fx.echo_feedback, fx.echo_damping_hz, device)
        self._reverb: torch.Tensor | None = None
        self._reverb_args = (fx.reverb_seconds, fx.reverb_damping)

    @property
    def reverb(self) -> torch.Tensor:
        if self._reverb is None:
            self._reverb = effects.reverb_response(self.n, self.rate, *self._reverb_args, device=self.device)
        return self._reverb

    def response(self, inst: Instrument) -> torch.Tensor:
        response = self.master
        if inst.lowpass_hz:
            response = response * effects.lowpass_response(self.n, self.rate, inst.lowpass_hz, device=self.device)
        if inst.echo_send or inst.reverb_send:
            sends = 1 + inst.echo_send * self.echo
            sends = sends + inst.reverb_send * self.reverb if inst.reverb_send else sends
            response = response * sends
        return response

    def apply(self, stereo: torch.Tensor, inst: Instrument) -> torch.Tensor:
        return effects.apply_response(stereo, self.response(inst))


def render_clip(
    notes: Sequence[Note],
    style: Style,
    bpm: float,
    meter: Meter,
    bars: int,
    seed: int,
    device: str = "cpu",
    rate: int = SAMPLE_RATE,
    check_cancel: Callable[[], None] | None = None,
    on_part: Callable[[int, int, str], None] | None = None,
) -> RenderedClip:
    """Render an arrangement (the style's swing applied) as a seamless loop of exactly ``bars`` bars."""
    total = clip_samples(bars, meter, bpm, rate)
    parts: dict[str, list[Note]] = {}
    for n in apply_swing(notes, style.swing, meter):
        parts.setdefault(str(n["part"]), []).append(n)
    names = list(parts)
    chain = EffectChain(style, bpm, total, rate, device)
    stems = torch.zeros(len(names), 2, total, device=device)
    for i, part in enumerate(names):
        if check_cancel:
            check_cancel()
        if on_part:
            on_part(i, len(names), part)
        inst = instrument_for(part, style)
        mono = render_part(part, parts[part], inst, bpm, total, rate, device, seed * 31 + i)
        left, right = pan_gains(inst.pan)
        stereo = torch.stack([mono * (inst.volume * left), mono * (inst.volume * right)])
        stems[i] = chain.apply(stereo, inst)
    if check_cancel:
        check_cancel()
    return finish(stems, names, rate)


def _to_numpy(stereo: torch.Tensor) -> np.ndarray:
    return stereo.transpose(0, 1).contiguous().cpu().numpy().astype(np.float32)


def finish(stems: torch.Tensor, names: Sequence[str], rate: int) -> RenderedClip:
    """Loudness-normalise (P, 2, n) stems together and hand them over as numpy (n, 2) arrays."""
    if not names:
        silent = np.zeros((stems.shape[-1], 2), np.float32)
        return RenderedClip(rate, silent, {}, -math.inf, -math.inf)
    stems, lufs, peak_db = effects.normalise(stems, rate)
    return RenderedClip(
        rate=rate,
        mix=_to_numpy(stems.sum(0)),
        stems={name: _to_numpy(stems[i]) for i, name in enumerate(names)},
        lufs=lufs,
        true_peak_db=peak_db,
    )


def stems_from_arrays(arrays: Mapping[str, np.ndarray], device: str = "cpu") -> torch.Tensor:
    """(P, 2, n) tensor from part -> (n, 2) arrays (e.g. SoundFont renders)."""
    return torch.stack([torch.as_tensor(np.ascontiguousarray(a.T), device=device) for a in arrays.values()])
