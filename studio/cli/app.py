"""``studio app`` (the default): open the desktop application."""

from __future__ import annotations

import argparse


def run_app(args: argparse.Namespace) -> int:
    from studio.ui.app import run

    return run(screenshot=args.screenshot, quit_after_ms=args.quit_after_ms)


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups[""].add_parser("app", help="open the desktop application (the default)")
    parser.add_argument("--screenshot", default=None, help="save a screenshot of the window to this PNG")
    parser.add_argument("--quit-after-ms", type=int, default=0, help=argparse.SUPPRESS)
    parser.set_defaults(func=run_app)
