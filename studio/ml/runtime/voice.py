"""Voices on the runtime loader: a Piper voice is an ONNX graph (onnxruntime only; its phonemiser is a child process
shared by every Piper voice), a Flite voice a program of its own."""

from __future__ import annotations

from studio.core.errors import ModelFileError
from studio.ml.runtime.loader import RuntimeLoader
from studio.ml.store import ModelEntry
from studio.ml.voice.flite import FliteVoice, load_flite_voice
from studio.ml.voice.phonemiser import Phonemiser
from studio.ml.voice.piper import PiperVoice, load_piper_voice


class PiperVoices:
    key = "voice"
    runtimes = ("onnxruntime",)

    def __init__(self) -> None:
        self.phonemiser = Phonemiser()

    def load_native(self, loader: RuntimeLoader, entry: ModelEntry, device: str) -> PiperVoice:
        del device  # the vocoder's 1-D convolutions run best on the CPU, one thread per piece, pieces side by side
        expected = (entry.meta.get("files") or {}).get(entry.weights.name, "")
        if not expected:
            raise ModelFileError(f"the voice {entry.name} has no recorded sha256: run set-up again to install it")
        return load_piper_voice(entry.weights, expected, entry.name, self.phonemiser, threads=1)


class FliteVoices:
    key = "voice"
    runtimes = ("flite",)

    def load_native(self, loader: RuntimeLoader, entry: ModelEntry, device: str) -> FliteVoice:
        return load_flite_voice(entry.weights, entry.meta, entry.name)


PIPER = PiperVoices()
FLITE = FliteVoices()
