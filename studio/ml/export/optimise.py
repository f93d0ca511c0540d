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
    """Dynamic int8 quantisation of MatMul/Gemm weights (CPU)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    return dst


def quantise_int4(src: Path, dst: Path, block_size: int = 32) -> Path:
    """4-bit weight-only quantisation into MatMulNBits nodes (symmetric, per block)."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=block_size, is_symmetric=True)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    return dst
