"""``studio train sprite``, ``studio generate sprite`` and ``studio bench sprite``."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from studio.core.errors import BadInputError
from studio.core.formats.json_file import parse_json
from studio.core.safe_write import write_atomic

SHORT_NAMES = {"gan": "sprite-gan", "vae": "sprite-vae", "diffusion": "sprite-diffusion"}


def model_name(value: str) -> str:
    """``gan``/``vae``/``diffusion`` stand for the bundled models; any other value is a model name."""
    return SHORT_NAMES.get(value, value)


def start_from(value: str | None, family: str, users_data: bool, scratch: bool) -> Path | None:
    """The model file a run fine-tunes: ``value`` (a model name, gan/vae/diffusion, or a .safetensors path); by
    default the bundled model of the family for the user's own sprites (few of them train badly from nothing) and
    nothing for a data set built with `studio data sprites`."""
    from studio.ml.store import ModelStore

    if scratch:
        if value:
            raise BadInputError("--init and --scratch contradict each other: give one")
        return None
    if value is None and not users_data:
        return None
    return ModelStore().weights_for(value or SHORT_NAMES[family])


def run_train(args: argparse.Namespace) -> int:
    from studio.cli.train_runner import run_trainer
    from studio.ml.data.prepare import is_dataset, prepare_sprite_data
    from studio.ml.train import distributed
    from studio.ml.train.model_card import write_model_card
    from studio.ml.train.sprite import SpriteTrainConfig, train_sprite

    command = shlex.join(["studio", *sys.argv[1:]])
    source = Path(args.data).expanduser()
    config = SpriteTrainConfig(
        family=args.model,
        data=prepare_sprite_data(source, args.grid, command),
        init_from=start_from(args.init, args.model, not is_dataset(source), args.scratch),
        run_dir=Path(args.out) if args.out else None,
        preset=args.preset,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        name=args.name,
        device=args.device,
        sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        model=dict(args.set or []),
        threads=args.threads,
        command=command,
        max_minutes=args.minutes,
        workers=args.workers,
    )

    outcome: dict = {}

    def train(on_event, cancel) -> dict:
        result = train_sprite(config, on_event, cancel)
        outcome.update({k: str(v) if isinstance(v, Path) else v for k, v in asdict(result).items()})
        if result.registered_path is not None:
            samples = sorted((result.model_path.parent / "samples").glob("*.png"))
            card = write_model_card(result.registered_path, args.licence, samples[-1] if samples else None)
            outcome.update(model=args.name, card=str(card))
            outcome.update(_evaluate(args.name, config.data, card, result.model_path.parent, on_event))
        return outcome

    if not distributed.env_info().is_main:  # other torchrun ranks train silently; rank 0 reports
        return _train_quietly(train)
    code = run_trainer(train, events=args.events)
    if code == 0 and not args.events:
        print(f"model: {outcome['model_path']} ({outcome['steps']} steps, {outcome['wall_s']:.0f} s)")
        if outcome["registered_path"]:
            print(f"registered as {args.name}: {outcome['registered_path']}")
        for key, value in outcome["metrics"].items():
            print(f"  {key}: {value:.4g}")
    return code


def _evaluate(name: str, data: Path, card: Path, run_dir: Path, on_event) -> dict:
    """Evaluate the finished model against its training sprites (realism, diversity, memorisation) into its card;
    a failure is reported, never fatal: the model is already saved."""
    from studio.cli.eval_sprite import FINISH_EVAL_COUNT, evaluate_trained_model
    from studio.core.errors import StudioError

    on_event({"event": "info", "message": f"evaluating {name}: {FINISH_EVAL_COUNT} samples against your sprites"})
    try:
        report = evaluate_trained_model(name, data, card, run_dir / "evaluation.json", None)
    except StudioError as exc:
        on_event({"event": "info", "message": f"{name} was not evaluated: {exc}"})
        return {}
    model = report["model"]
    summary = {"fid": round(model["fid"], 3), "near_copy_fraction": model["memorisation"]["near_copy_fraction"],
               "diversity_feature_cosine": round(model["diversity_feature_cosine"], 4)}
    reference = f" (validation split {report['baseline']['fid']:.2f})" if report.get("baseline") else ""
    on_event({"event": "info", "message": f"{name}: FID {summary['fid']:.2f} against your sprites{reference}, "
              f"{summary['near_copy_fraction']:.1%} near copies"})
    return {"evaluation": summary}


def _train_quietly(train) -> int:
    from studio.cli.train_runner import PAUSED_EXIT_CODE
    from studio.core.cancel import CancelToken, JobCancelled

    token = CancelToken()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: token.cancel())
    try:
        train(lambda event: None, token)
    except JobCancelled:
        return PAUSED_EXIT_CODE
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from studio.cli.console import run_in_console
    from studio.core.formats.png_meta import save_png
    from studio.core.jobs import JobSpec
    from studio.core.settings import load_settings

    params = {"category": args.category, "prompt": args.prompt, "count": args.count, "palette": args.palette,
              "steps": args.steps, "guidance": args.guidance, "tile": args.tile,
              "finish": {"enabled": not args.raw, "outline": args.outline}}
    spec = JobSpec("sprite.generate", params, seed=args.seed, model=model_name(args.model))
    sprites = run_in_console(spec, device=args.device, quiet=args.quiet)
    out = Path(args.out)
    write_metadata = load_settings().write_metadata and not args.no_metadata
    for sprite in sprites:
        recipe = sprite["recipe"]
        words = "-".join(recipe["params"]["tags"][:3]) or recipe["params"]["category"]
        path = out / f"{recipe['model']}-{words}-{recipe['seed']}.png"
        save_png(path, sprite["rgba"], recipe, write_metadata=write_metadata)
    print(f"wrote {len(sprites)} sprites to {out}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from studio.ml.bench.sprites import bench_sprites, markdown
    from studio.ml.bench.timing import machine_description, machine_line
    from studio.ml.device import resolve_device

    device = resolve_device(args.device)
    report = bench_sprites(tuple(model_name(m) for m in args.models), device, args.threads, args.repeats,
                           args.warmup, args.steps, args.guidance, compile_=not args.no_compile)
    machine = machine_description(device, report["threads"])
    text = "\n".join(["# Sprite generation speed", "", f"Machine: {machine_line(machine)}", "",
                      *markdown(report)]) + "\n"
    print(text, end="")
    if args.json:
        write_atomic(Path(args.json), json.dumps({"machine": machine, "sprites": report}, indent=2) + "\n",
                     "the benchmark results")
    if args.md:
        write_atomic(Path(args.md), text, "the benchmark results")
    return 0


def _setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` for a model config field; VALUE is read as JSON (numbers, true/false) or else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key, parse_json(value, key)
    except BadInputError:
        return key, value


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["train"].add_parser(
        "sprite", help="train a sprite model (GAN, VAE or diffusion) on a sprite data set",
        description="Train a sprite model; runs unchanged under torchrun (DDP). Stop it (Ctrl+C) and run the "
        "same command with --resume to continue from the newest checkpoint. Your own sprites (a folder or a sheet) "
        "fine-tune the bundled model of the family unless --scratch.",
    )
    parser.add_argument("--model", choices=tuple(SHORT_NAMES), required=True)
    parser.add_argument("--data", required=True,
                        help="a folder made by `studio data sprites`, a folder of your PNGs, or a sheet with --grid")
    parser.add_argument("--grid", type=int, default=0, help="cell size in pixels when --data is a sprite sheet")
    parser.add_argument("--licence", default="", help="the licence of your data, recorded in the model card")
    parser.add_argument("--preset", choices=("quick", "balanced", "best", "gpu"), default="balanced",
                        help="gpu: wider models and bigger batches for a CUDA card's minutes")
    parser.add_argument("--name", default=None, help="register the result as a user model under this name")
    parser.add_argument("--out", default=None, help="run folder (default: runs/NAME in Studio's data folder)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    parser.add_argument("--max-steps", type=_positive, default=None, help="default: the preset's")
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop after this many minutes of training and save the model (resumable)")
    parser.add_argument("--batch-size", type=_positive, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--sample-every", type=_positive, default=None, help="steps between sample grids")
    parser.add_argument("--checkpoint-every", type=_positive, default=None)
    parser.add_argument("--init", default=None, metavar="MODEL",
                        help="fine-tune: start from this model (a name, gan/vae/diffusion, or a .safetensors file); "
                        "default for your own sprites: the bundled model of --model")
    parser.add_argument("--scratch", action="store_true", help="with your own sprites: train a new model instead")
    parser.add_argument("--set", type=_setting, action="append", metavar="KEY=VALUE",
                        help="override a model config field, e.g. --set g_width=48 (repeatable)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    parser.add_argument("--workers", type=int, default=0,
                        help="processes preparing augmented batches ahead (a GPU waits for them otherwise)")
    parser.add_argument("--events", action="store_true", help="print one JSON event per line (for the app)")
    parser.set_defaults(func=run_train)

    parser = groups["generate"].add_parser("sprite", help="generate sprites (one PNG each, recipe inside)")
    parser.add_argument("--model", default="gan", help="gan, vae, diffusion or a model name")
    parser.add_argument("--category", default=None,
                        help="e.g. items (see the model's card); with --prompt it is inferred from the words")
    parser.add_argument("--prompt", default="", help='words from the model\'s vocabulary, e.g. "skeleton warrior", '
                        '"red potion", "stone wall" (unknown words are reported and left out)')
    parser.add_argument("--count", type=_positive, default=16)
    parser.add_argument("--seed", type=int, default=0, help="sprite i gets seed + i")
    parser.add_argument("--palette", default="none", help="none (up to 16 colours per sprite), auto-N, a bundled "
                        "palette or a .hex/.gpl file")
    parser.add_argument("--tile", action="store_true", help="floor and wall: tiles that repeat without seams")
    parser.add_argument("--outline", action="store_true", help="a 1-px outline around each sprite")
    parser.add_argument("--raw", action="store_true", help="the model's output without the pixel-art finish")
    parser.add_argument("--steps", type=_positive, default=10, help="diffusion sampling steps")
    parser.add_argument("--guidance", type=float, default=2.0, help="diffusion classifier-free guidance")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--no-metadata", action="store_true", help="write no recipe into the PNGs")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run_generate)

    parser = groups["bench"].add_parser(
        "sprite", help="sprite generation latency (16-grid, 256 batch): torch eager, torch.compile, onnxruntime")
    parser.add_argument("--models", nargs="+", default=["gan", "vae", "diffusion"])
    parser.add_argument("--repeats", type=_positive, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=_positive, default=10, help="diffusion sampling steps")
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=0, help="threads for every runtime (0 = torch's default)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (slow to compile)")
    parser.add_argument("--json", default=None, help="write results as JSON here")
    parser.add_argument("--md", default=None, help="write a Markdown table here")
    parser.set_defaults(func=run_bench)
