"""``studio data music``, ``train music`` and ``eval music``: the melody model's data, training and metrics."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def default_data_dir() -> Path:
    from studio.core.paths import data_dir

    return data_dir() / "datasets" / "music"


class _ParseProgress:
    """One status line, redrawn at most twice a second."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, done: int, total: int, cached: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.5 and done < total:
            return
        self._last = now
        sys.stderr.write(f"\rparsing tunes: {done}/{total} ({cached} from cache)   ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_data(args: argparse.Namespace) -> int:
    from studio.ml.data.music import build_dataset
    from studio.ml.data.music_corpus import SOURCES

    sources = () if args.no_corpus else tuple(args.sources or SOURCES)
    started = time.monotonic()
    out = Path(args.out) if args.out else default_data_dir()
    manifest = build_dataset(
        out, sources, [Path(p) for p in args.extra], workers=args.workers, on_progress=_ParseProgress()
    )
    for split, summary in manifest["splits"].items():
        print(f"{split:<5} {summary['tunes']:5d} tunes  {summary['sequences']:5d} sequences  "
              f"{summary['bars']:6d} bars  {summary['notes']:7d} notes  {summary['by_source']}")
    for source, counts in manifest["parsed"].items():
        print(f"parsed {source:<13} {counts.get('items', 0):5d} items, {counts.get('failed', 0)} failed")
    print(f"wrote {out}/{{train,val}}.npz and manifest.json in {time.monotonic() - started:.0f}s")
    return 0


def _train_progress(step: int, steps: int, metrics: dict[str, float]) -> None:
    if "val_nll" in metrics or step == 1 or step % 10 == 0:
        val = f"  val_nll {metrics['val_nll']:.4f}" if "val_nll" in metrics else ""
        end = "\n" if val else ""
        sys.stderr.write(f"\r{metrics['progress'] * 100:5.1f}%  step {step}  loss {metrics['loss']:.4f}  "
                         f"lr {metrics['lr']:.2e}{val}   {end}")
        sys.stderr.flush()


def run_train(args: argparse.Namespace) -> int:
    from studio.ml.device import resolve_device
    from studio.ml.train.music import TrainOptions, train

    data = Path(args.data) if args.data else default_data_dir()
    options = TrainOptions(
        data=data, preset=args.preset, max_steps=args.max_steps, max_minutes=args.max_minutes, name=args.name,
        resume=args.resume,
        out_dir=Path(args.out) if args.out else None, seed=args.seed, device=resolve_device(args.device),
        init_from=Path(args.init) if args.init else None, threads=args.threads,
    )
    path = train(options, on_progress=_train_progress)
    if path is not None:
        print(f"wrote {path}")
    return 0


def _load(name: str, device: str):
    """A model by store name, or a .safetensors path."""
    from studio.ml.checkpoint import load_model
    from studio.ml.store import ModelStore

    if name.endswith(".safetensors"):
        return load_model(Path(name), expect_arch="music-transformer", device=device)[0]
    store = ModelStore()
    entry = store.find(name)
    store.verify(entry)
    return load_model(entry.weights, expect_arch="music-transformer", device=device)[0]


def run_eval(args: argparse.Namespace) -> int:
    from studio.ml.data.music import MusicData
    from studio.ml.device import resolve_device
    from studio.ml.eval.music_metrics import evaluate

    device = resolve_device(args.device)
    data = Path(args.data) if args.data else default_data_dir()
    model = _load(args.model, device)
    metrics = evaluate(
        model, MusicData.load(data, "train"), MusicData.load(data, "val"), samples=args.samples, seed=args.seed,
        device=device,
    )
    for key, value in metrics.items():
        print(f"{key:<28} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["data"].add_parser(
        "music", help="build the melody training set from music21's public-domain tunes (needs music21)"
    )
    parser.add_argument("--out", default=None, help="output folder (default: datasets/music in Studio's data)")
    parser.add_argument("--sources", nargs="*", help="oneills1850, ryansMammoth and/or bach (default: all three)")
    parser.add_argument("--extra", nargs="*", default=[], help="your own .mid/.abc files to add (fine-tuning)")
    parser.add_argument("--no-corpus", action="store_true", help="build from --extra files only")
    parser.add_argument("--workers", type=int, default=2, help="parser processes (1 or 2)")
    parser.set_defaults(func=run_data)

    parser = groups["train"].add_parser("music", help="train the melody Transformer (torchrun-ready)")
    parser.add_argument("--data", help="folder from `studio data music` (default: datasets/music)")
    parser.add_argument("--preset", choices=("quick", "balanced", "best"), default="balanced")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (default: the preset's)")
    parser.add_argument("--max-minutes", type=float, help="or stop after this much training time (resumes count)")
    parser.add_argument("--name", default="music-transformer", help="model name (file NAME.safetensors)")
    parser.add_argument("--out", help="folder for the model file (default: your model folder)")
    parser.add_argument("--resume", action="store_true", help="continue the run NAME from its last checkpoint")
    parser.add_argument("--init", help="fine-tune: start from this .safetensors model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    parser.set_defaults(func=run_train)

    parser = groups["eval"].add_parser("music", help="likelihood and statistics of a melody model")
    parser.add_argument("--model", default="music-transformer", help="model name or .safetensors path")
    parser.add_argument("--data", help="folder from `studio data music` (default: datasets/music)")
    parser.add_argument("--samples", type=int, default=32, help="clips to generate for the statistics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    parser.set_defaults(func=run_eval)
