"""``studio bench copy``: language-model speed (load, time to first token, tokens/s) written as JSON/Markdown."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studio.core.errors import BadInputError
from studio.core.modalities.copy import DEFAULT_COPY_MODEL
from studio.core.safe_write import write_atomic

DEFAULT_MODEL = DEFAULT_COPY_MODEL  # what the app writes copy with: the bundled adapter on its base model


def model_files(name: str) -> tuple[Path, Path | None]:
    """(the GGUF, the LoRA adapter or None) of the stored language model or adapter ``name``, verified."""
    from studio.ml.runtime.lora_lm import base_model
    from studio.ml.store import ModelStore
    from studio.ml.train.lora import ARCH as LORA_ARCH

    store = ModelStore()
    entry = store.find(name)
    store.verify(entry)
    if entry.arch == LORA_ARCH:
        base = store.find(base_model(entry))
        store.verify(base)
        return base.weights, entry.weights
    if entry.arch != "llama":
        raise BadInputError(f"{name!r} is not a language model")
    return entry.weights, None


def _model_files(args: argparse.Namespace) -> tuple[Path, Path | None]:
    return (Path(args.gguf), None) if args.gguf else model_files(args.model)


def thread_counts(text: str) -> list[int]:
    """``--threads``: comma-separated counts; "app" is the app's own (Settings: all cores but one by default)."""
    from studio.core.settings import load_settings

    counts = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "app":
            counts.append(load_settings().model_threads)
            continue
        try:
            counts.append(int(part))
        except ValueError:
            raise BadInputError(f"--threads takes numbers or 'app', not {part!r}") from None
    return list(dict.fromkeys(counts)) or [0]


def run_bench(args: argparse.Namespace) -> int:
    from studio.ml.bench.copy import ORT_VARIANTS, REFERENCES, ROUNDS, bench_copy, carry_quality, markdown, summary
    from studio.ml.bench.timing import machine_description, machine_line
    from studio.ml.device import resolve_device
    from studio.ml.runtime.ort_lm import CPU_VARIANTS, CUDA_VARIANTS
    from studio.ml.text.lm import app_precision

    if args.new_tokens < 2:
        raise BadInputError(f"--new-tokens {args.new_tokens}: decoding speed needs at least 2 tokens (the first "
                            "comes with the prompt)")
    device = resolve_device(args.device)
    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip()) or ("fp32",)
    batches = tuple(int(k) for k in args.batches.split(",") if k.strip())
    reports, sections = [], []
    for i, threads in enumerate(thread_counts(args.threads)):
        # later thread counts measure what the app may run: torch at the app's precision, the exports "auto" may
        # choose, the given exports and llama.cpp; held-out perplexity does not depend on threads (carried over)
        first = i == 0
        machine = machine_description(device, threads)  # the load average before the table
        references = () if args.no_references else REFERENCES if first else ("llama.cpp",)
        gguf, adapter = _model_files(args)
        report = bench_copy(args.model, gguf, device, threads, args.new_tokens, args.repeats, batches,
                            dtypes if first else (app_precision(device) or "fp32",), references, quality=first,
                            variants=ORT_VARIANTS if first else CUDA_VARIANTS if device == "cuda" else CPU_VARIANTS,
                            exports=[Path(e) for e in args.export],
                            rounds=ROUNDS if args.rounds is None else args.rounds, adapter=adapter)
        if not first:
            carry_quality(reports[0], report)
        reports.append(report)
        machine["threads"] = report["threads"]  # clamped
        sections += [f"Machine: {machine_line(machine)}", "", *markdown(report), ""]
    text = "\n".join([f"# Language model speed ({device})", "", *summary(reports), *sections])
    print(text, end="")
    if args.json:
        write_atomic(Path(args.json), json.dumps({"machine": machine_description(device), "copy": reports[0],
                                                  "copy_by_threads": reports}, indent=2) + "\n", "the report")
    if args.md:
        write_atomic(Path(args.md), text, "the report")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["bench"].add_parser(
        "copy", help="language model speed side by side: torch, onnxruntime (fp32/fp16/int8/int4), transformers, "
        "llama.cpp: time to first token, tokens/s")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"language model or LoRA adapter in the store (default {DEFAULT_MODEL}, the app's copy "
                        "model)")
    parser.add_argument("--gguf", help="a GGUF file to measure instead of a stored model")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--dtypes", default="fp32,bf16,int8", help="torch eager precisions, comma-separated: fp32, "
                        "bf16, fp16, int8 (the last three: decoding copies of the float32 weights)")
    parser.add_argument("--no-references", action="store_true",
                        help="skip the transformers and llama.cpp rows (the onnxruntime rows measure the exports "
                        "`studio export onnx` made)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int,
                        help="alternating rounds of the default runtime, llama.cpp and the given exports, whose "
                        "within-round ratios the targets are held against (default: the bench's own; 0: none)")
    parser.add_argument("--batches", default="4,8,16",
                        help="candidates of one prompt decoded together, comma-separated (besides the single stream)")
    parser.add_argument("--threads", default="2,app",
                        help="CPU threads for every runtime, comma-separated; a table for each; 'app' is the app's "
                        "own count (default: 2,app); 0 or more than the cores is clamped, and said")
    parser.add_argument("--export", action="append", default=[], metavar="FOLDER",
                        help="an export folder to measure as it is, e.g. one an older version made (repeatable)")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--md", help="write the results as Markdown here")
    parser.set_defaults(func=run_bench)
