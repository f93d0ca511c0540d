"""``studio train sprite``, ``studio generate sprite`` and ``studio bench sprite``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from studio.core.errors import BadInputError

SHORT_NAMES = {"gan": "sprite-gan", "vae": "sprite-vae", "diffusion": "sprite-diffusion"}


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class TrainProgress:
    """A one-line progress bar with ETA and losses on stderr; sample grids are announced on their own line."""

    def __init__(self, run_dir: Path | None) -> None:
        self._last = 0.0
        self.run_dir = run_dir

    def __call__(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        step, total = event["step"], event["total"]
        if event["sample_grid"] is None and step < total and now - self._last < 0.5:
            return
        self._last = now
        width = 30
        filled = int(width * step / total)
        losses = " ".join(f"{k}={v:.4g}" for k, v in event["loss"].items())
        sys.stderr.write(
            f"\r[{'#' * filled}{'-' * (width - filled)}] {step}/{total} ETA {_format_seconds(event['eta_s'])} "
            f"{losses[:70]:<70}"
        )
        if event["sample_grid"] is not None:
            sys.stderr.write(f"\n  sample grid written at step {step}\n")
        sys.stderr.flush()


def run_train(args: argparse.Namespace) -> int:
    from studio.ml.train import distributed
    from studio.ml.train.sprite import SpriteTrainConfig, train_sprite

    config = SpriteTrainConfig(
        family=args.model,
        data=Path(args.data),
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
        threads=args.threads,
        command=shlex.join(["studio", *sys.argv[1:]]),
    )
    main = distributed.env_info().is_main
    result = train_sprite(config, TrainProgress(config.run_dir) if main else lambda event: None)
    if main:
        sys.stderr.write("\n")
        print(f"model: {result.model_path}")
        if result.registered_path:
            print(f"registered as {args.name}: {result.registered_path}")
        print(f"steps: {result.steps}, training time: {_format_seconds(result.wall_s)}")
        for key, value in result.metrics.items():
            print(f"  {key}: {value:.4g}")
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["train"].add_parser(
        "sprite", help="train a sprite model (GAN, VAE or diffusion) on a sprite data set",
        description="Train a sprite model. Runs unchanged under torchrun (DDP). Interrupt and run the same "
        "command again to resume from the newest checkpoint.",
    )
    parser.add_argument("--model", choices=("gan", "vae", "diffusion"), required=True)
    parser.add_argument("--data", required=True, help="folder made by `studio data sprites`")
    parser.add_argument("--preset", choices=("quick", "balanced", "best"), default="balanced")
    parser.add_argument("--name", default=None, help="register the result as a user model under this name")
    parser.add_argument("--out", default=None, help="run folder (checkpoints, sample grids, final model)")
    parser.add_argument("--max-steps", type=_positive, default=None)
    parser.add_argument("--batch-size", type=_positive, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--sample-every", type=_positive, default=None)
    parser.add_argument("--checkpoint-every", type=_positive, default=None)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = default)")
    parser.set_defaults(func=run_train)


