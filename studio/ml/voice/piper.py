"""A Piper voice (VITS, exported to ONNX) run by onnxruntime.

Piper's graph draws its noise with ``RandomNormalLike``, which onnxruntime seeds once per session, so the same
words would sound different on every run. On loading, :func:`seedable` replaces each noise node with a normal
sample computed from a ``noise_seed`` input (a sine hash of the element index, then Box-Muller, in float64): the
same seed gives the same voice-over, on any thread, in any order. The weights are untouched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from studio.core.errors import BadInputError, ModelFileError
from studio.ml.checkpoint import sha256_file
from studio.ml.voice.phonemiser import Phonemiser

SEED_INPUT = "noise_seed"
BOS, EOS, PAD = "^", "$", "_"
MAX_PHONEMES = 2000  # a piece of the script is at most a few hundred characters; far more is a bug or an attack


@dataclass(frozen=True)
class PiperConfig:
    sample_rate: int
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float

    @classmethod
    def read(cls, path: Path) -> PiperConfig:
        """The voice's ``.onnx.json``, checked (it decides what the graph is fed)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            inference = data.get("inference", {})
            id_map = {str(k): [int(i) for i in v] for k, v in data["phoneme_id_map"].items()}
            config = cls(int(data["audio"]["sample_rate"]), str(data["espeak"]["voice"]), id_map,
                         float(inference.get("noise_scale", 0.667)), float(inference.get("length_scale", 1.0)),
                         float(inference.get("noise_w", 0.8)))
        except FileNotFoundError:
            raise ModelFileError(f"the voice's settings {path.name} are missing: run set-up again") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"the voice's settings {path.name} are damaged ({exc}): run set-up again") from None
        if data.get("phoneme_type", "espeak") != "espeak" or not 8000 <= config.sample_rate <= 48000 \
                or not all(k in id_map for k in (BOS, EOS, PAD)):
            raise ModelFileError(f"{path.name} is not a Piper voice Studio can run (espeak phonemes, 8-48 kHz)")
        return config


def _constant(name: str, value: float | int, dtype: Any) -> TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def _uniform(nodes: list[onnx.NodeProto], p: str, multiplier: str, amplitude: str, tag: str) -> str:
    """Nodes computing u = frac(|sin(index * multiplier + seed) * amplitude|) in [0, 1); returns u's name."""
    nodes += [
        helper.make_node("Mul", [f"{p}index", multiplier], [f"{p}{tag}scaled"]),
        helper.make_node("Add", [f"{p}{tag}scaled", f"{p}seed"], [f"{p}{tag}shifted"]),
        helper.make_node("Sin", [f"{p}{tag}shifted"], [f"{p}{tag}sin"]),
        helper.make_node("Mul", [f"{p}{tag}sin", amplitude], [f"{p}{tag}big"]),
        helper.make_node("Abs", [f"{p}{tag}big"], [f"{p}{tag}abs"]),
        helper.make_node("Floor", [f"{p}{tag}abs"], [f"{p}{tag}floor"]),
        helper.make_node("Sub", [f"{p}{tag}abs", f"{p}{tag}floor"], [f"{p}{tag}u"]),
    ]
    return f"{p}{tag}u"


def seedable(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with every RandomNormalLike replaced by noise from the ``noise_seed`` input (float64, shape [1])."""
    graph = model.graph
    nodes = [n for n in graph.node if n.op_type == "RandomNormalLike"]
    if not nodes:
        return model
    graph.input.append(helper.make_tensor_value_info(SEED_INPUT, TensorProto.DOUBLE, [1]))
    consts = {"zero": (0, np.int64), "one": (1, np.int64), "k1": (12.9898, np.float64), "k2": (78.233, np.float64),
              "amp": (43758.5453, np.float64), "tiny": (1e-12, np.float64), "minus2": (-2.0, np.float64),
              "tau": (2 * math.pi, np.float64)}
    for key, (value, dtype) in consts.items():
        graph.initializer.append(_constant(f"seeded_noise/{key}", value, dtype))
    for number, node in enumerate(nodes):
        p = f"seeded_noise/{number}/"
        c = {key: f"seeded_noise/{key}" for key in consts}
        offset = f"{p}offset"
        graph.initializer.append(_constant(offset, 1000.0 * (number + 1), np.float64))
        out = node.output[0]
        scale = next((a.f for a in node.attribute if a.name == "scale"), 1.0)
        mean = next((a.f for a in node.attribute if a.name == "mean"), 0.0)

        new = [
            helper.make_node("Shape", [node.input[0]], [f"{p}shape"]),
            helper.make_node("ReduceProd", [f"{p}shape"], [f"{p}count"], keepdims=0),
            helper.make_node("Range", [c["zero"], f"{p}count", c["one"]], [f"{p}range"]),
            helper.make_node("Cast", [f"{p}range"], [f"{p}index"], to=TensorProto.DOUBLE),
            helper.make_node("Add", [SEED_INPUT, offset], [f"{p}seed"]),
        ]
        u1 = _uniform(new, p, c["k1"], c["amp"], "a")
        u2 = _uniform(new, p, c["k2"], c["amp"], "b")
        new += [
            helper.make_node("Max", [u1, c["tiny"]], [f"{p}u1"]),
            helper.make_node("Log", [f"{p}u1"], [f"{p}log"]),
            helper.make_node("Mul", [f"{p}log", c["minus2"]], [f"{p}m2log"]),
            helper.make_node("Sqrt", [f"{p}m2log"], [f"{p}radius"]),
            helper.make_node("Mul", [u2, c["tau"]], [f"{p}angle"]),
            helper.make_node("Cos", [f"{p}angle"], [f"{p}cos"]),
            helper.make_node("Mul", [f"{p}radius", f"{p}cos"], [f"{p}normal"]),
            helper.make_node("Cast", [f"{p}normal"], [f"{p}float"], to=TensorProto.FLOAT),
            helper.make_node("Reshape", [f"{p}float", f"{p}shape"], [f"{p}shaped"]),
        ]
        graph.initializer.extend([_constant(f"{p}scale", scale, np.float32), _constant(f"{p}mean", mean, np.float32)])
        new += [helper.make_node("Mul", [f"{p}shaped", f"{p}scale"], [f"{p}scaled_noise"]),
                helper.make_node("Add", [f"{p}scaled_noise", f"{p}mean"], [out])]
        position = list(graph.node).index(node)
        graph.node.remove(node)
        for offset_, made in enumerate(new):
            graph.node.insert(position + offset_, made)
    return model


class PiperVoice:
    """A loaded Piper voice: ``synthesize(text, length_scale, seed)`` -> mono float32 at ``rate``."""

    engine = "piper"

    def __init__(self, session: Any, config: PiperConfig, phonemiser: Phonemiser, name: str, sha256: str,
                 nbytes: int) -> None:
        self.session = session
        self.config = config
        self.phonemiser = phonemiser
        self.name = name
        self.sha256 = sha256
        self.nbytes = nbytes
        self.rate = config.sample_rate

    def ids(self, phonemes: list[str]) -> list[int]:
        """Phoneme ids as Piper's training made them: BOS, each phoneme then a pad, EOS."""
        known = self.config.phoneme_id_map
        missing = sorted({p for p in phonemes if p not in known})
        if missing:
            raise BadInputError(f"{self.name} has no sound for the phoneme(s) {' '.join(missing)}: rephrase the "
                                "words around them")
        ids = [*known[BOS], *known[PAD]]
        for phoneme in phonemes:
            ids += [*known[phoneme], *known[PAD]]
        return [*ids, *known[EOS]]

    def synthesize(self, text: str, length_scale: float, seed: int) -> np.ndarray:
        chunks = []
        for number, phonemes in enumerate(self.phonemiser.sentences(self.config.espeak_voice, text)):
            if not phonemes:
                continue
            if len(phonemes) > MAX_PHONEMES:
                raise BadInputError(f"a piece of the script is too long to speak at once ({len(phonemes)} sounds)")
            ids = np.array([self.ids(phonemes)], dtype=np.int64)
            scales = np.array([self.config.noise_scale, self.config.length_scale * length_scale,
                               self.config.noise_w], dtype=np.float32)
            feed = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales}
            if SEED_INPUT in {i.name for i in self.session.get_inputs()}:
                feed[SEED_INPUT] = np.array([float(seed * 7919 + number)], dtype=np.float64)
            chunks.append(np.asarray(self.session.run(None, feed)[0], dtype=np.float32).reshape(-1))
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def load_piper_voice(path: Path, expected_sha256: str, name: str, phonemiser: Phonemiser,
                     threads: int = 1) -> PiperVoice:
    """Open a Piper voice after checking its sha256 against the one recorded at set-up."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"the voice file {path.name} is missing: run set-up again (bash packaging/setup.sh setup)")
    actual = sha256_file(path)
    if expected_sha256 and actual != expected_sha256:
        raise ModelFileError(f"the voice file {path.name} is damaged (its sha256 differs from the one recorded at "
                             "set-up): run set-up again")
    config = PiperConfig.read(path.with_name(path.name + ".json"))
    try:
        model = seedable(onnx.load(str(path)))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # pieces run side by side, one thread each
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnx and onnxruntime raise their own types for bad files
        raise ModelFileError(f"{path.name} is not a loadable voice ({str(exc).splitlines()[0][:200]})") from None
    return PiperVoice(session, config, phonemiser, name, actual, path.stat().st_size)
