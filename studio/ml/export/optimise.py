"""Post-export optimisation: onnxruntime graph optimisation (extended, saved), onnxslim, fp16, int8 and 4-bit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from studio.core.safe_write import copy_of, staged_file, write_atomic

log = logging.getLogger(__name__)


def ort_optimise(src: Path, dst: Path) -> Path:
    """Save the graph as onnxruntime optimises it at the extended level (portable across CPU/CUDA)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    with staged_file(dst, f"the ONNX graph {dst.name}", suffix=".onnx", needed=Path(src).stat().st_size) as tmp:
        options.optimized_model_filepath = str(tmp)  # onnxruntime writes the file itself
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def save_onnx(model: Any, dst: Path) -> Path:
    """Write an ONNX ModelProto crash-safely (a full disk is a DiskWriteError, the previous file intact)."""
    return write_atomic(dst, model.SerializeToString(), f"the ONNX graph {Path(dst).name}")


def slim(src: Path, dst: Path) -> Path:
    """onnxslim's constant folding and dead-node removal; keeps the original when slimming fails."""
    import onnxslim

    try:
        slimmed = onnxslim.slim(str(src))
    except Exception as exc:  # onnxslim raises many kinds; the unslimmed graph is still valid
        log.warning("onnxslim could not slim %s (%s); keeping the original", src.name, exc)
        return write_atomic(dst, copy_of(src), f"the ONNX graph {dst.name}")
    return save_onnx(slimmed, dst)


def to_fp16(src: Path, dst: Path) -> Path:
    """Weights and activations in fp16 with fp32 inputs/outputs (for the CUDA provider)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return save_onnx(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), dst)


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
