"""Language-model speed side by side, one run: the same GGUF weights through torch eager, onnxruntime (each
exported precision), Hugging Face transformers' ``generate()`` and llama.cpp (``llama-cpp-python``), when present.
A LoRA adapter (the app's default copy model is one) is measured on its base model's GGUF: torch with it merged and
its own onnxruntime export; transformers and llama.cpp run the base GGUF as it is, whose shapes and blocks a merged
adapter would keep (the same work a token).

Every runtime gets the same prompt ids (the copy brief of :mod:`studio.ml.text.bench` through the chat template) and
decodes greedily with the end-of-turn tokens masked, so every run is equally long and only the model's speed is
measured (sampling costs the same on every runtime). TTFT = prefill + the first token, three ways for Studio's own
runtimes: cold (empty prompt cache), a new brief after another one (the shared system message is reused from the
prompt cache) and the same prompt again (regenerate: nothing but the last step runs); decode tokens/s = new tokens
after the first over the time they took. k candidates of the prompt decoded together (k = 4, 8, 16, as the copy
generator decodes them) are measured for the runtimes that Studio runs itself.

The ratios the targets are held against come from alternating rounds after the tables (:func:`alternating_rounds`):
the default runtime's single stream and 8 candidates, llama.cpp and any given export take turns, and each ratio is
taken within a round, so that a busy machine moves both sides of it alike.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from studio.ml.bench.side_by_side import Contender, alternate, round_ratio
from studio.ml.bench.timing import Timing, cuda_sync, measure, summarise
from studio.ml.checkpoint import sha256_file
from studio.ml.eval.perplexity import held_out_text, perplexity
from studio.ml.models.llama import batch_copies, decoding_copies_for_every_input
from studio.ml.runtime.cpu import clamp_threads, int4_kernel_note
from studio.ml.runtime.ort_lm import candidate_batch
from studio.ml.text.bench import MESSAGES, OTHER_MESSAGES
from studio.ml.text.lm import app_precision, load_language_model

log = logging.getLogger(__name__)

ORT_VARIANTS = ("fp32", "fp16", "int8", "int4")
TARGET_VS_TORCH = 2.0  # issue 6: onnxruntime decoding at least 2x torch eager on the CPU
TARGET_VS_LLAMA_CPP = 1.0  # issue 17: Studio's single stream at least as fast as llama.cpp on the same GGUF,
TARGET_TTFT_VS_LLAMA_CPP = 1.0  # its time to first token (cold) at most llama.cpp's,
TARGET_BATCH8 = 3.0  # 8 candidates of one prompt at least 3x its single-stream tokens/s,
TARGET_PERPLEXITY = 1.02  # held-out perplexity within 2 % of float32
REFERENCES = ("transformers", "llama.cpp")
BATCHES = (4, 8, 16)  # candidates decoded together, besides the single stream
CANDIDATES = 8  # the batch the target is set for
ROUNDS = 10  # alternating rounds that the target ratios are taken from


def _greedy(logits: torch.Tensor, stops: list[int]) -> list[int]:
    logits = logits.clone()
    logits[:, stops] = float("-inf")
    return logits.argmax(-1).tolist()


def decode_once(lm: Any, prompt: list[int], new_tokens: int, batch: int, device: str) -> float:
    """Seconds of the ``new_tokens - 1`` decoding steps after the first token, ``batch`` rows of ``prompt`` (more
    than one: started as the copy generator starts its candidates, through :func:`candidate_batch`); the prefill is
    untimed."""
    stops = sorted(lm.tokenizer.stop_ids)
    sync = cuda_sync(device)
    with torch.inference_mode(), batch_copies(batch > 1):  # as the copy generator decodes its candidates
        if batch == 1:
            logits, cache = lm.prefill(prompt, new_tokens)
        else:
            logits, cache = candidate_batch(lm, prompt, batch, new_tokens)
        start = time.perf_counter()
        for _ in range(new_tokens - 1):
            logits, cache = lm.decode_step(_greedy(logits, stops), cache)
        if sync is not None:
            sync()
    return time.perf_counter() - start


def lm_speed(lm: Any, prompt: list[int], new_tokens: int, repeats: int, batches: Sequence[int],
             device: str) -> dict[str, Any]:
    """TTFT and decode rates of a Studio language model (torch or onnxruntime: same prefill/decode_step); for
    each k of ``batches`` above 1, k candidates of the prompt decoded together, started as the copy generator
    starts them (the prompt's keys and values shared where the runtime can: :func:`candidate_batch`)."""
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

    with torch.inference_mode():
        result: dict[str, Any] = {}
        for key, before in (("ttft", None), ("ttft_new_brief", other), ("ttft_repeat", prompt)):
            ttft = ttft_after(before)
            result[f"{key}_ms"] = round(ttft.median_s * 1e3, 1)
            result[f"{key}_iqr_ms"] = round(ttft.iqr_s * 1e3, 1)
        for batch in sorted({1, *batches}):
            decode_once(lm, prompt, new_tokens, batch, device)  # warm-up
            spent = summarise([decode_once(lm, prompt, new_tokens, batch, device) for _ in range(repeats)])
            key = "decode_tok_s" if batch == 1 else f"decode_tok_s_k{batch}"
            result[key] = round(batch * (new_tokens - 1) / spent.median_s, 2)
            result[f"{key}_iqr_ms_per_step"] = round(spent.iqr_s * 1e3 / (new_tokens - 1), 2)
    return result


def _row(runtime: str, precision: str, status: str = "ok", **values: Any) -> dict[str, Any]:
    return {"runtime": runtime, "precision": precision, "status": status, **values}


def _timed_load(load: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = load()
    return value, round(time.perf_counter() - start, 2)


def load_torch(path: Path, device: str, dtype: str, adapter: Path | None = None) -> Any:
    """The GGUF at ``path`` on torch at ``dtype``, with the LoRA ``adapter`` merged when there is one."""
    lm = load_language_model(path, device, dtype)
    if adapter is None:
        return lm
    from studio.ml.train.lora import apply_adapter

    return apply_adapter(lm, adapter)


def torch_rows(path: Path, prompt: list[int], device: str, dtypes: list[str], new_tokens: int, repeats: int,
               batches: Sequence[int], quality: bool = True, adapter: Path | None = None) -> list[dict[str, Any]]:
    """One row per precision (with ``adapter`` merged); on a CPU the rows with decoding copies carry their held-out
    perplexity against fp32 (every product through the copies), as the quantised exports do."""
    rows = []
    passages, _ = held_out_text()
    reference = None
    app_dtype = app_precision(device) or "fp32"
    for dtype in dtypes:
        lm, load_s = _timed_load(lambda dtype=dtype: load_torch(path, device, dtype, adapter))
        measured: dict[str, Any] = {}
        if device == "cpu" and quality:
            with decoding_copies_for_every_input():
                ppl, _ = perplexity(lm, passages)
            reference = reference or (ppl if dtype == "fp32" else None)
            if dtype != "fp32" and reference:
                measured = {"perplexity_ratio": round(ppl / reference, 4)}
        if dtype == app_dtype:  # what the app's "auto" runtime measures torch as
            measured.update(auto_measurement(lm))
        rows.append(_row("torch eager", dtype, load_s=load_s, **measured,
                         **lm_speed(lm, prompt, new_tokens, repeats, batches, device)))
        del lm
    return rows


def auto_measurement(lm: Any) -> dict[str, float]:
    """What the app's "auto" runtime measures of a candidate before choosing (:mod:`studio.ml.runtime.ort_lm`):
    milliseconds per token of one stream and of a batch of candidates."""
    from studio.ml.runtime.ort_lm import batch_seconds, decode_seconds

    with torch.inference_mode():
        return {"auto_stream_ms": round(decode_seconds(lm) * 1e3, 2),
                "auto_batch_ms": round(batch_seconds(lm) * 1e3, 2)}


def _export_kind(record: Any) -> str:
    from studio.ml.runtime.exports import FUSED_GRAPH

    return "fused graph" if FUSED_GRAPH in record.graphs else "traced graph"


def _ort_row(record: Any, path: Path, prompt: list[int], device: str, threads: int, new_tokens: int, repeats: int,
             batches: Sequence[int], candidate: bool, label: str = "") -> dict[str, Any]:
    from studio.ml.runtime.ort_lm import load_ort_language_model

    quality = record.extra.get("quality", {})
    extra = {"export": label or _export_kind(record),
             **{key: quality.get(key) for key in ("perplexity_ratio", "greedy_agreement")}}
    try:
        lm, load_s = _timed_load(lambda: load_ort_language_model(record, path, device, threads))
        auto = auto_measurement(lm) if candidate else {}
        return _row("onnxruntime", record.variant, load_s=load_s, **extra, **auto,
                    **lm_speed(lm, prompt, new_tokens, repeats, batches, device))
    except Exception as exc:  # e.g. fp16 kernels the CPU provider lacks: say so, keep measuring the rest
        return _row("onnxruntime", record.variant, f"failed: {str(exc).splitlines()[0][:160]}", **extra)


def ort_rows(name: str, path: Path, prompt: list[int], device: str, threads: int, new_tokens: int, repeats: int,
             batches: Sequence[int], variants: Sequence[str] = ORT_VARIANTS,
             adapter: Path | None = None) -> list[dict[str, Any]]:
    """One row per exported precision (of ``adapter``, the model ``name``, when there is one); those the app's
    "auto" runtime may choose carry its own measurement."""
    from studio.ml.runtime.exports import find_export
    from studio.ml.runtime.ort_lm import CPU_VARIANTS, CUDA_VARIANTS, quality_ok

    sha256 = sha256_file(adapter or path)
    choosable = CUDA_VARIANTS if device == "cuda" else CPU_VARIANTS
    rows = []
    for variant in variants:
        try:
            record = find_export(name, (variant,), sha256)
        except Exception as exc:  # a damaged export is reported in the table, the other rows still run
            rows.append(_row("onnxruntime", variant, f"failed: {exc}"))
            continue
        if record is None:
            flag = "" if variant == "fp32" else f" --{variant}"
            rows.append(_row("onnxruntime", variant, f"not exported (`studio export onnx {name}{flag}`)"))
            continue
        rows.append(_ort_row(record, path, prompt, device, threads, new_tokens, repeats, batches,
                             candidate=variant in choosable and quality_ok(record)))
    return rows


def given_export_rows(folders: Sequence[Path], path: Path, prompt: list[int], device: str, threads: int,
                      new_tokens: int, repeats: int, batches: Sequence[int]) -> list[dict[str, Any]]:
    """Export folders measured as they are, e.g. one an older version of Studio made (the app would refuse it and
    export again, so it is never the app's choice): how much faster the current export is, side by side; or a LoRA
    adapter's graph on this base model (the default copy model is one)."""
    from studio.ml.runtime.exports import older_format, read_record, stale_reason

    rows = []
    for folder in folders:
        try:
            record = read_record(Path(folder))
        except Exception as exc:
            rows.append(_row("onnxruntime", "?", f"failed: {exc}", export=str(folder)))
            continue
        older = " from an older Studio" if older_format(record) else ""
        older = older or (" (not the app's choice here)" if stale_reason(record) else "")
        adapter = f" of the adapter {record.model}" if record.arch == "llama-lora" else ""
        rows.append(_ort_row(record, path, prompt, device, threads, new_tokens, repeats, batches, candidate=False,
                             label=f"{_export_kind(record)}{older}{adapter} (given)"))
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


LLAMA_CPP_MISSING = ("not installed (llama-cpp-python: no prebuilt wheel for this platform; it compiles from "
                     "source)")


def open_llama_cpp(path: Path, prompt: list[int], new_tokens: int, threads: int) -> Any:
    """The GGUF as it is (Q4_1) in llama.cpp's Python binding; ImportError when it is not installed."""
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), n_ctx=len(prompt) + new_tokens + 8, n_threads=threads or None,
                           verbose=False)


def llama_cpp_decode(llm: Any, prompt: list[int], new_tokens: int, cold: bool) -> tuple[float, float]:
    """(TTFT, seconds per step) of one greedy run. llama-cpp-python reuses the longest prefix of its previous tokens
    (its own prompt cache) unless reset, so ``cold`` resets it and a repeat does not: the same two cases as
    Studio's."""
    if cold:
        llm.reset()
    start = time.perf_counter()
    stamps = []
    for token in llm.generate(prompt, top_k=1, temp=0.0, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) == new_tokens or token is None:
            break
    return stamps[0] - start, (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)


def llama_cpp_row(path: Path, prompt: list[int], new_tokens: int, repeats: int, threads: int) -> dict[str, Any]:
    """The GGUF as it is (Q4_1) through llama.cpp's Python binding, greedy."""
    try:
        import llama_cpp
    except ImportError:
        return _row("llama.cpp", "gguf", LLAMA_CPP_MISSING)
    llm, load_s = _timed_load(lambda: open_llama_cpp(path, prompt, new_tokens, threads))

    def run(cold: bool) -> tuple[float, float]:
        return llama_cpp_decode(llm, prompt, new_tokens, cold)

    run(cold=True)  # warm-up
    cold = [run(cold=True) for _ in range(repeats)]
    ttft, step = summarise([r[0] for r in cold]), summarise([r[1] for r in cold])
    repeat = summarise([run(cold=False)[0] for _ in range(repeats)])
    return _row("llama.cpp", f"gguf (v{llama_cpp.__version__})", load_s=load_s,
                ttft_ms=round(ttft.median_s * 1e3, 1), ttft_iqr_ms=round(ttft.iqr_s * 1e3, 1),
                ttft_repeat_ms=round(repeat.median_s * 1e3, 1), ttft_repeat_iqr_ms=round(repeat.iqr_s * 1e3, 1),
                decode_tok_s=round(1 / step.median_s, 2))


def _ratio(numerator: dict[str, Any] | None, denominator: dict[str, Any] | None, target: float,
           key: str = "decode_tok_s", over: str | None = None) -> dict[str, Any]:
    """``numerator[key] / denominator[over or key]`` against ``target``; unmeasured is not a pass."""
    a = numerator.get(key) if numerator else None
    b = denominator.get(over or key) if denominator else None
    if not a or not b:
        return {"ratio": None, "target": target, "met": None}
    return {"ratio": round(a / b, 2), "target": target, "met": a / b >= target}


def _name(row: dict[str, Any] | None) -> str | None:
    if row is None:
        return None
    return " ".join(filter(None, (row["runtime"], row["precision"], row.get("export"))))


def _picks_fastest(candidates: list[dict[str, Any]], auto_key: str, speed_key: str) -> dict[str, Any]:
    """Whether the candidate the app's quick measurement (``auto_key``, ms a token) chose is the one this run
    measured fastest (``speed_key``, tokens/s)."""
    measured = [r for r in candidates if r.get(auto_key) and r.get(speed_key)]
    if not measured:
        return {"picked": None, "fastest": None, "met": None}
    picked = min(measured, key=lambda r: r[auto_key])
    fastest = max(measured, key=lambda r: r[speed_key])
    return {"picked": _name(picked), "fastest": _name(fastest), "met": picked is fastest}


def default_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the app's "auto" choice runs copy on: the candidate (torch at the app's precision, every export it may
    use) its own measurement of a batch of candidates found fastest (the copy generator decodes in batches)."""
    candidates = [r for r in rows if r["status"] == "ok" and r.get("decode_tok_s") and r.get("auto_batch_ms")]
    return min(candidates, key=lambda r: r["auto_batch_ms"], default=None)


def ratios(rows: list[dict[str, Any]], side: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ratios against the targets, for the default runtime (:func:`default_row`); llama.cpp is the reference.
    ``side``: the alternating rounds (:func:`alternating_rounds`), whose within-round ratios replace the ratios of
    the sequential rows where they measured the same thing."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("decode_tok_s")]
    torch_fp32 = next((r for r in ok if r["runtime"] == "torch eager" and r["precision"] == "fp32"), None)
    torch_best = max((r for r in ok if r["runtime"] == "torch eager"), key=lambda r: r["decode_tok_s"], default=None)
    ort = [r for r in ok if r["runtime"] == "onnxruntime"]
    fused = next((r for r in ort if r.get("export") == "fused graph"), None)
    older = next((r for r in ort if "older" in (r.get("export") or "")), None)
    ort_best = max(ort, key=lambda r: r["decode_tok_s"], default=None)
    candidates = [r for r in ok if r.get("auto_batch_ms")]
    default = default_row(rows)
    llama = next((r for r in ok if r["runtime"] == "llama.cpp"), None)
    ppl = default.get("perplexity_ratio") if default else None
    if default is not None and default["precision"] == "fp32":
        ppl = 1.0  # the reference itself
    return {
        "default_vs_llama_cpp": _ratio(default, llama, TARGET_VS_LLAMA_CPP),
        "llama_cpp_ttft_over_default": _ratio(llama, default, TARGET_TTFT_VS_LLAMA_CPP, "ttft_ms"),
        "default_8_candidates_vs_its_single_stream": _ratio(default, default, TARGET_BATCH8, "decode_tok_s_k8",
                                                            "decode_tok_s"),
        "default_perplexity_vs_fp32": {"ratio": ppl, "target": TARGET_PERPLEXITY, "at_most": True,
                                       "met": None if ppl is None else ppl <= TARGET_PERPLEXITY},
        "auto_picks_fastest_single_stream": _picks_fastest(candidates, "auto_stream_ms", "decode_tok_s"),
        "auto_picks_fastest_8_candidates": _picks_fastest(candidates, "auto_batch_ms", "decode_tok_s_k8"),
        "fused_vs_older_export": _ratio(fused, older, 1.0),
        "onnxruntime_int4_vs_torch_fp32": _ratio(fused, torch_fp32, TARGET_VS_TORCH),
        "onnxruntime_best_vs_torch_best": _ratio(ort_best, torch_best, TARGET_VS_TORCH),
        "default": _name(default),
        **(side.get("targets", {}) if side else {}),
    }


def _open_row(row: dict[str, Any], name: str, path: Path, device: str, threads: int,
              adapter: Path | None = None) -> Any:
    """The language model a measured row ran: torch at its precision, or the verified export of its variant."""
    from studio.ml.runtime.exports import find_export
    from studio.ml.runtime.ort_lm import load_ort_language_model

    if row["runtime"] == "torch eager":
        return load_torch(path, device, row["precision"], adapter)
    record = find_export(name, (row["precision"],), sha256_file(adapter or path))
    if record is None:
        raise FileNotFoundError(f"the {row['precision']} export of {name} is gone")
    return load_ort_language_model(record, path, device, threads)


def _studio_turns(label: str, lm: Any, prompt: list[int], new_tokens: int, device: str) -> list[Contender]:
    """One stream and CANDIDATES candidates of a Studio language model, as two contenders."""
    steps = new_tokens - 1
    return [Contender(label, steps, lambda: decode_once(lm, prompt, new_tokens, 1, device)),
            Contender(f"{label}, {CANDIDATES} candidates", CANDIDATES * steps,
                      lambda: decode_once(lm, prompt, new_tokens, CANDIDATES, device))]


def _numbered(name: str, taken: list[str]) -> str:
    """``name``, numbered when it is taken already (two folders of one model and variant)."""
    return name if name not in taken else f"{name} #{len(taken) + 1}"


def alternating_rounds(name: str, path: Path, prompt: list[int], device: str, threads: int, new_tokens: int,
                       rounds: int, rows: list[dict[str, Any]], exports: Sequence[Path] = (),
                       adapter: Path | None = None) -> dict[str, Any] | None:
    """The default runtime (one stream and 8 candidates), llama.cpp and each given export, taking turns for
    ``rounds`` rounds (:mod:`studio.ml.bench.side_by_side`): the ratios the targets are held against, each taken
    within a round, and every round's tokens/s (``rates``). None when there is no default runtime to measure."""
    from studio.ml.runtime.exports import read_record
    from studio.ml.runtime.ort_lm import load_ort_language_model

    default = default_row(rows)
    if default is None or rounds < 1:
        return None
    own = f"default: {_name(default)}"
    contenders = _studio_turns(own, _open_row(default, name, path, device, threads, adapter), prompt, new_tokens,
                               device)
    given: list[str] = []
    for folder in exports:
        try:
            record = read_record(Path(folder))
            lm = load_ort_language_model(record, path, device, threads)
            decode_once(lm, prompt, new_tokens, CANDIDATES, device)  # one that loads but cannot run stays out
        except Exception as exc:  # its row in the table says why; the rounds go on without it
            log.warning("the export in %s is left out of the alternating rounds: %s", folder, exc)
            continue
        given.append(_numbered(f"{record.model} {record.variant} (given)", given))
        contenders += _studio_turns(given[-1], lm, prompt, new_tokens, device)
    if any(r["runtime"] == "llama.cpp" and r["status"] == "ok" for r in rows):
        llm = open_llama_cpp(path, prompt, new_tokens, threads)
        contenders.append(Contender("llama.cpp", new_tokens - 1, lambda: (new_tokens - 1) * llama_cpp_decode(
            llm, prompt, new_tokens, cold=True)[1]))
    rates = alternate(contenders, rounds)
    batch = f", {CANDIDATES} candidates"
    targets = {"default_vs_llama_cpp": round_ratio(rates, own, "llama.cpp", TARGET_VS_LLAMA_CPP),
               "default_8_candidates_vs_its_single_stream": round_ratio(rates, own + batch, own, TARGET_BATCH8)}
    others = {}
    for each in given:
        others[f"{each} vs llama.cpp"] = round_ratio(rates, each, "llama.cpp", TARGET_VS_LLAMA_CPP)
        others[f"{each}: {CANDIDATES} candidates vs its single stream"] = round_ratio(rates, each + batch, each,
                                                                                      TARGET_BATCH8)
    return {"rounds": rounds, "rates": rates, "targets": targets, "others": others}


def bench_copy(
    name: str, path: Path, device: str = "cpu", threads: int = 0, new_tokens: int = 64, repeats: int = 5,
    batches: Sequence[int] = BATCHES, dtypes: tuple[str, ...] = ("fp32", "bf16", "int8"),
    references: Sequence[str] = REFERENCES, quality: bool = True, variants: Sequence[str] = ORT_VARIANTS,
    exports: Sequence[Path] = (), rounds: int = ROUNDS, adapter: Path | None = None,
) -> dict[str, Any]:
    """Every row for one GGUF model (or the LoRA ``adapter`` named ``name`` on it) at ``threads`` (0: torch's own
    count; clamped to 1..cores, and said);
    ``references``: which of transformers and llama.cpp to add; ``quality``: the torch rows' held-out perplexity;
    ``exports``: export folders measured as well, as they are (an older export, say); ``rounds``: alternating
    rounds of the default runtime, llama.cpp and the given exports after the rows (0: none)."""
    threads, threads_note = clamp_threads(threads or torch.get_num_threads())
    torch.set_num_threads(threads)
    load_before = _load_average()
    tokenizer_lm = load_language_model(path, "cpu", "fp32")
    prompt = tokenizer_lm.tokenizer.encode_chat(MESSAGES)
    del tokenizer_lm
    rows = torch_rows(path, prompt, device, list(dtypes), new_tokens, repeats, batches, quality, adapter)
    if adapter is not None:  # an adapter exports as the CPU's fused graph only
        variants = [v for v in variants if v == "int4"]
    rows += ort_rows(name, path, prompt, device, threads, new_tokens, repeats, batches, variants, adapter)
    rows += given_export_rows(exports, path, prompt, device, threads, new_tokens, repeats, batches)
    if "transformers" in references:
        rows.append(transformers_row(path, prompt, new_tokens, repeats))
    if "llama.cpp" in references:
        rows.append(llama_cpp_row(path, prompt, new_tokens, repeats, threads))
    try:
        side = alternating_rounds(name, path, prompt, device, threads, new_tokens, rounds, rows, exports, adapter)
    except Exception as exc:  # e.g. out of memory with every runtime loaded at once: the tables above still stand
        log.warning("the alternating rounds failed: %s", exc)
        side = {"failed": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}
    return {"model": name, "file": path.name, "adapter": adapter.name if adapter else None,
            "prompt_tokens": len(prompt), "new_tokens": new_tokens,
            "repeats": repeats, "batches": sorted({1, *batches}), "threads": threads, "threads_note": threads_note,
            "kernel_note": int4_kernel_note(), "load_average": {"start": load_before, "end": _load_average()},
            "rows": rows, "side_by_side": side, "ratios": ratios(rows, side)}


def carry_quality(first: dict[str, Any], report: dict[str, Any]) -> None:
    """Held-out perplexity does not depend on the thread count: rows of ``report`` take it from the same runtime's
    row in ``first`` (measured there), and the ratios are worked out again."""
    measured = {_name(r): r["perplexity_ratio"] for r in first["rows"] if r.get("perplexity_ratio")}
    for row in report["rows"]:
        if not row.get("perplexity_ratio") and _name(row) in measured:
            row["perplexity_ratio"] = measured[_name(row)]
    report["ratios"] = ratios(report["rows"], report.get("side_by_side"))


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _ratio_line(key: str, value: dict[str, Any]) -> str:
    met = "not measured" if value["met"] is None else ("yes" if value["met"] else "NO")
    if "picked" in value:
        return f"| {key.replace('_', ' ')} | {value['picked'] or '-'} | {value['fastest'] or '-'} | {met} |"
    measured = "-" if value["ratio"] is None else f"{value['ratio']:.2f}x"
    if value.get("rounds"):
        measured += f" (rounds {value['low']:.2f}-{value['high']:.2f})"
    target = f"at most {value['target']:.2f}x" if value.get("at_most") else f"{value['target']:.1f}x"
    return f"| {key.replace('_', ' ')} | {measured} | {target} | {met} |"


def markdown(report: dict[str, Any]) -> list[str]:
    ks = [k for k in report["batches"] if k > 1]
    notes = [n for n in (report.get("threads_note"), report.get("kernel_note")) if n]
    source = report["file"]
    if report.get("adapter"):
        source = f"the LoRA adapter {report['adapter']} on {report['file']}"
        notes.append(f"transformers and llama.cpp run {report['file']} as it is, without the adapter: merged into "
                     "it, the adapter would keep its shapes and block types, so the same work a token")
    load = report.get("load_average") or {}
    lines = [
        f"## Copy: {report['model']} ({source}), {report['threads']} threads",
        "",
        f"Prompt {report['prompt_tokens']} tokens, {report['new_tokens']} new tokens, greedy with end tokens masked; "
        f"medians of {report['repeats']} runs after a warm-up (IQR in brackets); {report['threads']} threads; "
        f"load average {load.get('start')} at the start of this table, {load.get('end')} at its end.",
        *([""] + [f"Note: {n}." for n in notes] if notes else []),
        "",
        "TTFT: cold = empty prompt cache; new brief = another brief ran before (the system message is reused); "
        "repeat = the same prompt again (regenerate; llama.cpp's binding has its own prompt cache). transformers is "
        "measured cold only. k candidates: k rows of the prompt decoded together as the copy generator starts them "
        "(both runtimes keep the prompt's keys and values once for all rows), tokens/s "
        "of all rows together. auto ms: what the app's \"auto\" runtime measures of each runtime it may choose "
        "(ms a token: one stream / 8 candidates); it runs copy on the fastest at 8 candidates (the default).",
        "",
        "| runtime | precision | export | load s | TTFT ms cold | TTFT ms new brief | TTFT ms repeat | decode tok/s | "
        + "".join(f"k={k} tok/s | " for k in ks)
        + "held-out perplexity vs fp32 | greedy tokens = fp32 | auto ms | status |",
        "|---|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(ks) + "---:|---:|---:|---|",
    ]

    def ttft(r: dict[str, Any], key: str) -> str:
        return f"{r[key + '_ms']:.0f} ({r.get(key + '_iqr_ms', 0):.0f})" if r.get(key + "_ms") is not None else "-"

    for r in report["rows"]:
        decode = f"{r['decode_tok_s']:.1f}" if r.get("decode_tok_s") else "-"
        batch = "".join((f"{r[f'decode_tok_s_k{k}']:.1f}" if r.get(f"decode_tok_s_k{k}") else "-") + " | "
                        for k in ks)
        ppl = f"x{r['perplexity_ratio']:.4f}" if r.get("perplexity_ratio") else "-"
        auto = f"{r['auto_stream_ms']:.1f} / {r['auto_batch_ms']:.1f}" if r.get("auto_batch_ms") else "-"
        lines.append(f"| {r['runtime']} | {r['precision']} | {r.get('export') or '-'} | {r.get('load_s', '-')} | "
                     f"{ttft(r, 'ttft')} | {ttft(r, 'ttft_new_brief')} | {ttft(r, 'ttft_repeat')} | {decode} | "
                     f"{batch}{ppl} | {r.get('greedy_agreement') or '-'} | {auto} | {r['status']} |")
    lines += ["", f"Default copy runtime (auto's choice): {report['ratios'].get('default') or 'none measured'}.", "",
              "| ratio | measured (auto's pick) | target (fastest measured) | met |", "|---|---:|---:|---|"]
    lines += [_ratio_line(key, value) for key, value in report["ratios"].items() if isinstance(value, dict)]
    return lines + side_by_side_markdown(report.get("side_by_side"), report["new_tokens"])


def side_by_side_markdown(side: dict[str, Any] | None, new_tokens: int) -> list[str]:
    """The alternating rounds' rates (median, lowest and highest round) and the given exports' ratios."""
    if not side:
        return []
    if "failed" in side:
        return ["", f"Alternating rounds: failed ({side['failed']}); the targets above are the sequential tables'."]
    lines = ["", f"Alternating rounds ({side['rounds']}): in each round every runtime below decodes once, "
             f"{new_tokens - 1} greedy steps after the prompt's first token (each of {CANDIDATES} candidates takes "
             "them too), every other round in reverse order; a ratio is taken within each round, and the targets "
             "above that have a rounds range are the median of those. The rates move with the machine; the ratios "
             "much less.", "",
             "| runtime | tok/s, median of rounds | lowest-highest round |", "|---|---:|---:|"]
    lines += [f"| {name} | {statistics.median(rates):.1f} | {min(rates):.1f}-{max(rates):.1f} |"
              for name, rates in side["rates"].items()]
    if side["others"]:
        lines += ["", "| ratio (given exports) | measured | target | met |", "|---|---:|---:|---|"]
        lines += [_ratio_line(key, value) for key, value in side["others"].items()]
    return lines


def summary(reports: Sequence[dict[str, Any]]) -> list[str]:
    """The targets of every thread count's table side by side."""
    keys = [k for k, v in reports[0]["ratios"].items() if isinstance(v, dict)]
    lines = ["## Targets", "", "| target | " + " | ".join(f"{r['threads']} threads" for r in reports) + " |",
             "|---|" + "---|" * len(reports)]
    for key in keys:
        cells = []
        for report in reports:
            value = report["ratios"][key]
            met = "not measured" if value["met"] is None else ("met" if value["met"] else "NOT met")
            shown = value["picked"] if "picked" in value else (
                None if value["ratio"] is None else f"{value['ratio']:.2f}x")
            if value.get("rounds"):
                shown += f", rounds {value['low']:.2f}-{value['high']:.2f}"
            cells.append(f"{shown or '-'} ({met})")
        lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return [*lines, ""]
