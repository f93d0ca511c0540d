"""``studio bench all``: sprites, copy and music side by side in one run, one JSON and one Markdown file.

Each part is also its own command (``studio bench sprite|copy|music``); this one runs them in turn on the same
machine state and puts the ratios against the issue's targets at the top. A music model that is not installed is
measured as an untrained stand-in of the default size, in a throw-away Studio home so nothing is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import ModelFileError
from studio.core.safe_write import write_atomic

MUSIC_MODEL = "music-transformer"


@contextlib.contextmanager
def throwaway_home() -> Iterator[Path]:
    """Point STUDIO_HOME at a temporary folder for the duration (stand-in models and their exports)."""
    previous = os.environ.get("STUDIO_HOME")
    with tempfile.TemporaryDirectory(prefix="studio-bench-home-") as home:
        os.environ["STUDIO_HOME"] = home
        try:
            yield Path(home)
        finally:
            if previous is None:
                os.environ.pop("STUDIO_HOME", None)
            else:
                os.environ["STUDIO_HOME"] = previous


def _save_music_stand_in() -> None:
    import torch

    from studio.ml.checkpoint import save_model
    from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig

    torch.manual_seed(0)
    config = MusicTransformerConfig()
    save_model(MusicTransformer(config).eval(), "music-transformer", config,
               paths.user_models_dir() / "music" / "stand-in.safetensors",
               {"name": MUSIC_MODEL, "modality": "music", "family": "transformer"})


def bench_music_runtimes(device: str, repeats: int, warmup: int, bars: int = 8) -> dict[str, Any]:
    """The 8-bar clip with the music model on torch and on onnxruntime; real-time factor ratio."""
    import torch

    from studio.cli.music import bench_music
    from studio.ml.store import ModelStore

    threads = torch.get_num_threads()
    try:
        ModelStore().find(MUSIC_MODEL)
        weights, home = "installed", contextlib.nullcontext()
    except ModelFileError:
        weights, home = "untrained stand-in (speed only)", throwaway_home()
    report: dict[str, Any] = {}
    with home:
        if weights != "installed":
            _save_music_stand_in()
        for runtime in ("torch", "onnxruntime"):
            part = bench_music("chiptune-adventure", bars, 120.0, 0, repeats, warmup, device, MUSIC_MODEL, runtime)
            report = {**part, "results": report.get("results", []) + part["results"]}
    torch.set_num_threads(threads)  # the music resources set their own thread count
    rtf = {r["runtime"]: r["realtime_factor"] for r in report["results"]}
    ratio = rtf["onnxruntime"] / rtf["torch"] if rtf.get("torch") and rtf.get("onnxruntime") else None
    report["weights"] = weights
    report["ratio_onnxruntime_vs_torch"] = None if ratio is None else round(ratio, 2)
    return report


def _music_markdown(report: dict[str, Any]) -> list[str]:
    from studio.cli.music import bench_markdown

    lines = bench_markdown(report).rstrip("\n").splitlines()
    lines[0] = lines[0].replace("# Music benchmark", "## Music", 1)
    ratio = report["ratio_onnxruntime_vs_torch"]
    lines += ["", f"Music model weights: {report['weights']}. Real-time factor onnxruntime / torch: "
              f"{'-' if ratio is None else f'{ratio:.2f}x'} (no target set; the melody model is a small part of the "
              "clip's time, the rendering is the same on both)."]
    return lines


def _summary(report: dict[str, Any]) -> list[str]:
    lines = ["## Targets (ratios from this run)", "", "| target | measured | wanted | met |", "|---|---:|---:|---|"]

    def add(label: str, ratio: float | None, target: float, met: bool | None) -> None:
        measured = "-" if ratio is None else f"{ratio:.2f}x"
        verdict = "not measured" if met is None else ("yes" if met else "NO")
        lines.append(f"| {label} | {measured} | {target:.1f}x | {verdict} |")

    for model, t in report.get("sprites", {}).get("targets", {}).items():
        add(f"sprites: {model} 16-grid, onnxruntime vs torch eager", t["ratio"], t["target"], t["met"])
    copy = report.get("copy")
    if copy:
        for key, t in copy["ratios"].items():
            if isinstance(t, dict):
                add(f"copy: {key.replace('_', ' ')} (decode tok/s)", t["ratio"], t["target"], t["met"])
        for row in copy["rows"]:
            if row["runtime"] == "onnxruntime" and row.get("perplexity_ratio"):
                ratio = row["perplexity_ratio"]
                lines.append(f"| copy: {row['precision']} held-out perplexity vs fp32 | x{ratio:.4f} | <= x1.05 | "
                             f"{'yes' if ratio <= 1.05 else 'NO'} |")
    return lines


def run_all(args: argparse.Namespace) -> int:
    import torch

    from studio.cli.copy_lm import DEFAULT_MODEL, model_files
    from studio.ml.bench import copy as copy_bench
    from studio.ml.bench import sprites as sprite_bench
    from studio.ml.bench.timing import machine_description, machine_line
    from studio.ml.device import resolve_device

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_description(device, torch.get_num_threads())
    report: dict[str, Any] = {"machine": machine}
    report["sprites"] = sprite_bench.bench_sprites(device=device, repeats=args.repeats, warmup=args.warmup,
                                                   compile_=not args.no_compile)
    sections = [sprite_bench.markdown(report["sprites"])]
    try:
        gguf, adapter = model_files(DEFAULT_MODEL)
    except ModelFileError as exc:
        sections.append(["## Copy", "", f"not measured: {exc}"])
    else:
        report["copy"] = copy_bench.bench_copy(DEFAULT_MODEL, gguf, device, repeats=args.repeats,
                                               new_tokens=args.new_tokens, adapter=adapter)
        sections.append(copy_bench.markdown(report["copy"]))
    report["music"] = bench_music_runtimes(device, max(1, args.repeats // 2), args.warmup)
    sections.append(_music_markdown(report["music"]))
    cuda_note = [] if device == "cuda" else [
        "GPU targets are not measured here (no GPU); `--device cuda` runs the same benchmark with the CUDA provider "
        "and IO binding where onnxruntime has it (a CPU-only onnxruntime falls back to its CPU provider and says so)."]
    lines = [f"# Studio benchmark ({device})", "", f"Machine: {machine_line(machine)}", "", *cuda_note, "",
             *_summary(report)]
    for section in sections:
        lines += ["", *section]
    text = "\n".join(lines) + "\n"
    stamp = time.strftime("%Y-%m-%d")
    results = paths.repo_root() / "bench" / "results"
    json_path = Path(args.json) if args.json else results / f"{stamp}-{device}.json"
    md_path = Path(args.md) if args.md else results / f"{stamp}-{device}.md"
    write_atomic(json_path, json.dumps(report, indent=2, default=str) + "\n", "the benchmark results")
    write_atomic(md_path, text, "the benchmark results")
    print(text, end="")
    print(f"wrote {json_path} and {md_path}")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["bench"].add_parser(
        "all", help="sprites, copy and music side by side in one run (one JSON + one Markdown)",
        description="Warm-up, repeated runs, medians and IQR; ratios against the targets at the top. Default output: "
        "bench/results/DATE-DEVICE.json and .md in the source tree.")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens decoded per language-model run")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every runtime (default: torch's)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (slow to compile)")
    parser.add_argument("--json", default=None, help="JSON results file")
    parser.add_argument("--md", default=None, help="Markdown results file")
    parser.set_defaults(func=run_all)
