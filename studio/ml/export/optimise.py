"""Post-export optimisation: onnxruntime graph optimisation (extended, saved), onnxslim, fp16, int8 and 4-bit."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def ort_optimise(src: Path, dst: Path) -> Path:
    """Save the graph as onnxruntime optimises it at the extended level (portable across CPU/CUDA)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def slim(src: Path, dst: Path) -> Path:
    """onnxslim's constant folding and dead-node removal; keeps the original when slimming fails."""
    import onnxslim

    try:
        onnxslim.slim(str(src), str(dst))
    except Exception as exc:  # onnxslim raises many kinds; the unslimmed graph is still valid
        log.warning("onnxslim could not slim %s (%s); keeping the original", src.name, exc)
        dst.write_bytes(src.read_bytes())
    return dst


def to_fp16(src: Path, dst: Path) -> Path:
    """Weights and activations in fp16 with fp32 inputs/outputs (for the CUDA provider)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


def quantise_int8(src: Path, dst: Path) -> Path:
    """8-bit weight-only quantisation into MatMulNBits (per block of 32 inputs; see studio.ml.export.nbits).

    Not onnxruntime's dynamic int8 (one scale per tensor): it doubled the language model's held-out perplexity.
    """
    from studio.ml.export.nbits import quantise_model

    quantise_model(src, dst, bits=8)
    return dst


def quantise_int4(src: Path, dst: Path) -> Path:
    """4-bit weight-only quantisation into MatMulNBits with each block's rounding offset corrected, output
    projections at 8 bits (see studio.ml.export.nbits)."""
    from studio.ml.export.nbits import quantise_model

    quantise_model(src, dst, bits=4, correct_bias=True)
    return dst
