"""``studio export onnx MODEL [--fp16] [--int8|--int4] [--out DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path


def run_export(args: argparse.Namespace) -> int:
    from studio.ml.export.pipeline import export_model
    from studio.ml.runtime.exports import has_export

    variant = "fp16" if args.fp16 else "int8" if args.int8 else "int4" if args.int4 else "fp32"
    names = args.models
    if names == ["all"]:
        from studio.ml import registry
        from studio.ml.store import ModelStore

        exportable = {a.name for a in registry.all_architectures() if a.onnx} - {"sprite-encoder"}
        names = [e.name for e in ModelStore().entries() if e.arch in exportable]  # not adapters (llama-lora)
    for name in names:
        if args.if_missing and not args.out and has_export(name, variant):
            print(f"{name} [{variant}]: already exported from these weights")
            continue
        record = export_model(name, variant, Path(args.out) / name if args.out else None,
                              heldout=Path(args.heldout) if args.heldout else None)
        for graph, info in record.graphs.items():
            print(f"{name}/{graph} [{variant}] -> {record.folder / info['file']}  "
                  f"{info['size_bytes'] / 1e6:.2f} MB  max abs error {info['max_abs_error']:.2g}")
        quality = record.extra.get("quality")
        if quality:
            print(f"{name} [{variant}]: held-out perplexity {quality['perplexity']:.3f} vs fp32 "
                  f"{quality['perplexity_fp32']:.3f} (x{quality['perplexity_ratio']:.4f}, {quality['text']}); "
                  f"greedy tokens agreeing with fp32: {quality['greedy_agreement']}")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["export"].add_parser("onnx", help="export models to validated, optimised ONNX")
    parser.add_argument("models", nargs="+", help="model names (see `studio models list`), or `all`")
    quant = parser.add_mutually_exclusive_group()
    quant.add_argument("--fp16", action="store_true", help="fp16 weights and activations (CUDA)")
    quant.add_argument("--int8", action="store_true", help="dynamic int8 weights (CPU)")
    quant.add_argument("--int4", action="store_true", help="4-bit weight-only MatMulNBits (CPU, language models)")
    parser.add_argument("--out", default=None, help="output folder (default: the user model folder)")
    parser.add_argument("--if-missing", action="store_true",
                        help="skip models whose export of their current weights is already there (set-up uses it)")
    parser.add_argument("--heldout", default=None, metavar="JSONL",
                        help="package-description corpus (`studio data copy`) for a quantised language model's "
                        "held-out perplexity (default: one under the data folder, else built-in text)")
    parser.set_defaults(func=run_export)
