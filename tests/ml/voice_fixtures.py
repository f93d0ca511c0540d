"""Voices for tests: a fake engine (a tone per piece, as long as its text), and a tiny Piper-shaped ONNX voice
(inputs ``input``, ``input_lengths``, ``scales``; noise from RandomNormalLike, like Piper's) installed in the test's
model folder with the sidecar set-up writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SAMPLES_PER_ID = 256
RATE = 16000


class ToneVoice:
    """A voice whose pieces are a 200 Hz tone of 60 ms per character (at ``length_scale`` 1)."""

    engine = "tone"
    name = "tone"
    sha256 = "0" * 64
    rate = RATE

    def __init__(self, hz: float = 200.0) -> None:
        self.hz = hz
        self.calls: list[str] = []

    def synthesize(self, text: str, length_scale: float, seed: int) -> np.ndarray:
        self.calls.append(text)
        n = round(len(text) * 0.06 * length_scale * self.rate)
        t = np.arange(n) / self.rate
        return (0.3 * np.sin(2 * np.pi * self.hz * t)).astype(np.float32)


def tiny_piper_graph() -> onnx.ModelProto:
    """audio (1, 1, 1, ids * 256) = noise_scale * N(0, 1) * 0.1 + 0.2 sin(phase), its length from the ids."""
    ids = helper.make_tensor_value_info("input", TensorProto.INT64, ["batch", "phonemes"])
    lengths = helper.make_tensor_value_info("input_lengths", TensorProto.INT64, ["batch"])
    scales = helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3])
    audio = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1, 1, "samples"])
    consts = [numpy_helper.from_array(np.array(v, dtype=d), n) for n, v, d in (
        ("per_id", [SAMPLES_PER_ID], np.int64), ("zero", 0, np.int64), ("one", 1, np.int64),
        ("step", 0.05, np.float32), ("amp", 0.2, np.float32), ("tenth", 0.1, np.float32),
        ("first", [0], np.int64), ("shape_tail", [1, 1, 1, -1], np.int64))]
    nodes = [
        helper.make_node("Shape", ["input"], ["ids_shape"]),
        helper.make_node("Gather", ["ids_shape", "one"], ["count"], axis=0),
        helper.make_node("Mul", ["count", "per_id"], ["samples_1d"]),
        helper.make_node("Squeeze", ["samples_1d", "first"], ["samples"]),
        helper.make_node("Range", ["zero", "samples", "one"], ["index"]),
        helper.make_node("Cast", ["index"], ["index_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["index_f", "step"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["sine"]),
        helper.make_node("Mul", ["sine", "amp"], ["tone"]),
        helper.make_node("RandomNormalLike", ["tone"], ["noise"], dtype=TensorProto.FLOAT),
        helper.make_node("Gather", ["scales", "zero"], ["noise_scale"], axis=0),
        helper.make_node("Mul", ["noise", "noise_scale"], ["scaled_noise"]),
        helper.make_node("Mul", ["scaled_noise", "tenth"], ["quiet_noise"]),
        helper.make_node("Add", ["tone", "quiet_noise"], ["wave"]),
        helper.make_node("Reshape", ["wave", "shape_tail"], ["output"]),
    ]
    graph = helper.make_graph(nodes, "tiny-piper", [ids, lengths, scales], [audio], consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])


def piper_config() -> dict:
    symbols = list("_^$ !',-.:;?abcdefghijklmnopqrstuvwxyzæçðøħŋœɐɑɒɔɕɖɘəɚɛɜɞɟɠɡɢɣɤɥɦɧɨɪɫɬɭɮɯɰɱɲɳɴɵɶɸɹɺɻɽɾʀʁʂ"
                   "ʃʄʈʉʊʋʌʍʎʏʐʑʒʔʕʘʙʛʜʝʟʡʢʲˈˌːˑ˞βθχᵻⱱ")
    symbols += ["\u0303", "\u0329", "\u032a", "\u0361", "\u0306", "\u0325"]  # combining marks espeak emits
    return {"audio": {"sample_rate": RATE}, "espeak": {"voice": "en-us"}, "phoneme_type": "espeak",
            "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
            "phoneme_id_map": {s: [i] for i, s in enumerate(dict.fromkeys(symbols))}}


def install_tiny_piper(folder: Path, name: str = "tiny-piper") -> Path:
    """The tiny voice as set-up installs a Piper voice: graph, its settings, and the sidecar with the sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.onnx"
    onnx.save(tiny_piper_graph(), str(weights))
    (folder / f"{name}.onnx.json").write_text(json.dumps(piper_config()), encoding="utf-8")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    sidecar = {"name": name, "arch": "piper-voice", "modality": "voice", "family": "neural",
               "config": {"engine": "piper"}, "licence": "test", "commercial_use": "uncertain",
               "licence_note": "a test voice", "files": {weights.name: digest}}
    (folder / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return weights


FAKE_FLITE = '''#!{python}
"""Stands in for the flite program: a 300 Hz tone of 50 ms per character (times duration_stretch) at 16 kHz."""
import sys

import numpy as np
import soundfile as sf

args = sys.argv[1:]
text, out = args[args.index("-t") + 1], args[args.index("-o") + 1]
stretch = float(args[args.index("--setf") + 1].split("=")[1])
if "crash" in text:
    sys.exit("flite: segmentation fault")
t = np.arange(round(len(text) * 0.05 * stretch * 16000)) / 16000
sf.write(out, 0.3 * np.sin(2 * np.pi * 300 * t), 16000, subtype="PCM_16")
'''


def install_fake_flite(folder: Path, name: str = "fake-flite") -> Path:
    """A Flite voice as set-up installs one (voice file, program, sidecar with both sha256), its program a stand-in
    written in Python; returns the program."""
    import sys

    program = folder / "flite" / "bin" / "flite"
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text(FAKE_FLITE.format(python=sys.executable), encoding="utf-8")
    program.chmod(0o755)
    voice = folder / f"{name}.flitevox"
    voice.write_bytes(b"not a real voice: the stand-in program ignores it")
    files = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in (voice, program)}
    sidecar = {"name": name, "arch": "flite-voice", "modality": "voice", "family": "classic",
               "config": {"engine": "flite", "rate": 16000, "program": "flite/bin/flite"},
               "licence": "test", "commercial_use": "yes", "files": files}
    (folder / f"{name}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    return program
