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
SEAM_COUNT = 32  # tiles per tile category for the seam comparison
CARD_END = "<!-- /studio-eval:sprite -->"

ROWS = (
    ("FID (encoder features, vs train split)", "fid", "{:.2f}"),
    ("KID ×1000 (encoder features, vs train split)", "kid", "{:.2f}"),
    ("precision: share inside the real tiles' manifold (realism)", "precision", "{:.1%}"),
    ("recall: share of real tiles inside the samples' manifold (coverage)", "recall", "{:.1%}"),
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


ARTIST_COLUMNS = (
    ("colours (median)", "colours", "{:.0f}"),
    ("speckle (median)", "speckle", "{:.3f}"),
    ("stray fragments / sprite", "fragments", "{:.2f}"),
    ("shapes / sprite", "shapes", "{:.2f}"),
    ("outline (median)", "outline", "{:.2f}"),
    ("seam (median)", "seam", "{:.2f}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def artist_markdown(columns: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Per category, each measure for every column (model, real tiles, damaged tiles) side by side."""
    names = [name for name, _ in columns]
    lines = ["What an artist sees, per category (" + " / ".join(names) + "):", "",
             "| category | " + " | ".join(label for label, _, _ in ARTIST_COLUMNS) + " |",
             "|---|" + "---:|" * len(ARTIST_COLUMNS)]
    categories = list(dict.fromkeys(c for _, result in columns for c in result.get("artist", {})))
    for category in categories:
        cells = []
        for _, key, fmt in ARTIST_COLUMNS:
            values = [result.get("artist", {}).get(category, {}).get(key) for _, result in columns]
            cells.append(" / ".join(_cell(v, fmt) for v in values))
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    return lines


def tags_markdown(tags: dict[str, Any]) -> list[str]:
    model, real = tags["model"], tags["real"]
    return [
        f"Words: {tags['words']} words with at least 30 training tiles, {tags['per_word']} sprites asked for by each "
        "word alone; the encoder's tag classifier names the word (top 1) or has it in its top 5:",
        "",
        "| | top 1 | top 5 | sprites |",
        "|---|---:|---:|---:|",
        f"| model | {_cell(model['top1'], '{:.1%}')} | {_cell(model['top5'], '{:.1%}')} | {model['count']} |",
        f"| real validation tiles with the word | {_cell(real['top1'], '{:.1%}')} | {_cell(real['top5'], '{:.1%}')} "
        f"| {real['count']} |",
        f"| model / real | {_cell(tags['ratio_top1'], '{:.2f}')} | {_cell(tags['ratio_top5'], '{:.2f}')} | |",
    ]


def to_markdown(report: dict[str, Any]) -> str:
    """A table of the model's numbers next to the validation split's (the reference a perfect model reaches) and,
    when asked for, damaged copies of it (what the metrics must tell apart); a data set with fewer than two
    validation sprites has no reference column."""
    model, baseline = report.get("model"), report.get("baseline")
    columns = [(report.get("model_name", "model"), model), ("validation split (reference)", baseline)]
    columns += [(f"validation {name}", result) for name, result in report.get("damaged", {}).items()]
    columns = [(name, result) for name, result in columns if result]
    counts = [f"{model['count']} samples" if model else "", f"{baseline['count']} validation sprites" if baseline
              else "", "the same validation sprites damaged" if report.get("damaged") else ""]
    counts = [c for c in counts if c]
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
    if any("artist" in result for _, result in columns):
        lines += ["", *artist_markdown(columns)]
    if report.get("tags"):
        lines += ["", *tags_markdown(report["tags"])]
    if report.get("seams"):
        lines += ["", f"Seams ({SEAM_COUNT} tiles per category, median wrap-around step / inner step; 1 = seamless):",
                  "", "| category | asked to tile | drawn plainly | real validation tiles |", "|---|---:|---:|---:|"]
        for category, row in report["seams"].items():
            lines.append(f"| {category} | {_cell(row['tiled'], '{:.2f}')} | {_cell(row['plain'], '{:.2f}')} | "
                         f"{_cell(row['real'], '{:.2f}')} |")
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


def _sprites(model: str, params: dict[str, Any], seed: int, args: argparse.Namespace, resources: Any) -> list:
    from studio.cli.console import run_in_console
    from studio.core.jobs import JobSpec

    params = {**params, "palette": "none", "steps": args.steps, "guidance": args.guidance}
    if getattr(args, "raw", False):
        params["finish"] = {"enabled": False}
    return run_in_console(JobSpec("sprite.generate", params, seed=seed, model=model), quiet=args.quiet,
                          resources=resources)


def generate_samples(model: str, dataset, count: int, seed: int, args: argparse.Namespace) -> tuple:
    """``count`` sprites from ``model`` through the ``sprite.generate`` task (the app's defaults, the pixel-art
    finish included unless ``args.raw``), categories in training shares."""
    import numpy as np

    from studio.cli.console import make_resources
    from studio.ml.eval.sprite_reference import category_shares

    resources = make_resources(args.device)
    known = list(resources.store.find(model).meta.get("categories") or [])
    shares = {name: n for name, n in category_shares(dataset, count).items() if name in known}
    if not shares:
        raise BadInputError(f"{model} knows none of the data set's categories ({', '.join(dataset.categories)})")
    images, labels = [], []
    for offset, (name, n) in enumerate(shares.items()):
        sprites = _sprites(model, {"category": name, "count": n}, seed + 100_000 * offset, args, resources)
        images.extend(s["rgba"] for s in sprites)
        labels.extend([dataset.categories.index(name)] * len(sprites))
    return np.stack(images), np.array(labels, dtype=np.int64)


def evaluate_words(model: str, dataset, reference, seed: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """The tag evaluation (see :mod:`studio.ml.eval.sprite_tags`); None when the model or encoder has no words."""
    import numpy as np

    from studio.cli.console import make_resources
    from studio.core.sprite_tags import TagVocabulary
    from studio.ml.eval.sprite_tags import PER_TAG, eligible_tags, hits, real_rates, tag_report

    resources = make_resources(args.device)
    model_words = TagVocabulary.from_dict(resources.store.find(model).meta.get("tags")).words
    if reference.tag_logits is None or not model_words:
        return None
    tags = [t for t in eligible_tags(dataset, reference.tag_words) if t in model_words]
    if not tags:
        return None
    per_tag = {}
    for offset, tag in enumerate(tags):
        sprites = _sprites(model, {"prompt": tag, "count": PER_TAG}, seed + 7_000_000 + 1_000 * offset, args,
                           resources)
        logits = reference.tag_logits(np.stack([s["rgba"] for s in sprites]))
        top1, top5 = hits(logits, reference.tag_words.index(tag))
        per_tag[tag] = {"count": len(sprites), "top1": top1.tolist(), "top5": top5.tolist()}
    return tag_report(per_tag, real_rates(dataset, tags, reference.tag_words, reference.tag_logits))


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
    parts += ["--raw"] if getattr(args, "raw", False) else []
    parts += ["--damaged"] if getattr(args, "damaged", False) else []
    return shlex.join(parts)


def evaluate_trained_model(name: str, data: Path, card: Path, json_path: Path, device: str | None) -> dict:
    """The evaluation at the end of a training run: the table goes into the new model's card, the report into
    ``json_path``; nothing is printed (the trainer's stdout may carry JSON events)."""
    args = argparse.Namespace(model=name, data=Path(data), count=FINISH_EVAL_COUNT, reference=False, encoder=ENCODER,
                              seed=0, steps=10, guidance=2.0, device=device, quiet=True, raw=False, damaged=False,
                              words=False)
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
        if getattr(args, "damaged", False):
            report["damaged"] = damaged_baselines(dataset, reference, args.count, args.seed)
    elif not args.model:
        raise BadInputError(f"{args.data} holds fewer than two validation sprites: there is no reference to measure")
    if args.model:
        samples, labels = generate_samples(args.model, dataset, args.count, args.seed, args)
        report["model_name"] = args.model
        report["model"] = evaluate_sprites(samples, labels, reference)
        if getattr(args, "words", True):
            words = evaluate_words(args.model, dataset, reference, args.seed, args)
            if words:
                report["tags"] = words
        report["seams"] = evaluate_seams(args.model, dataset, args.seed, args)
    return report


def evaluate_seams(model: str, dataset, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """For each tile category the model knows: the median seam ratio of sprites asked to tile, of the same seeds
    drawn plainly, and of the real validation tiles (1 = the edges meet like any two neighbouring columns)."""
    import numpy as np

    from studio.cli.console import make_resources
    from studio.core.pixel_art import seam_ratio
    from studio.ml.tasks.sprite import tile_categories

    resources = make_resources(args.device)
    known = set(resources.store.find(model).meta.get("categories") or [])
    out: dict[str, Any] = {}
    for offset, category in enumerate(sorted(tile_categories() & known & set(dataset.categories))):
        real = dataset.val_images[dataset.val_labels == dataset.categories.index(category)]
        row = {}
        for tile in (True, False):
            params = {"category": category, "count": SEAM_COUNT, "tile": tile}
            sprites = _sprites(model, params, seed + 9_000_000 + 1_000 * offset, args, resources)
            values = seam_ratio(np.stack([s["rgba"] for s in sprites]))
            row["tiled" if tile else "plain"] = float(np.nanmedian(values)) if np.isfinite(values).any() else None
        real_values = seam_ratio(real) if len(real) else np.array([np.nan])
        row["real"] = float(np.nanmedian(real_values)) if np.isfinite(real_values).any() else None
        out[category] = row
    return out


def damaged_baselines(dataset, reference, count: int, seed: int) -> dict[str, Any]:
    """The validation sprites blurred, noised and specked (studio.ml.data.degrade), measured like a model: what the
    metrics must tell apart from real tiles."""
    import numpy as np

    from studio.ml.data.degrade import DAMAGES
    from studio.ml.eval.sprite_metrics import evaluate_sprites
    from studio.ml.eval.sprite_reference import validation_subset

    images, labels = validation_subset(dataset, count, seed)
    rng = np.random.default_rng(seed)
    return {name: evaluate_sprites(damage(images, rng), labels, reference) for name, damage in DAMAGES.items()}


def side_by_side(blocks: list[tuple[str, list[Any]]], categories: list[str], scale: int = 4) -> Any:
    """One RGBA image: a row per category, a block of sprites per source (real tiles first), titled."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    per_row = max(len(row) for _, rows in blocks for row in rows)
    cell, gap, left, top = 34, 12, 90, 16
    width = left + len(blocks) * (per_row * cell + gap)
    height = top + len(categories) * cell
    canvas = np.zeros((height, width, 4), np.uint8)
    canvas[...] = (40, 40, 46, 255)
    for b, (_, rows) in enumerate(blocks):
        for r, row in enumerate(rows):
            for c, sprite in enumerate(row):
                y, x = top + r * cell + 1, left + b * (per_row * cell + gap) + c * cell + 1
                alpha = sprite[..., 3:4] / 255.0
                canvas[y : y + 32, x : x + 32, :3] = (sprite[..., :3] * alpha + 64 * (1 - alpha)).astype(np.uint8)
    image = Image.fromarray(canvas).resize((width * scale, height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=5 * scale)
    for b, (title, _) in enumerate(blocks):
        draw.text(((left + b * (per_row * cell + gap)) * scale, 2 * scale), title, fill=(230, 230, 230, 255), font=font)
    for r, name in enumerate(categories):
        draw.text((4 * scale, (top + r * cell + 12) * scale), name, fill=(230, 230, 230, 255), font=font)
    return image


def run_grid(args: argparse.Namespace) -> int:
    """``studio eval sprite-grid``: real validation tiles, then each model, same categories and seeds."""
    import numpy as np

    from studio.cli.console import make_resources
    from studio.ml.data.sprites import load_sprite_dataset

    dataset = load_sprite_dataset(args.data)
    rng = np.random.default_rng(args.seed)
    real_rows = []
    for index in range(len(dataset.categories)):
        members = np.flatnonzero(dataset.val_labels == index)
        picks = rng.choice(members, size=min(args.per_category, len(members)), replace=False)
        real_rows.append([dataset.val_images[i] for i in picks])
    blocks: list[tuple[str, list[Any]]] = [("real validation tiles", real_rows)]
    resources = make_resources(args.device)
    for model in args.models:
        rows = []
        for index, category in enumerate(dataset.categories):
            params = {"category": category, "count": args.per_category}
            rows.append([s["rgba"] for s in _sprites(model, params, args.seed + 1000 * index, args, resources)])
        blocks.append((model + (" (raw)" if args.raw else ""), rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    side_by_side(blocks, dataset.categories).save(args.out)
    print(f"wrote {args.out}: per category, {args.per_category} real tiles then {args.per_category} sprites of each "
          f"model (seeds {args.seed} + 1000 x row + column)")
    return 0


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
    parser.add_argument("--raw", action="store_true", help="the models' raw output, without the pixel-art finish")
    parser.add_argument("--damaged", action="store_true",
                        help="also measure blurred, noised and specked copies of the validation tiles")
    parser.add_argument("--no-words", dest="words", action="store_false",
                        help="skip the words evaluation (sprites asked for by each frequent word)")
    parser.set_defaults(func=run_eval)

    parser = groups["eval"].add_parser(
        "sprite-grid", help="a side-by-side picture: real tiles, then each model, same categories and seeds")
    parser.add_argument("--data", type=Path, required=True, help="the sprite data set (its validation tiles)")
    parser.add_argument("--models", nargs="+", required=True, help="sprite model names")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--per-category", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--raw", action="store_true", help="without the pixel-art finish")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run_grid)

    parser = groups["train"].add_parser("sprite-encoder", help="train the encoder used by `studio eval sprite`")
    parser.add_argument("--data", type=Path, required=True, help="a sprite data-set folder")
    parser.add_argument("--out", type=Path, help="weights file (default: your models folder)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=48, help="channels of the first layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--resume", action="store_true", help="continue a paused run")
    parser.add_argument("--events", action="store_true", help="JSON lines on stdout (for the app)")
    parser.set_defaults(func=run_train_encoder)
