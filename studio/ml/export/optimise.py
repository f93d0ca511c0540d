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


def output_projections(model) -> list[str]:
    """MatMul nodes with a constant weight that produce a graph output directly (a language model's logits)."""
    constants = {i.name for i in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    found = (producers.get(o.name) for o in model.graph.output)
    return [n.name for n in found if n is not None and n.op_type == "MatMul" and n.input[1] in constants]


def quantise_int4(src: Path, dst: Path, block_size: int = 32) -> Path:
    """4-bit weight-only quantisation into MatMulNBits nodes: asymmetric (scale and zero point) per block of 32
    inputs, like the GGUF Q4_1 files the language model comes from, with int8 arithmetic (accuracy level 4).

    Output projections stay at 8 bits, as llama.cpp keeps them (Q8_0/Q6_K): at 4 bits they cost the language
    model most of its perplexity budget (+29 % against +0.4 % measured on SmolLM2-135M).
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(src))
    heads = output_projections(model)
    settings = {"block_size": block_size, "is_symmetric": False, "accuracy_level": 4}
    if heads:
        quantizer = MatMulNBitsQuantizer(model, bits=8, nodes_to_include=heads, **settings)
        quantizer.process()
        model = quantizer.model.model
    quantizer = MatMulNBitsQuantizer(model, bits=4, nodes_to_exclude=heads, **settings)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    return dst
