"""``studio eval sprite`` (realism, accuracy, diversity, memorisation) and ``studio train sprite-encoder``."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

from studio.core.errors import BadInputError
from studio.core.safe_write import write_atomic

CARD_START = "<!-- studio-eval:sprite -->"
ENCODER = "sprite-encoder"
FINISH_EVAL_COUNT = 256  # samples a finished training run is evaluated with
CARD_END = "<!-- /studio-eval:sprite -->"

ROWS = (
    ("FID (encoder features, vs train split)", "fid", "{:.2f}"),
    ("KID ×1000 (encoder features, vs train split)", "kid", "{:.2f}"),
    ("category accuracy (encoder classifier)", "category_accuracy", "{:.1%}"),
    ("diversity: mean pairwise pixel L1", "diversity_pixel_l1", "{:.4f}"),
    ("diversity: mean pairwise 1 - cosine (encoder)", "diversity_feature_cosine", "{:.4f}"),
    ("near copies of a training tile", "near_copy_fraction", "{:.2%}"),
    ("median pixel L1 to the nearest training tile", "nearest_median", "{:.4f}"),
)


def _row_value(result: dict[str, Any], key: str) -> float:
    if key == "kid":
        return result["kid"] * 1000.0
    if key == "near_copy_fraction":
        return result["memorisation"]["near_copy_fraction"]
    if key == "nearest_median":
        return result["memorisation"]["nearest_pixel_l1"]["median"]
    return result[key]


def to_markdown(report: dict[str, Any]) -> str:
    """A table of the model's numbers next to the validation split's (the reference a perfect model reaches); a data
    set with fewer than two validation sprites has no reference column."""
    model, baseline = report.get("model"), report.get("baseline")
    columns = [(report.get("model_name", "model"), model), ("validation split (reference)", baseline)]
    columns = [(name, result) for name, result in columns if result]
    counts = [f"{result['count']} {'samples' if result is model else 'validation sprites'}" for _, result in columns]
    memo = columns[0][1]["memorisation"]
    lines = [
        f"Evaluated with `{report['command']}`: {' and '.join(counts)} against the {report['train_count']} tiles "
        f"of the {report['data']} training split, in encoder `{report['encoder']}`'s feature space. A near copy "
        f"lies within pixel L1 {memo['near_copy_threshold_l1']} of a training tile and within "
        f"{memo['near_copy_detail_share']:.0%} of that tile's own detail.",
        "",
        "| metric | " + " | ".join(name for name, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for label, key, fmt in ROWS:
        values = [_row_value(result, key) for _, result in columns]
        lines.append(f"| {label} | " + " | ".join("n/a" if v is None else fmt.format(v) for v in values) + " |")
    if columns[0][1].get("category_accuracy") is None:
        lines += ["", f"Category accuracy is n/a: encoder `{report['encoder']}` was trained on other categories."]
    if baseline is None:
        lines += ["", "No reference column: the data set holds fewer than two validation sprites."]
    return "\n".join(lines) + "\n"


def update_card(card: Path, markdown: str) -> None:
    """Put the table into a model card between markers, replacing an earlier one, else append a section."""
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    block = f"{CARD_START}\n{markdown}{CARD_END}"
    pattern = re.compile(re.escape(CARD_START) + ".*?" + re.escape(CARD_END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + f"## Evaluation\n\n{block}\n"
    write_atomic(card, text, f"the card {card.name}")


def generate_samples(model: str, dataset, count: int, seed: int, args: argparse.Namespace) -> tuple:
    """``count`` sprites from ``model`` through the ``sprite.generate`` task, categories in training shares."""
    import numpy as np

    from studio.cli.console import make_resources, run_in_console
    from studio.core.jobs import JobSpec
    from studio.ml.eval.sprite_reference import category_shares

    resources = make_resources(args.device)
    known = list(resources.store.find(model).meta.get("categories") or [])
    shares = {name: n for name, n in category_shares(dataset, count).items() if name in known}
    if not shares:
        raise BadInputError(f"{model} knows none of the data set's categories ({', '.join(dataset.categories)})")
    images, labels = [], []
    for offset, (name, n) in enumerate(shares.items()):
        params = {"category": name, "count": n, "palette": "none", "steps": args.steps, "guidance": args.guidance}
        spec = JobSpec("sprite.generate", params, seed=seed + 100_000 * offset, model=model)
        sprites = run_in_console(spec, quiet=args.quiet, resources=resources)
        images.extend(s["rgba"] for s in sprites)
        labels.extend([dataset.categories.index(name)] * len(sprites))
    return np.stack(images), np.array(labels, dtype=np.int64)


def _print(report: dict[str, Any]) -> None:
    print(to_markdown(report))
    model = report.get("model")
    if model:
        flagged = model["memorisation"]["near_copies"]
        print(f"{flagged} of {model['count']} samples are near copies of a training tile")


def _command(args: argparse.Namespace) -> str:
    parts = ["studio", "eval", "sprite", "--data", str(args.data), "--count", str(args.count), "--seed",
             str(args.seed)]
    parts += ["--model", args.model, "--steps", str(args.steps), "--guidance", str(args.guidance)] if args.model \
        else ["--reference"]
    return shlex.join(parts)


def evaluate_trained_model(name: str, data: Path, card: Path, json_path: Path, device: str | None) -> dict:
    """The evaluation at the end of a training run: the table goes into the new model's card, the report into
    ``json_path``; nothing is printed (the trainer's stdout may carry JSON events)."""
    args = argparse.Namespace(model=name, data=Path(data), count=FINISH_EVAL_COUNT, reference=False, encoder=ENCODER,
                              seed=0, steps=10, guidance=2.0, device=device, quiet=True)
    report = evaluation_report(args)
    _write_report(json_path, report)
    update_card(card, to_markdown(report))
    return report


def _write_report(path: Path, report: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(report, indent=2) + "\n", "the report")


def run_eval(args: argparse.Namespace) -> int:
    report = evaluation_report(args)
    _print(report)
    if args.json:
        _write_report(args.json, report)
        print(f"wrote {args.json}")
    if args.card:
        update_card(args.card, to_markdown(report))
        print(f"updated {args.card}")
    return 0


def evaluation_report(args: argparse.Namespace) -> dict[str, Any]:
    """The model's metrics (if ``args.model``) beside the validation split's, for ``args.data``."""
    from studio.ml.data.sprites import load_sprite_dataset
    from studio.ml.eval.sprite_metrics import evaluate_sprites
    from studio.ml.eval.sprite_reference import build_reference, validation_baseline

    if not args.model and not args.reference:
        raise BadInputError("name a model with --model, or ask for the validation baseline alone with --reference")
    if args.count < 2:
        raise BadInputError("--count must be at least 2")
    dataset = load_sprite_dataset(args.data)
    reference = build_reference(dataset, args.encoder, device=args.device or "cpu")
    report: dict[str, Any] = {
        "command": _command(args),
        "data": dataset.manifest.get("name", str(args.data)),
        "encoder": args.encoder,
        "train_count": len(dataset.train_labels),
        "seed": args.seed,
    }
    if len(dataset.val_labels) >= 2:
        report["baseline"] = validation_baseline(dataset, reference, args.count, args.seed)
    elif not args.model:
        raise BadInputError(f"{args.data} holds fewer than two validation sprites: there is no reference to measure")
    if args.model:
        samples, labels = generate_samples(args.model, dataset, args.count, args.seed, args)
        report["model_name"] = args.model
        report["model"] = evaluate_sprites(samples, labels, reference)
    return report


def run_train_encoder(args: argparse.Namespace) -> int:
    from studio.cli.train_runner import run_trainer
    from studio.core.paths import user_models_dir
    from studio.ml.device import resolve_device
    from studio.ml.train.sprite_encoder import EncoderTraining, train_sprite_encoder

    settings = EncoderTraining(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                               width=args.width, seed=args.seed)
    out = args.out or user_models_dir() / "sprite-encoder.safetensors"
    device = resolve_device(args.device)

    def train(on_event, cancel) -> dict:
        return train_sprite_encoder(args.data, out, settings, on_event, cancel, device, args.resume)

    return run_trainer(train, events=args.events)


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["eval"].add_parser(
        "sprite",
        help="realism (FID/KID), category accuracy, diversity and memorisation of a sprite model",
        description="Generate --count sprites with a model (categories in the training split's shares) and "
        "measure them against the data set, next to the same numbers for its validation split.",
    )
    parser.add_argument("--model", help="sprite model name (e.g. sprite-gan)")
    parser.add_argument("--data", type=Path, required=True, help="the sprite data set the model was trained on")
    parser.add_argument("--count", type=int, default=512, help="samples to generate and validation sprites used")
    parser.add_argument("--reference", action="store_true", help="only the validation-vs-train baseline")
    parser.add_argument("--json", type=Path, help="write the full report as JSON")
    parser.add_argument("--card", type=Path, help="put the table into this model card (Markdown)")
    parser.add_argument("--encoder", default=ENCODER, help="encoder model name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10, help="sampling steps (diffusion models; the app's default)")
    parser.add_argument("--guidance", type=float, default=2.0, help="guidance scale (diffusion models)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_eval)

    parser = groups["train"].add_parser("sprite-encoder", help="train the encoder used by `studio eval sprite`")
    parser.add_argument("--data", type=Path, required=True, help="a sprite data-set folder")
    parser.add_argument("--out", type=Path, help="weights file (default: your models folder)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=32, help="channels of the first layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--resume", action="store_true", help="continue a paused run")
    parser.add_argument("--events", action="store_true", help="JSON lines on stdout (for the app)")
    parser.set_defaults(func=run_train_encoder)
