"""Where one decoding step of the language model spends its time, per operator, against the bytes it must read.

``python -m studio.ml.bench.lm_profile [--threads N] [--steps N] [--export DIR ...]`` prints, for torch (the app's
CPU precision, through ``torch.profiler``) and for each given onnxruntime export (its own profiler), the median
step time and the per-operator time of a greedy decoding step after the benchmark's 160-token copy brief, and
the bytes a step has to stream: every weight a step multiplies by (the embedding table is read one row a token)
plus the keys and values attended to.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from studio.core.modalities.copy import BASE_LANGUAGE_MODEL
from studio.ml.text.bench import MESSAGES

WARM_STEPS = 4


def _steps(lm: Any, prompt: list[int], steps: int) -> list[float]:
    logits, cache = lm.prefill(prompt, steps + WARM_STEPS + 2)
    seconds = []
    for _ in range(steps + WARM_STEPS):
        start = time.perf_counter()
        logits, cache = lm.decode_step([int(logits[0].argmax())], cache)
        seconds.append(time.perf_counter() - start)
    return seconds[WARM_STEPS:]


def kv_bytes(config: Any, length: int) -> int:
    """Keys and values of every layer a decoding step attends to at ``length`` positions, float32."""
    return 2 * config.n_layers * config.n_kv_heads * length * config.head_dim * 4


def torch_profile(lm: Any, prompt: list[int], steps: int) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    median = statistics.median(_steps(lm, prompt, steps))
    logits, cache = lm.prefill(prompt, steps + 2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            logits, cache = lm.decode_step([int(logits[0].argmax())], cache)
    ops = sorted(((e.key, e.self_cpu_time_total / steps / 1e3, e.count / steps) for e in prof.key_averages()),
                 key=lambda op: -op[1])
    weights = sum(b.numel() * b.element_size() for n, b in lm.model.named_buffers()
                  if n.endswith(("decode_weight", "decode_scale", "decode_head", "decode_head_scale")))
    return {"step_ms": median * 1e3, "ops": ops, "weight_bytes": weights}


def ort_profile(lm: Any, path: Path, prompt: list[int], steps: int, threads: int) -> dict[str, Any]:
    """Per-operator time of the decoding steps only (the prefill's run is left out)."""
    import onnx
    import onnxruntime as ort

    median = statistics.median(_steps(lm, prompt, steps))
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "profile")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0" if threads == 1 else "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")  # as the app opens it
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        if hasattr(lm, "session"):
            lm.session = session
        else:
            lm.runner.session = session
        lm.prompt_cache.clear()
        _steps(lm, prompt, steps)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][-steps:]
    start, end = runs[0]["ts"], runs[-1]["ts"] + runs[-1]["dur"]
    totals: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and start <= e["ts"] <= end:
            totals[e["args"]["op_name"]] += e["dur"]
            counts[e["args"]["op_name"]] += 1
    ops = [(op, us / steps / 1e3, counts[op] / steps) for op, us in totals.most_common()]
    model = onnx.load(str(path), load_external_data=False)
    # the embedding table (the largest float tensor) and rotary tables are read a row per token
    floats = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    embedding = max(floats, key=_nbytes, default=None)
    once = {id(embedding), *(id(t) for t in floats if "cos" in t.name or "sin" in t.name)}
    weights = sum(_nbytes(t) for t in model.graph.initializer if id(t) not in once)
    return {"step_ms": median * 1e3, "ops": ops, "weight_bytes": weights,
            "run_ms": statistics.median(r["dur"] for r in runs) / 1e3}


def _nbytes(tensor: Any) -> int:
    import numpy as np
    from onnx import helper

    size = int(np.prod(tensor.dims)) if tensor.dims else 1
    return size * np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize


def report(name: str, result: dict[str, Any], kv: int, rows: int = 14) -> list[str]:
    total = result["weight_bytes"] + kv
    lines = [f"### {name}", "",
             f"Step {result['step_ms']:.2f} ms (median); it reads {result['weight_bytes'] / 1e6:.1f} MB of weights and "
             f"{kv / 1e6:.1f} MB of keys/values = {total / 1e6:.1f} MB, {total / result['step_ms'] / 1e6:.1f} GB/s "
             "at this speed.", "", "| operator | ms per step | calls per step |", "|---|---:|---:|"]
    lines += [f"| {op} | {ms:.3f} | {calls:.0f} |" for op, ms, calls in result["ops"][:rows]]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    from studio.ml.runtime.exports import read_record
    from studio.ml.runtime.ort_lm import load_ort_language_model
    from studio.ml.store import ModelStore
    from studio.ml.text.lm import app_precision, load_language_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BASE_LANGUAGE_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--export", action="append", default=[], help="an export folder to profile (repeatable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    gguf = ModelStore().find(args.model).weights
    lm = load_language_model(gguf, "cpu", app_precision("cpu"))
    prompt = lm.tokenizer.encode_chat(MESSAGES)
    kv = kv_bytes(lm.config, len(prompt) + WARM_STEPS + args.steps // 2)
    lines = [f"Prompt {len(prompt)} tokens, {args.threads} threads, {args.steps} steps.", ""]
    lines += report(f"torch eager, {app_precision('cpu')} decoding copies", torch_profile(lm, prompt, args.steps), kv)
    for folder in args.export:
        record = read_record(Path(folder))
        ort_lm = load_ort_language_model(record, gguf, "cpu", args.threads)
        path = record.graph_path(next(iter(record.graphs)))
        lines += report(f"onnxruntime {record.variant} ({path.name})", ort_profile(ort_lm, path, prompt, args.steps,
                                                                                   args.threads), kv)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
