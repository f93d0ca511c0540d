"""Weight-only MatMulNBits quantisation: the packed layout onnxruntime reads, exactness of the bias-corrected 4-bit
form on GGUF-Q4_1-like weights, and the 8-bit output projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from studio.ml.export.nbits import BLOCK, quantise_blocks, quantise_model


def q4_1_like(k: int, n: int, seed: int = 0) -> np.ndarray:
    """Weights already on a 4-bit grid per block of 32 inputs: w = d * q + m (what a Q4_1 GGUF dequantises to)."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.001, 0.02, (n, k // BLOCK, 1))
    m = -d * rng.uniform(3.2, 11.7, d.shape)  # zero points that are not whole numbers
    q = rng.integers(0, 16, (n, k // BLOCK, BLOCK))
    q[..., 0], q[..., 1] = 0, 15  # Q4_1 blocks span their whole range
    return (d * q + m).reshape(n, k).T.astype(np.float32)


def unpack4(packed: np.ndarray) -> np.ndarray:
    return np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(*packed.shape[:-1], -1)


def test_packed_layout_dequantises_to_the_weights_minus_a_per_block_offset() -> None:
    w = q4_1_like(64, 3)
    packed, scales, zeros, error = quantise_blocks(w, 4)
    assert packed.shape == (3, 2, 16) and scales.shape == (6,) and zeros.shape == (3,) and error.shape == (2, 3)
    q = unpack4(packed).astype(np.float64)
    z = unpack4(zeros.reshape(3, 1)).reshape(3, 2)[..., None]
    dequantised = (q - z) * scales.reshape(3, 2, 1) + error.T[..., None]
    np.testing.assert_allclose(dequantised.reshape(3, 64).T, w, atol=1e-6)  # exact once the offset is added back


def _matmul_model(path: Path, weights: dict[str, np.ndarray]) -> None:
    """x (rows, K) -> hidden = x @ a -> logits = hidden @ b (the output projection)."""
    a, b = weights["a"], weights["b"]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "a"], ["hidden"], name="layer"),
         helper.make_node("MatMul", ["hidden", "b"], ["logits"], name="head")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", a.shape[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["rows", b.shape[1]])],
        [numpy_helper.from_array(a, "a"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def test_bias_corrected_4_bit_matches_float_where_plain_4_bit_does_not(tmp_path: Path) -> None:
    weights = {"a": q4_1_like(128, 64, seed=1), "b": q4_1_like(64, 96, seed=2)}
    _matmul_model(tmp_path / "float.onnx", weights)
    x = np.random.default_rng(3).normal(size=(5, 128)).astype(np.float32)
    want = x @ weights["a"] @ weights["b"]
    errors = {}
    for correct in (True, False):
        out = tmp_path / f"q4-{correct}.onnx"
        assert quantise_model(tmp_path / "float.onnx", out, bits=4, correct_bias=correct) == 2
        kinds = {n.name: {a.name: a.i for a in n.attribute}.get("bits") for n in onnx.load(str(out)).graph.node
                 if n.op_type == "MatMulNBits"}
        assert kinds == {"layer.nbits": 4, "head.nbits": 8}  # the output projection keeps 8 bits
        got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        errors[correct] = float(np.abs(got - want).max() / np.abs(want).max())
    assert errors[True] < 0.02 < errors[False]
