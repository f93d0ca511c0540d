"""``studio data music``, ``train music`` and ``eval music``: the melody model's data, training and metrics."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from studio.core.errors import BadInputError, StudioError
from studio.core.safe_write import write_atomic

BASE_MODEL = "music-transformer"
FINE_TUNE_LR_SCALE = 0.3


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
    extra = [tune for path in args.extra for tune in _user_tunes(Path(path))]
    manifest = build_dataset(out, sources, extra, workers=args.workers, on_progress=_ParseProgress())
    for split, summary in manifest["splits"].items():
        print(f"{split:<5} {summary['tunes']:5d} tunes  {summary['sequences']:5d} sequences  "
              f"{summary['bars']:6d} bars  {summary['notes']:7d} notes  {summary['by_source']}")
    for source, counts in manifest["parsed"].items():
        print(f"parsed {source:<13} {counts.get('items', 0):5d} items, {counts.get('failed', 0)} failed")
    for skipped in manifest["skipped_files"]:
        print(f"skipped {skipped['file']}: {skipped['reason']}")
    print(f"wrote {out}/{{train,val}}.npz and manifest.json in {time.monotonic() - started:.0f}s")
    return 0


def _user_tunes(path: Path) -> list[Path]:
    from studio.ml.data.music import MUSIC_SUFFIXES

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in MUSIC_SUFFIXES)
    if not files:
        raise BadInputError(f"{path} holds no MIDI (.mid) or ABC (.abc) files to train on")
    return files


def _bundled_model() -> Path | None:
    from studio.ml.store import ModelStore

    try:
        return ModelStore().verified_weights(BASE_MODEL)
    except StudioError:
        return None


def _init_model(value: str | None) -> Path | None:
    """``--init``: a .safetensors file or the name of a model in the store."""
    from studio.ml.store import ModelStore

    return ModelStore().weights_for(value) if value else None


def _training_data(args: argparse.Namespace, say) -> tuple[Path, Path | None]:
    """(built data folder, model to start from). Your own tunes are built into a set and fine-tune the
    bundled model; a folder from `studio data music` trains from scratch unless --init says otherwise."""
    data = Path(args.data) if args.data else default_data_dir()
    if not data.exists():
        raise BadInputError(f"{data} does not exist: build a set with `studio data music` or give MIDI/ABC files")
    if args.init and args.scratch:
        raise BadInputError("--init and --scratch contradict each other: give one")
    init = _init_model(args.init)
    if (data / "train.npz").exists():
        return data, init
    built = default_data_dir().parent / f"music-{args.name}"
    if not (args.resume and (built / "train.npz").exists()):
        from studio.ml.data.music import build_dataset

        manifest = build_dataset(built, (), _user_tunes(data))
        tunes = sum(s["sequences"] for s in manifest["splits"].values())
        say(f"built a training set of {tunes} tune(s) from {data.name}")
        for skipped in manifest["skipped_files"]:
            say(f"skipped {skipped['file']}: {skipped['reason']}")
    if init is None and not args.scratch:
        init = _bundled_model()
    if init is not None:
        say(f"fine-tuning {init.stem} on your tunes")
    return built, init


def run_train(args: argparse.Namespace) -> int:
    from studio.cli.train_runner import run_trainer
    from studio.ml.checkpoint import read_sidecar
    from studio.ml.device import resolve_device
    from studio.ml.train.music import TrainOptions, train

    outcome: dict = {}

    def trainer(on_event, cancel) -> dict:
        def say(message: str) -> None:
            on_event({"event": "info", "message": message})

        data, init = _training_data(args, say)
        options = TrainOptions(
            data=data, preset=args.preset, max_steps=args.max_steps, max_minutes=args.max_minutes, name=args.name,
            resume=args.resume, out_dir=Path(args.out) if args.out else None, seed=args.seed,
            device=resolve_device(args.device), init_from=init, threads=args.threads,
            lr_scale=FINE_TUNE_LR_SCALE if init else 1.0, licence=args.licence,
            command=shlex.join(["studio", *sys.argv[1:]]),
        )
        started = time.monotonic()

        def progress(step: int, steps: int, metrics: dict[str, float]) -> None:
            done = max(metrics["progress"], 1e-9)
            loss = {"train": metrics["loss"]} | ({"validation": metrics["val_nll"]} if "val_nll" in metrics else {})
            on_event({"step": step, "total": max(step, round(step / done)), "loss": loss, "lr": metrics["lr"],
                      "eta_s": (time.monotonic() - started) * (1 - done) / done})

        path = train(options, progress, cancel)
        if path is None:  # another torchrun rank
            return {}
        meta = read_sidecar(path)
        outcome.update(model=args.name, model_path=str(path), metrics=meta["metrics"],
                       card=str(path.with_suffix(".md")))
        return outcome

    code = run_trainer(trainer, args.events)
    if code == 0 and not args.events and outcome.get("model_path"):
        print(f"wrote {outcome['model_path']} ({', '.join(f'{k}={v}' for k, v in outcome['metrics'].items())})")
    return code


def _model_path(name: str) -> Path:
    """A model by store name (bundled ones verified), or a .safetensors path."""
    from studio.ml.store import ModelStore

    if name.endswith(".safetensors"):
        return Path(name)
    store = ModelStore()
    entry = store.find(name)
    store.verify(entry)
    return entry.weights


CARD_SAMPLES = (("A minor, 4/4, 8 bars, seed 1", "A minor", "4/4", 8, 1),
                ("D major, 6/8, 8 bars, seed 2", "D major", "6/8", 8, 2))


def write_card(weights: Path, model, metrics: dict, meta: dict, data: Path) -> Path:
    """The model's card with these metrics, two sample melodies (default sampling settings) and ``data``'s size."""
    from studio.ml.data.music import read_manifest
    from studio.ml.music.sample import generate_melody
    from studio.ml.train.music_card import model_card, notes_text

    samples = {
        label: notes_text(generate_melody(model, key, None, meter, 110, bars, seed), meter, bars)
        for label, key, meter, bars, seed in CARD_SAMPLES
    }
    counts = read_manifest(data) or None
    return write_atomic(weights.with_suffix(".md"), model_card({**meta, "metrics": metrics}, samples, counts),
                        f"the card of {weights.stem}")


def run_eval(args: argparse.Namespace) -> int:
    from studio.ml.checkpoint import load_model
    from studio.ml.data.music import MusicData
    from studio.ml.device import resolve_device
    from studio.ml.eval.music_metrics import evaluate

    device = resolve_device(args.device)
    data = Path(args.data) if args.data else default_data_dir()
    weights = _model_path(args.model)
    model, _, meta = load_model(weights, expect_arch="music-transformer", device=device)
    metrics = evaluate(
        model, MusicData.load(data, "train"), MusicData.load(data, "val"), samples=args.samples, seed=args.seed,
        device=device, form=args.form,
    )
    for key, value in metrics.items():
        print(f"{key:<28} {value}")
    if args.json:
        write_atomic(Path(args.json), json.dumps(metrics, indent=2) + "\n", "the metrics")
        print(f"wrote {args.json}")
    if args.card:
        print(f"wrote {write_card(weights, model, metrics, meta, data)}")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["data"].add_parser(
        "music", help="build the melody training set from music21's public-domain tunes (needs music21)"
    )
    parser.add_argument("--out", default=None, help="output folder (default: datasets/music in Studio's data)")
    parser.add_argument("--sources", nargs="*", help="oneills1850, ryansMammoth and/or bach (default: all three)")
    parser.add_argument("--extra", nargs="*", default=[], help="your own .mid/.abc files or folders to add")
    parser.add_argument("--no-corpus", action="store_true", help="build from --extra files only")
    parser.add_argument("--workers", type=int, default=2, help="parser processes (1 or 2)")
    parser.set_defaults(func=run_data)

    parser = groups["train"].add_parser(
        "music", help="train the melody Transformer, or fine-tune it on your MIDI/ABC tunes (torchrun-ready)"
    )
    parser.add_argument("--data", help="a folder from `studio data music` (default: datasets/music), or your own "
                        "MIDI/ABC file or folder (then the bundled model is fine-tuned on it)")
    parser.add_argument("--preset", choices=("quick", "balanced", "best"), default="balanced")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (default: the preset's)")
    parser.add_argument("--max-minutes", type=float, help="or stop after this much training time (resumes count)")
    parser.add_argument("--name", default="music-transformer", help="model name (file NAME.safetensors)")
    parser.add_argument("--out", help="folder for the model file (default: your model folder)")
    parser.add_argument("--resume", action="store_true", help="continue the run NAME from its last checkpoint")
    parser.add_argument("--init", help="fine-tune: start from this model (a name, or a .safetensors file)")
    parser.add_argument("--scratch", action="store_true", help="with your own tunes: train a new model instead")
    parser.add_argument("--licence", default="", help="the licence of your training data (goes into the card)")
    parser.add_argument("--events", action="store_true", help="print one JSON event per line (for the app)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    parser.set_defaults(func=run_train)

    parser = groups["eval"].add_parser("music", help="likelihood and statistics of a melody model")
    parser.add_argument("--model", default="music-transformer", help="model name or .safetensors path")
    parser.add_argument("--data", help="folder from `studio data music` (default: datasets/music)")
    parser.add_argument("--samples", type=int, default=32, help="clips to generate for the statistics")
    parser.add_argument("--form", choices=("through", "period"), default="through",
                        help="melody form of the generated clips: the model alone, or as the styles write them")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", help="also write the metrics to this JSON file")
    parser.add_argument("--card", action="store_true", help="rewrite the model's card (NAME.md) with these metrics")
    parser.set_defaults(func=run_eval)
