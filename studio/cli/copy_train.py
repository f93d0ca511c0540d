"""``studio train copy``: a LoRA brand voice from your own lines of copy, pausable and resumable.

    studio train copy --data our-lines.txt --name brand-voice --preset quick
    studio train copy --data our-lines.txt --name brand-voice --resume     # after Ctrl+C (a pause)
    studio train copy --debian debian-blurbs.jsonl --name copy-lora-debian
    studio train copy --self-train --briefs resources/briefs/dev --debian debian-blurbs.jsonl --name copy-ads \
        --rounds 2 --workers 14 --device cuda      # teach the model the job on its own best lines (RFT)
    studio train copy --self-train ... --journal practice.jsonl --write-only   # write practice ads only, resumable;
    studio train copy --self-train ... --journal practice.jsonl --rounds 1     # later: train on them (and more)

With ``--events`` it prints one JSON event per line: the app's Train workspace runs it that way.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from studio.core.modalities.copy import BASE_LANGUAGE_MODEL


def run_self_train(args: argparse.Namespace) -> int:
    """Rejection-sampling fine-tuning: the adapter (+ card) and the lines it was trained on."""
    import os
    import time

    from studio.cli.console import make_resources
    from studio.cli.train_runner import run_trainer
    from studio.core import paths
    from studio.ml.device import describe_device
    from studio.ml.model_import import check_name
    from studio.ml.tasks.copy import load_copy_model
    from studio.ml.train.copy_selftrain import (
        PracticeSources,
        SelfTrainConfig,
        collect,
        device_threads,
        practice_ads,
        practice_briefs,
        round_ads,
        save_kept,
        self_train,
        split_by_product,
    )
    from studio.ml.train.lora import LoRAConfig, save_adapter
    from studio.ml.train.model_card import write_model_card
    from studio.ml.train.music import git_commit

    name = check_name(args.name or "my-copy-ads")  # not the bundled default's name: a user model would shadow it
    rank = args.rank or 8
    config = SelfTrainConfig(rounds=args.rounds, ads_per_round=args.ads, candidates=args.candidates,
                             workers=args.workers or max(1, device_threads() - 1), minutes=args.minutes,
                             seed=args.seed, lora=LoRAConfig(rank=rank, alpha=2.0 * rank), epochs=args.epochs or 3,
                             batch=args.batch, lr=args.lr or 3e-4, max_steps=args.max_steps,
                             journal=Path(args.journal) if args.journal else None)
    sources = PracticeSources(Path(args.briefs) if args.briefs else None, args.variations,
                              Path(args.debian) if args.debian else None, args.debian_briefs)
    out = Path(args.out) if args.out else paths.user_models_dir() / f"{name}.safetensors"
    outcome: dict = {}

    def trainer(on_event, cancel) -> dict:
        began = time.time()
        briefs, recipe = practice_briefs(sources, args.seed)
        train_ads, held_ads = split_by_product(practice_ads(briefs, args.seed), seed=args.seed)
        on_event({"event": "info", "message": f"{len(briefs)} practice briefs: {len(train_ads)} ads to train on, "
                                              f"{len(held_ads)} held out"})
        if args.write_only:
            ads = round_ads(train_ads, held_ads, config, 0)
            deadline = began + args.minutes * 60 if args.minutes else 1e12
            found = collect(args.base, None, ads, config.workers, config.candidates, 0, deadline, on_event,
                            config.journal, cancel)
            outcome.update({"lines": len(found), "journal": str(config.journal)})
            return outcome
        lm = load_copy_model(make_resources(args.device), args.base, runtime="torch")
        work = out.with_name(f"{out.stem}-rounds")
        work.mkdir(parents=True, exist_ok=True)
        done = self_train(lm, args.base, train_ads, held_ads, config, work, on_event, cancel)
        result = done.result
        kept_path = out.with_name(f"{out.stem}-lines.jsonl")
        save_kept(kept_path, done.kept)
        metrics = {"held_out_perplexity_before": result.perplexity_before,
                   "held_out_perplexity_after": result.perplexity_after, "train_lines": result.train_lines,
                   "validation_lines": result.validation_lines, "held_out_lines": result.held_out_lines,
                   "validation_perplexity": result.validation_perplexity}
        training = {"kind": "rejection-sampling fine-tuning on the model's own best lines",
                    "command": shlex.join(["studio", *sys.argv[1:]]), "commit": os.environ.get("STUDIO_COMMIT")
                    or git_commit(), "hardware": describe_device(lm.device.type), "device": str(lm.device),
                    "seconds": round(time.time() - began), "workers": config.workers, "seed": args.seed,
                    "rounds": done.rounds, "practice": recipe, "lr": config.lr, "epochs": config.epochs,
                    "max_steps": config.max_steps,
                    "batch": config.batch, "candidates": config.candidates, "data": kept_path.name}
        path = save_adapter(out, result.model, config.lora, {
            "name": name, "base_model": lm.name, "base_sha256": lm.sha256, "rank": rank,
            "targets": list(config.lora.targets), "metrics": metrics, "training": training})
        card = write_model_card(path, args.licence)
        outcome.update({"model": name, "model_path": str(path), "card": str(card), "metrics": metrics,
                        "lines": str(kept_path)})
        return outcome

    code = run_trainer(trainer, args.events)
    if code == 0 and not args.events and args.write_only:
        print(f"{outcome['lines']} lines kept so far in {outcome['journal']}")
    elif code == 0 and not args.events:
        metrics = outcome["metrics"]
        print(f"held-out perplexity: {metrics['held_out_perplexity_before']:.2f} before, "
              f"{metrics['held_out_perplexity_after']:.2f} after ({metrics['held_out_lines']} lines)")
        print(f"saved adapter {outcome['model']!r} to {outcome['model_path']}; card {outcome['card']}; "
              f"lines {outcome['lines']}")
    return code


def run_train(args: argparse.Namespace) -> int:
    if args.self_train:
        if args.data or not (args.briefs or args.debian):
            raise SystemExit("studio train copy --self-train: give --briefs FOLDER and/or --debian CORPUS (not --data)")
        if args.write_only and not args.journal:
            raise SystemExit("studio train copy --self-train --write-only: give --journal FILE to keep the ads in")
        return run_self_train(args)
    if bool(args.data) == bool(args.debian) or args.briefs:
        raise SystemExit("studio train copy: give either --data (your lines) or --debian (the blurb corpus)")
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
    p.add_argument("--data", help="TXT (one example per line) or CSV (one per row)")
    p.add_argument("--debian", help="the corpus of `studio data copy` (product blurbs; with --self-train, packages "
                                    "as practice briefs)")
    p.add_argument("--briefs", help="--self-train: a folder of briefs to practise on, varied")
    selftrain = p.add_argument_group("self-training (--self-train): the model writes ads for practice briefs, the "
                                     "best lines that pass every check are kept, an adapter learns them; repeated")
    selftrain.add_argument("--self-train", action="store_true", help="teach the model the copywriting job (RFT)")
    selftrain.add_argument("--rounds", type=int, default=2, help="write-keep-train rounds")
    selftrain.add_argument("--ads", type=int, default=400, help="practice ads written per round")
    selftrain.add_argument("--candidates", type=int, default=6, help="candidates per slot while practising")
    selftrain.add_argument("--workers", type=int, default=0, help="writing processes (default: the cores less one)")
    selftrain.add_argument("--minutes", type=float, default=0.0, help="stop writing in time to finish within this")
    selftrain.add_argument("--variations", type=int, default=600, help="variations of the --briefs briefs")
    selftrain.add_argument("--debian-briefs", type=int, default=600, help="briefs made from Debian packages")
    selftrain.add_argument("--batch", type=int, default=16, help="training batch")
    selftrain.add_argument("--journal", help="the first round's written ads: kept as each is written, and ads "
                                             "already in it are not written again (resume after a stop)")
    selftrain.add_argument("--write-only", action="store_true", help="write practice ads into --journal, no training")
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
