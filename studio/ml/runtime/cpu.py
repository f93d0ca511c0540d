"""What the CPU offers the language-model kernels: usable thread counts and the instruction sets the 4-bit products
need, each with a sentence for the user when Studio has to do something other than asked."""

from __future__ import annotations

import functools
import logging
import os
import platform
from pathlib import Path

log = logging.getLogger(__name__)

# onnxruntime's MatMulNBits (MLAS) multiplies int8 activations by 4-bit weights with VNNI dot products where the CPU
# has them, with AVX2 (or AVX-512) otherwise; without AVX2 it dequantises to float32 first, several times slower.
INT8_DOT = ("avx512_vnni", "avx_vnni", "asimddp")  # AVX-512 VNNI, AVX-VNNI, ARM dot product
WIDE_VECTORS = ("avx2", "asimd")
# onnxruntime's int8 GEMM (DynamicQuantizeMatMul) multiplies uint8 activations by signed weights with VNNI or AMX
# where the CPU has them; x86 without them uses vpmaddubsw, whose int16 pair sums can saturate on signed weights
# (onnxruntime's own advice: unsigned weights there). ARM's dot products do not saturate.
INT8_GEMM = (*INT8_DOT, "amx_int8")
X86 = ("x86_64", "amd64", "i386", "i686")


def cores() -> int:
    return os.cpu_count() or 1


def clamp_threads(requested: int) -> tuple[int, str]:
    """(threads to use, a sentence saying why it differs from ``requested``, or "")."""
    available = cores()
    if requested < 1:
        return 1, f"{requested} threads cannot run a model: using 1"
    if requested > available:
        return available, f"{requested} threads asked but this machine has {available} cores: using {available}"
    return requested, ""


@functools.cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where the system does not list them)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def signed_int8_weights(flags: frozenset[str] | None = None, machine: str | None = None) -> bool:
    """Whether int8 products may hold signed weights on this CPU without saturating (see :data:`INT8_GEMM`); an x86
    CPU whose flags are unknown gets unsigned weights, which are exact everywhere."""
    if (machine or platform.machine()).lower() not in X86:
        return True
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in INT8_GEMM)


def one_row_graph(threads: int) -> bool:
    """Whether an adapter's single row (one stream) decodes on its export's second graph, whose products are 8-bit
    blocks (MatMulNBits), rather than on the per-tensor int8 GEMMs (DynamicQuantizeMatMul) that prefills and
    candidate batches run on: at more than one thread. The GEMM costs about 1.1x its one-row time at 8 rows where
    the blocks cost 2.6x, but it multiplies a single row on one core: measured at 2 threads, one stream took 13.5 ms
    a token against the blocks' 11.5 ms, which use both cores. At one thread the two are level (42.8 and 42.1
    tokens/s), and the second graph is not loaded."""
    return threads > 1


def int4_kernel_note(flags: frozenset[str] | None = None) -> str:
    """"" when the 4-bit products get their fast int8 path here, else what they fall back to, in words."""
    flags = cpu_flags() if flags is None else flags
    if not flags or any(f in flags for f in INT8_DOT):
        return ""
    if any(f in flags for f in WIDE_VECTORS):
        return ("this CPU has no VNNI int8 dot products: onnxruntime's 4-bit products use its AVX2 int8 path "
                "(slower; Studio measures which runtime is fastest here)")
    return ("this CPU has no AVX2: onnxruntime's 4-bit products fall back to float32 arithmetic (several times "
            "slower; Studio measures which runtime is fastest here and usually picks PyTorch)")
