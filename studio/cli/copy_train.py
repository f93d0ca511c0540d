"""``studio train copy``: a LoRA brand voice from your own lines of copy, pausable and resumable.

    studio train copy --data our-lines.txt --name brand-voice --preset quick
    studio train copy --data our-lines.txt --name brand-voice --resume     # after Ctrl+C (a pause)
    studio train copy --debian debian-blurbs.jsonl --name copy-lora-debian

With ``--events`` it prints one JSON event per line: the app's Train workspace runs it that way.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from studio.core.defaults import BASE_LANGUAGE_MODEL


def run_train(args: argparse.Namespace) -> int:
    from studio.cli.console import make_resources
    from studio.cli.train_runner import run_trainer
    from studio.ml.model_import import check_name
    from studio.ml.tasks.copy import load_copy_model
    from studio.ml.train.copy_run import CopyTrainConfig, train_copy

    source = Path(args.data or args.debian)
    config = CopyTrainConfig(
        name=check_name(args.name or f"copy-lora-{source.stem}"),
        data=Path(args.data) if args.data else None, debian=Path(args.debian) if args.debian else None,
        preset=args.preset, max_steps=args.max_steps, epochs=args.epochs, rank=args.rank, lr=args.lr,
        lines_per_example=args.lines_per_example, held_out=args.held_out, samples=args.samples,
        held_out_count=args.held_out_count, seed=args.seed, licence=args.licence,
        command=shlex.join(["studio", *sys.argv[1:]]), out=Path(args.out) if args.out else None,
        resume=args.resume,
    )
    outcome: dict = {}

    def trainer(on_event, cancel) -> dict:
        on_event({"event": "info", "message": f"loading the base model {args.base}"})
        lm = load_copy_model(make_resources(args.device), args.base, runtime="torch")
        outcome.update(train_copy(lm, config, on_event, cancel))
        return outcome

    code = run_trainer(trainer, args.events)
    if code == 0 and not args.events:
        metrics = outcome["metrics"]
        print(f"held-out perplexity: {metrics['perplexity_before']:.2f} before, {metrics['perplexity_after']:.2f} "
              f"after ({metrics['held_out_lines']} lines)")
        print(f"saved adapter {outcome['model']!r} to {outcome['model_path']}; card {outcome['card']}")
    return code


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    p = groups["train"].add_parser("copy", help="LoRA brand voice from your own lines of copy (TXT or CSV)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="TXT (one example per line) or CSV (one per row)")
    source.add_argument("--debian", help="the corpus of `studio data copy` (product blurbs)")
    p.add_argument("--samples", type=int, default=2000, help="--debian: blurbs to train on")
    p.add_argument("--held-out-count", type=int, default=200, help="--debian: blurbs held out to measure")
    p.add_argument("--name", help="model name (default copy-lora-<file name>)")
    p.add_argument("--base", default=BASE_LANGUAGE_MODEL, help="base language model (a name in the model store)")
    p.add_argument("--out", help="adapter path (default: the user model folder)")
    p.add_argument("--preset", choices=("quick", "balanced", "best"), default="balanced",
                   help="quick: 2 epochs, rank 4; balanced: 8 epochs, rank 8; best: 16 epochs, rank 16")
    p.add_argument("--rank", type=int, default=None, help="LoRA rank (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    p.add_argument("--epochs", type=int, default=None,
                   help="at most (default: the preset's); stops early when validation lines stop improving")
    p.add_argument("--max-steps", "--steps", dest="max_steps", type=int, default=0,
                   help="stop after this many steps (0 = no limit)")
    p.add_argument("--lines-per-example", type=int, default=4)
    p.add_argument("--held-out", type=float, default=0.2, help="fraction of lines kept aside to measure")
    p.add_argument("--licence", default="", help="the licence of your lines, recorded in the model card")
    p.add_argument("--resume", action="store_true", help="continue the run NAME from its last checkpoint")
    p.add_argument("--events", action="store_true", help="print one JSON event per line (for the app)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.set_defaults(func=run_train)
