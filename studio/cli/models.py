"""``studio models list | verify``."""

from __future__ import annotations

import argparse

from studio.core.errors import StudioError


def run_list(args: argparse.Namespace) -> int:
    from studio.ml.store import ModelStore

    entries = ModelStore().entries()
    if not entries:
        print("no models found")
    for entry in entries:
        metrics = entry.meta.get("metrics", {})
        summary = ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:3] if isinstance(v, int | float))
        print(f"{entry.name:<28} {entry.modality:<7} {entry.arch:<22} {entry.source:<8} "
              f"{entry.size_bytes / 1e6:7.2f} MB  {summary}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from studio.ml.checkpoint import read_sidecar
    from studio.ml.store import ModelStore

    store = ModelStore()
    failures = 0
    for entry in store.entries():
        if args.names and entry.name not in args.names:
            continue
        try:
            store.verify(entry)
            read_sidecar(entry.weights)
            print(f"ok      {entry.name} ({entry.source})")
        except StudioError as exc:
            failures += 1
            print(f"FAILED  {entry.name}: {exc}")
    return 1 if failures else 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["models"].add_parser("list", help="list bundled, trained and imported models")
    parser.set_defaults(func=run_list)
    parser = groups["models"].add_parser("verify", help="check bundled models against their sha256, and that "
                                         "every user and shared model has a readable description")
    parser.add_argument("names", nargs="*")
    parser.set_defaults(func=run_verify)
