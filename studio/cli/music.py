"""``studio generate music`` (WAV/FLAC/OGG + MIDI, continue or vary a MIDI file) and ``studio bench music``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from studio.core.errors import BadInputError
from studio.core.safe_write import write_atomic


def _bar_span(text: str) -> tuple[int, int]:
    """'3-4' or '5' -> (first, last) bar, 1-based inclusive."""
    try:
        first, _, last = text.partition("-")
        return int(first), int(last or first)
    except ValueError:
        raise BadInputError(f"--vary {text!r}: give bars as FIRST-LAST, e.g. 3-4") from None


def _job_from_args(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(task kind, params) from the command line; a --from MIDI file supplies notes, tempo, meter and key."""
    from studio.core.formats.midi import read_midi

    params: dict[str, Any] = {"style": args.style, "key": args.key, "bpm": args.bpm, "meter": args.meter,
                              "bars": args.bars, "form": args.form, "temperature": args.temperature,
                              "top_p": args.top_p,
                              "renderer": "soundfont" if args.soundfont is not None else "synth"}
    if args.soundfont:
        params["soundfont"] = args.soundfont
    kind = "music.generate"
    if args.source:
        if (args.continue_to is None) == (args.vary is None):
            raise BadInputError("with --from, give either --continue-to BAR or --vary FIRST-LAST")
        clip = read_midi(Path(args.source))
        params.update(notes=clip.notes, bpm=args.bpm or clip.bpm, meter=args.meter or clip.meter.label)
        if clip.key is not None and not args.key:
            params["key"] = clip.key.label
        if args.continue_to is not None:
            kind = "music.continue"
            params["bars_to"] = args.continue_to
        else:
            kind = "music.vary"
            params["bars_from"], params["bars_to"] = _bar_span(args.vary)
    elif args.continue_to is not None or args.vary is not None:
        raise BadInputError("--continue-to and --vary work on an existing clip: add --from CLIP.mid")
    return kind, {k: v for k, v in params.items() if v is not None}


def run_generate(args: argparse.Namespace) -> int:
    from studio.cli.console import make_resources, run_in_console
    from studio.core.jobs import JobSpec
    from studio.core.music_export import export_audio, export_midi, export_stems

    kind, params = _job_from_args(args)
    resources = make_resources(args.device)
    spec = JobSpec(kind, params, seed=args.seed, model=args.model)
    result = run_in_console(spec, quiet=args.quiet, resources=resources)
    recipe = result["recipe"]
    if recipe["renderer"].startswith("synth ("):
        print(f"note: {recipe['renderer'][7:-1]}", file=sys.stderr)
    out = args.out
    if out is None and args.midi is None:
        out = resources.settings.resolved_output_dir / f"music-{recipe['style']}-{args.seed}.wav"
    metadata = resources.settings.write_metadata
    written = []
    if out is not None:
        written.append(export_audio(Path(out), result, metadata))
    if args.stems:
        written.extend(export_stems(Path(args.stems), result, metadata))
    if args.midi:
        written.append(export_midi(Path(args.midi), result))
    seconds = len(result["mix"]) / result["rate"]
    print(f"{recipe['style']}: {result['bars']} bars of {result['meter']} in {result['key']} at "
          f"{result['bpm']:g} bpm = {seconds:.3f} s, {recipe['lufs']:.1f} LUFS, true peak "
          f"{recipe['true_peak_dbtp']:.1f} dBTP; melody from {recipe['melody_source']}")
    for path in written:
        print(f"wrote {path}")
    return 0


# --- bench ------------------------------------------------------------------------------------------------

def loop_checks(mix: Any, expected_samples: int) -> dict[str, Any]:
    """Loop length and the wrap click: the jump from the last sample to the first against the clip's jumps."""
    import numpy as np

    jumps = np.abs(np.diff(mix, axis=0)).max(axis=1)
    wrap = float(np.abs(mix[0] - mix[-1]).max())
    return {
        "samples": len(mix),
        "expected_samples": expected_samples,
        "length_exact": len(mix) == expected_samples,
        "wrap_jump": wrap,
        "median_jump": float(np.median(jumps)),
        "p95_jump": float(np.percentile(jumps, 95)),
        "wrap_jump_percentile": float((jumps < wrap).mean() * 100),
        "wrap_click_free": wrap <= float(np.percentile(jumps, 95)),
    }


def bench_music(style: str, bars: int, bpm: float, seed: int, repeats: int, warmup: int,
                device: str | None, model: str, runtime: str | None = None) -> dict[str, Any]:
    """Median compose (melody + arrangement) and render (synth + effects + loudness) times after warm-up;
    ``runtime`` ("torch" | "onnxruntime" | "auto") overrides the setting for the music model."""
    import torch

    from studio.cli.console import make_resources
    from studio.core.context import JobContext
    from studio.core.jobs import JobSpec
    from studio.core.music_theory import clip_samples
    from studio.ml.music.arrange import arrange
    from studio.ml.tasks import music

    resources = make_resources(device)
    if runtime:
        resources.runtime = runtime
    params = {"style": style, "bars": bars, "bpm": bpm}
    spec = JobSpec("music.generate", params, seed=seed, model=model)
    ctx = JobContext(spec, lambda event: None, device=resources.device, resources=resources)
    clip = music.clip_settings(spec.params)
    source = music.melody_model(spec, ctx)
    compose_s, render_s, cpu_s = [], [], []
    rendered = None
    for run in range(warmup + repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        melody = music.new_melody(clip, source, seed + run, spec.params, ctx)
        arrangement = arrange(melody, clip.style, clip.key, clip.meter, clip.bars, seed + run)
        middle = time.perf_counter()
        rendered, _ = music.render(arrangement, clip, seed + run, spec.params, ctx)
        if resources.device == "cuda":
            torch.cuda.synchronize()
        end = time.perf_counter()
        if run >= warmup:
            compose_s.append(middle - start)
            render_s.append(end - middle)
            cpu_s.append(time.process_time() - cpu_start)
    assert rendered is not None
    seconds = clip_samples(clip.bars, clip.meter, clip.bpm, rendered.rate) / rendered.rate
    compose, render = statistics.median(compose_s), statistics.median(render_s)
    total = statistics.median(c + r for c, r in zip(compose_s, render_s, strict=True))
    return {
        "benchmark": "music",
        "clip": {"style": clip.style.name, "bars": clip.bars, "bpm": clip.bpm, "meter": clip.meter.label,
                 "key": clip.key.label, "seconds": seconds, "rate": rendered.rate},
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "device": resources.device,
                    "torch": torch.__version__, "load_average_1m": os.getloadavg()[0]},
        "repeats": repeats,
        "warmup": warmup,
        "results": [{
            "runtime": getattr(source.module, "runtime", "torch") if source.module is not None else "-",
            "melody_source": source.source,
            "compose_s_median": compose,
            "render_s_median": render,
            "total_s_median": total,
            "cpu_s_median": statistics.median(cpu_s),
            "realtime_factor": seconds / total,
            "under_2s_target": total < 2.0,
            "lufs": rendered.lufs,
            "true_peak_dbtp": rendered.true_peak_db,
            **loop_checks(rendered.mix, clip_samples(clip.bars, clip.meter, clip.bpm, rendered.rate)),
        }],
    }


def bench_markdown(report: dict[str, Any]) -> str:
    clip, machine = report["clip"], report["machine"]
    lines = [
        f"# Music benchmark: {clip['bars']} bars at {clip['bpm']:g} bpm ({clip['seconds']:.2f} s, {clip['style']})",
        "",
        f"{machine['device']} on {machine['platform']}, {machine['cpu_count']} cores, "
        f"{machine['torch_threads']} torch threads, load average {machine['load_average_1m']:.2f}; "
        f"medians of {report['repeats']} runs after {report['warmup']} warm-up. CPU time is this process's "
        "(all threads): on a machine busy with other work it is steadier than wall time.",
        "",
        "| runtime | melody | compose (s) | render (s) | total (s) | CPU time (s) | real-time factor | "
        "length exact | wrap jump / p95 jump | LUFS | true peak (dBTP) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['runtime']} | {r['melody_source']} | {r['compose_s_median']:.3f} | {r['render_s_median']:.3f} | "
            f"{r['total_s_median']:.3f} | {r['cpu_s_median']:.3f} | {r['realtime_factor']:.1f}x | "
            f"{r['length_exact']} | "
            f"{r['wrap_jump']:.4f} / {r['p95_jump']:.4f} | {r['lufs']:.2f} | {r['true_peak_dbtp']:.2f} |")
    return "\n".join(lines) + "\n"


def run_bench(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {}
    for runtime in args.runtimes.split(","):
        part = bench_music(args.style, args.bars, args.bpm, args.seed, args.repeats, args.warmup, args.device,
                           args.model, runtime.strip())
        report = {**part, "results": report.get("results", []) + part["results"]}
    markdown = bench_markdown(report)
    if args.json:
        write_atomic(Path(args.json), json.dumps(report, indent=2) + "\n", "the benchmark results")
    if args.md:
        write_atomic(Path(args.md), markdown, "the benchmark results")
    print(markdown, end="")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["generate"].add_parser(
        "music", help="a music loop: melody, chords, bass and drums as WAV/FLAC/OGG and MIDI",
        description="Compose and render a seamless music loop. Missing key/bpm/meter/bars come from the style.")
    parser.add_argument("--style", default="chiptune-adventure", help="style preset (a prefix is enough)")
    parser.add_argument("--key", default=None, help="e.g. 'A minor', 'F# major', 'Bb minor'")
    parser.add_argument("--bpm", type=float, default=None, help="tempo in quarter notes per minute (20-300)")
    parser.add_argument("--meter", default=None, help="time signature, e.g. 4/4, 3/4, 6/8")
    parser.add_argument("--bars", type=int, default=None, help="clip length in bars (1-128)")
    parser.add_argument("--form", choices=("period", "through"), default=None,
                        help="melody form (default: the style's): period restates the opening, through does not")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="", help="music model name; 'rules' for the rule-based melody")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--out", default=None, help="audio file (.wav, .flac or .ogg)")
    parser.add_argument("--midi", default=None, help="also write a type-1 MIDI file (a track per part)")
    parser.add_argument("--stems", default=None, metavar="DIR", help="also write each part as DIR/PART.wav")
    parser.add_argument("--from", dest="source", default=None, metavar="CLIP.mid",
                        help="an existing clip to continue (--continue-to) or vary (--vary)")
    parser.add_argument("--continue-to", type=int, default=None, metavar="BAR",
                        help="continue the --from clip up to this bar")
    parser.add_argument("--vary", default=None, metavar="FIRST-LAST", help="regenerate these bars of --from")
    parser.add_argument("--soundfont", nargs="?", const="", default=None, metavar="SF2",
                        help="render General MIDI through a SoundFont (midirenderer); without a path, search "
                             "the usual places. Missing pieces are reported and the synth is used")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run_generate)

    bench = groups["bench"].add_parser("music", help="time composing and rendering a clip (median after warm-up)")
    bench.add_argument("--style", default="chiptune-adventure")
    bench.add_argument("--bars", type=int, default=8)
    bench.add_argument("--bpm", type=float, default=120.0)
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--warmup", type=int, default=1)
    bench.add_argument("--model", default="", help="music model; 'rules' for the rule-based melody")
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    bench.add_argument("--runtimes", default="torch,onnxruntime",
                       help="comma-separated runtimes for the music model, one row each (torch, onnxruntime, auto)")
    bench.add_argument("--json", default=None, help="write the results as JSON here")
    bench.add_argument("--md", default=None, help="write the results as a Markdown table here")
    bench.set_defaults(func=run_bench)
