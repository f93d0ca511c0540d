"""Language-model speed side by side, one run: the same GGUF weights through torch eager, onnxruntime (each
exported precision), Hugging Face transformers' ``generate()`` and llama.cpp (``llama-cpp-python``), when present.

Every runtime gets the same prompt ids (the copy brief of :mod:`studio.ml.text.bench` through the chat template) and
decodes greedily with the end-of-turn tokens masked, so every run is equally long and only the model's speed is
measured (sampling costs the same on every runtime). TTFT = prefill + the first token, three ways for Studio's own
runtimes: cold (empty prompt cache), a new brief after another one (the shared system message is reused from the
prompt cache) and the same prompt again (regenerate: nothing but the last step runs); decode tokens/s = new tokens
after the first over the time they took. Batched variants (one prefill, several rows) are measured for the
runtimes that Studio runs itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from studio.ml.bench.timing import Timing, cuda_sync, measure, summarise
from studio.ml.checkpoint import sha256_file
from studio.ml.eval.perplexity import held_out_text, perplexity
from studio.ml.models.llama import decoding_copies_for_every_input
from studio.ml.text.bench import MESSAGES, OTHER_MESSAGES
from studio.ml.text.lm import load_language_model

log = logging.getLogger(__name__)

ORT_VARIANTS = ("fp32", "fp16", "int8", "int4")
TARGET_VS_TORCH = 2.0  # issue 6: onnxruntime decoding at least 2x torch eager on the CPU
TARGET_VS_LLAMA_CPP = 1.0  # ... and at least as fast as llama.cpp on the same GGUF


def _greedy(logits: torch.Tensor, stops: list[int]) -> list[int]:
    logits = logits.clone()
    logits[:, stops] = float("-inf")
    return logits.argmax(-1).tolist()


def lm_speed(lm: Any, prompt: list[int], new_tokens: int, repeats: int, variants: int, device: str) -> dict[str, Any]:
    """TTFT and decode rates of a Studio language model (torch or onnxruntime: same prefill/decode_step)."""
    stops = sorted(lm.tokenizer.stop_ids)
    sync = cuda_sync(device)
    other = lm.tokenizer.encode_chat(OTHER_MESSAGES)

    def first_token() -> None:
        logits, _ = lm.prefill(prompt, new_tokens)
        _greedy(logits, stops)
        if sync is not None:
            sync()

    def ttft_after(before: list[int] | None) -> Timing:
        """TTFT with the prompt cache holding only ``before`` (None: empty)."""
        seconds = []
        for _ in range(repeats + 1):  # the first is a warm-up
            lm.prompt_cache.clear()
            if before is not None:
                lm.prefill(before, new_tokens)
            start = time.perf_counter()
            first_token()
            seconds.append(time.perf_counter() - start)
        return summarise(seconds[1:])

    def decode_seconds(batch: int) -> float:
        logits, cache = lm.prefill(prompt, new_tokens, copies=batch)
        start = time.perf_counter()
        for _ in range(new_tokens - 1):
            logits, cache = lm.decode_step(_greedy(logits, stops), cache)
        if sync is not None:
            sync()
        return time.perf_counter() - start

    with torch.inference_mode():
        result: dict[str, Any] = {}
        for key, before in (("ttft", None), ("ttft_new_brief", other), ("ttft_repeat", prompt)):
            ttft = ttft_after(before)
            result[f"{key}_ms"] = round(ttft.median_s * 1e3, 1)
            result[f"{key}_iqr_ms"] = round(ttft.iqr_s * 1e3, 1)
        for batch in sorted({1, variants}):
            decode_seconds(batch)  # warm-up
            spent = summarise([decode_seconds(batch) for _ in range(repeats)])
            key = "decode_tok_s" if batch == 1 else f"decode_tok_s_batch{batch}"
            result[key] = round(batch * (new_tokens - 1) / spent.median_s, 2)
            result[f"{key}_iqr_ms_per_step"] = round(spent.iqr_s * 1e3 / (new_tokens - 1), 2)
    return result


def _row(runtime: str, precision: str, status: str = "ok", **values: Any) -> dict[str, Any]:
    return {"runtime": runtime, "precision": precision, "status": status, **values}


def _timed_load(load: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = load()
    return value, round(time.perf_counter() - start, 2)


def torch_rows(path: Path, prompt: list[int], device: str, dtypes: list[str], new_tokens: int, repeats: int,
               variants: int) -> list[dict[str, Any]]:
    """One row per precision; on a CPU the rows with decoding copies carry their held-out perplexity against fp32
    (every product through the copies), as the quantised exports do."""
    rows = []
    passages, _ = held_out_text()
    reference = None
    for dtype in dtypes:
        lm, load_s = _timed_load(lambda dtype=dtype: load_language_model(path, device, dtype))
        quality: dict[str, Any] = {}
        if device == "cpu":
            with decoding_copies_for_every_input():
                ppl, _ = perplexity(lm, passages)
            reference = reference or (ppl if dtype == "fp32" else None)
            if dtype != "fp32" and reference:
                quality = {"perplexity_ratio": round(ppl / reference, 4)}
        rows.append(_row("torch eager", dtype, load_s=load_s, **quality,
                         **lm_speed(lm, prompt, new_tokens, repeats, variants, device)))
        del lm
    return rows


def ort_rows(name: str, path: Path, prompt: list[int], device: str, threads: int, new_tokens: int, repeats: int,
             variants: int) -> list[dict[str, Any]]:
    from studio.ml.runtime.exports import find_export
    from studio.ml.runtime.ort_lm import load_ort_language_model

    sha256 = sha256_file(path)
    rows = []
    for variant in ORT_VARIANTS:
        try:
            record = find_export(name, (variant,), sha256)
        except Exception as exc:  # a damaged export is reported in the table, the other rows still run
            rows.append(_row("onnxruntime", variant, f"failed: {exc}"))
            continue
        if record is None:
            flag = "" if variant == "fp32" else f" --{variant}"
            rows.append(_row("onnxruntime", variant, f"not exported (`studio export onnx {name}{flag}`)"))
            continue
        quality = record.extra.get("quality", {})
        extra = {key: quality.get(key) for key in ("perplexity_ratio", "greedy_agreement")}
        try:
            lm, load_s = _timed_load(lambda record=record: load_ort_language_model(record, path, device, threads))
            rows.append(_row("onnxruntime", variant, load_s=load_s, **extra,
                             **lm_speed(lm, prompt, new_tokens, repeats, variants, device)))
        except Exception as exc:  # e.g. fp16 kernels the CPU provider lacks: say so, keep measuring the rest
            rows.append(_row("onnxruntime", variant, f"failed: {str(exc).splitlines()[0][:160]}", **extra))
    return rows


def transformers_row(path: Path, prompt: list[int], new_tokens: int, repeats: int) -> dict[str, Any]:
    """The same GGUF through transformers (dequantised to float32) and its ``generate()``."""
    try:
        import transformers
    except ImportError:
        return _row("transformers generate()", "fp32", "not installed (pip install studio[bench])")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.logging.set_verbosity_error()
    model, load_s = _timed_load(lambda: transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32).eval())
    ids = torch.tensor([prompt])
    mask = torch.ones_like(ids)

    def run(count: int) -> None:
        model.generate(ids, attention_mask=mask, max_new_tokens=count, min_new_tokens=count, do_sample=False,
                       pad_token_id=model.config.eos_token_id)

    with torch.inference_mode():
        first = measure(lambda: run(1), repeats)
        full = measure(lambda: run(new_tokens), repeats)
    rate = (new_tokens - 1) / max(full.median_s - first.median_s, 1e-9)
    return _row("transformers generate()", f"fp32 (v{transformers.__version__})", load_s=load_s,
                ttft_ms=round(first.median_s * 1e3, 1), ttft_iqr_ms=round(first.iqr_s * 1e3, 1),
                decode_tok_s=round(rate, 2))


def llama_cpp_row(path: Path, prompt: list[int], new_tokens: int, repeats: int, threads: int) -> dict[str, Any]:
    """The GGUF as it is (Q4_1) through llama.cpp's Python binding, greedy."""
    try:
        import llama_cpp
    except ImportError:
        return _row("llama.cpp", "gguf", "not installed (llama-cpp-python: no prebuilt wheel for this platform; "
                                         "it compiles from source)")
    llm, load_s = _timed_load(lambda: llama_cpp.Llama(model_path=str(path), n_ctx=len(prompt) + new_tokens + 8,
                                                      n_threads=threads or None, verbose=False))

    def run(cold: bool) -> tuple[float, float]:
        """(TTFT, seconds per step). llama-cpp-python reuses the longest prefix of its previous tokens (its own
        prompt cache) unless reset, so ``cold`` resets it and a repeat does not: the same two cases as Studio's."""
        if cold:
            llm.reset()
        start = time.perf_counter()
        stamps = []
        for token in llm.generate(prompt, top_k=1, temp=0.0, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) == new_tokens or token is None:
                break
        return stamps[0] - start, (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)

    run(cold=True)  # warm-up
    cold = [run(cold=True) for _ in range(repeats)]
    ttft, step = summarise([r[0] for r in cold]), summarise([r[1] for r in cold])
    repeat = summarise([run(cold=False)[0] for _ in range(repeats)])
    return _row("llama.cpp", f"gguf (v{llama_cpp.__version__})", load_s=load_s,
                ttft_ms=round(ttft.median_s * 1e3, 1), ttft_iqr_ms=round(ttft.iqr_s * 1e3, 1),
                ttft_repeat_ms=round(repeat.median_s * 1e3, 1), ttft_repeat_iqr_ms=round(repeat.iqr_s * 1e3, 1),
                decode_tok_s=round(1 / step.median_s, 2))


def _ratio(numerator: dict[str, Any] | None, denominator: dict[str, Any] | None, target: float) -> dict[str, Any]:
    a = numerator.get("decode_tok_s") if numerator else None
    b = denominator.get("decode_tok_s") if denominator else None
    if not a or not b:
        return {"ratio": None, "target": target, "met": None}
    return {"ratio": round(a / b, 2), "target": target, "met": a / b >= target}


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Decode-speed ratios against the targets: onnxruntime's 4-bit export (what the app picks on a CPU) and its
    fastest row against torch eager float32 and llama.cpp."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("decode_tok_s")]
    torch_fp32 = next((r for r in ok if r["runtime"] == "torch eager" and r["precision"] == "fp32"), None)
    torch_best = max((r for r in ok if r["runtime"] == "torch eager"), key=lambda r: r["decode_tok_s"], default=None)
    ort = [r for r in ok if r["runtime"] == "onnxruntime"]
    ort_int4 = next((r for r in ort if r["precision"] == "int4"), None)
    ort_best = max(ort, key=lambda r: r["decode_tok_s"], default=None)
    llama = next((r for r in ok if r["runtime"] == "llama.cpp"), None)
    return {
        "onnxruntime_int4_vs_torch_fp32": _ratio(ort_int4, torch_fp32, TARGET_VS_TORCH),
        "onnxruntime_best_vs_torch_best": _ratio(ort_best, torch_best, TARGET_VS_TORCH),
        "onnxruntime_best_vs_llama_cpp": _ratio(ort_best, llama, TARGET_VS_LLAMA_CPP),
        "onnxruntime_best": None if ort_best is None else ort_best["precision"],
        "torch_best": None if torch_best is None else torch_best["precision"],
    }


def bench_copy(
    name: str, path: Path, device: str = "cpu", threads: int = 0, new_tokens: int = 64, repeats: int = 5,
    variants: int = 3, dtypes: tuple[str, ...] = ("fp32", "bf16", "int8"), references: bool = True,
) -> dict[str, Any]:
    """Every row for one GGUF model; ``references`` adds transformers and llama.cpp."""
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    tokenizer_lm = load_language_model(path, "cpu", "fp32")
    prompt = tokenizer_lm.tokenizer.encode_chat(MESSAGES)
    del tokenizer_lm
    rows = torch_rows(path, prompt, device, list(dtypes), new_tokens, repeats, variants)
    rows += ort_rows(name, path, prompt, device, threads, new_tokens, repeats, variants)
    if references:
        rows.append(transformers_row(path, prompt, new_tokens, repeats))
        rows.append(llama_cpp_row(path, prompt, new_tokens, repeats, threads))
    return {"model": name, "file": path.name, "prompt_tokens": len(prompt), "new_tokens": new_tokens,
            "repeats": repeats, "variants": variants, "threads": threads, "rows": rows, "ratios": ratios(rows)}


def markdown(report: dict[str, Any]) -> list[str]:
    batch_key = f"decode_tok_s_batch{report['variants']}"
    lines = [
        f"## Copy: {report['model']} ({report['file']})",
        "",
        f"Prompt {report['prompt_tokens']} tokens, {report['new_tokens']} new tokens, greedy with end tokens masked; "
        f"medians of {report['repeats']} runs after a warm-up (IQR in brackets); {report['threads']} threads.",
        "",
        "TTFT: cold = empty prompt cache; new brief = another brief ran before (the system message is reused); "
        "repeat = the same prompt again (regenerate; llama.cpp's binding has its own prompt cache). transformers is "
        "measured cold only.",
        "",
        f"| runtime | precision | load s | TTFT ms cold | TTFT ms new brief | TTFT ms repeat | decode tok/s | "
        f"{report['variants']} variants tok/s | held-out perplexity vs fp32 | greedy tokens = fp32 | status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def ttft(r: dict[str, Any], key: str) -> str:
        return f"{r[key + '_ms']:.0f} ({r.get(key + '_iqr_ms', 0):.0f})" if r.get(key + "_ms") is not None else "-"

    for r in report["rows"]:
        decode = f"{r['decode_tok_s']:.1f}" if r.get("decode_tok_s") else "-"
        batch = f"{r[batch_key]:.1f}" if r.get(batch_key) else "-"
        ppl = f"x{r['perplexity_ratio']:.4f}" if r.get("perplexity_ratio") else "-"
        lines.append(f"| {r['runtime']} | {r['precision']} | {r.get('load_s', '-')} | {ttft(r, 'ttft')} | "
                     f"{ttft(r, 'ttft_new_brief')} | {ttft(r, 'ttft_repeat')} | {decode} | {batch} | "
                     f"{ppl} | {r.get('greedy_agreement') or '-'} | {r['status']} |")
    lines += ["", "| ratio (decode tok/s) | measured | target | met |", "|---|---:|---:|---|"]
    for key, value in report["ratios"].items():
        if isinstance(value, dict):
            measured = "-" if value["ratio"] is None else f"{value['ratio']:.2f}x"
            met = "not measured" if value["met"] is None else ("yes" if value["met"] else "NO")
            lines.append(f"| {key.replace('_', ' ')} | {measured} | {value['target']:.1f}x | {met} |")
    return lines
