"""Headless entry points: ``studio info | doctor | generate | train | eval | export | bench | models | data``.

Each modality module adds its sub-commands through ``add_commands(groups)``; with no arguments Studio opens the app.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from studio import __version__
from studio.core.errors import StudioError
from studio.core.housekeeping import tidy_after_crashes
from studio.core.modalities import all_modalities

GROUPS = {
    "generate": "generate " + ", ".join(m.label.lower() for m in all_modalities()) + " from a model",
    "train": "train a model on your data",
    "eval": "evaluate a model (realism, diversity, memorisation, likelihood)",
    "export": "export models (ONNX)",
    "bench": "measure speed side by side; results written to files",
    "models": "list, verify, import and delete models",
    "data": "build training sets from offline sources",
}

#: Commands of Studio as a whole; each modality adds its own (``Modality.cli``).
COMMAND_MODULES = ("info", "doctor", "app", "models", "onnx", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="Studio: offline generative studio.")
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {"": top}
    for name, help_text in GROUPS.items():
        group = top.add_parser(name, help=help_text, description=help_text)
        groups[name] = group.add_subparsers(dest="subcommand", metavar="WHAT", required=True)
    modules = [f"studio.cli.{name}" for name in COMMAND_MODULES]
    modules += [ref.module for modality in all_modalities() for ref in modality.cli]
    for module_name in modules:
        importlib.import_module(module_name).add_commands(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv or ["app"])
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        tidy_after_crashes()
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130
