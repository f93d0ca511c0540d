"""``studio bench copy``: language-model speed (load, time to first token, tokens/s) written as JSON/Markdown."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studio.core.defaults import BASE_LANGUAGE_MODEL
from studio.core.errors import BadInputError
from studio.core.safe_write import write_atomic

DEFAULT_LM = BASE_LANGUAGE_MODEL


def _model_path(args: argparse.Namespace) -> Path:
    if args.gguf:
        return Path(args.gguf)
    from studio.ml.store import ModelStore

    entry = ModelStore().find(args.model)
    if entry.arch != "llama":
        raise BadInputError(f"{args.model!r} is not a language model")
    return entry.weights


def run_bench(args: argparse.Namespace) -> int:
    from studio.ml.bench.copy import bench_copy, markdown
    from studio.ml.bench.timing import machine_description, machine_line
    from studio.ml.device import resolve_device

    device = resolve_device(args.device)
    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip()) or ("fp32",)
    report = bench_copy(args.model, _model_path(args), device, args.threads, args.new_tokens, args.repeats,
                        args.variants, dtypes, references=not args.no_references)
    machine = machine_description(device, report["threads"])
    text = "\n".join([f"# Language model speed ({device})", "", f"Machine: {machine_line(machine)}", "",
                      *markdown(report)]) + "\n"
    print(text, end="")
    if args.json:
        write_atomic(Path(args.json), json.dumps({"machine": machine, "copy": report}, indent=2) + "\n", "the report")
    if args.md:
        write_atomic(Path(args.md), text, "the report")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["bench"].add_parser(
        "copy", help="language model speed side by side: torch, onnxruntime (fp32/fp16/int8/int4), transformers, "
        "llama.cpp: time to first token, tokens/s")
    parser.add_argument("--model", default=DEFAULT_LM, help=f"model name in the store (default {DEFAULT_LM})")
    parser.add_argument("--gguf", help="a GGUF file to measure instead of a stored model")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--dtypes", default="fp32,bf16,int8", help="torch eager precisions, comma-separated: fp32, "
                        "bf16, fp16, int8 (the last three: decoding copies of the float32 weights)")
    parser.add_argument("--no-references", action="store_true",
                        help="skip the transformers and llama.cpp rows (the onnxruntime rows measure the exports "
                        "`studio export onnx` made)")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", type=int, default=3, help="batch size for the batched-variants figure")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every runtime (default: torch's own)")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--md", help="write the results as Markdown here")
    parser.set_defaults(func=run_bench)
