"""``studio info``: versions, device, ONNX runtime and its providers, models found."""

from __future__ import annotations

import argparse
import contextlib
import platform


def onnxruntime_status() -> tuple[str, list[str], str]:
    """(version or '', providers, problem or ''): both onnxruntime builds installed at once is a known trap."""
    from importlib import metadata

    installed = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            installed.append(f"{dist} {metadata.version(dist)}")
    problem = ""
    if len(installed) > 1:
        problem = (
            "both onnxruntime and onnxruntime-gpu are installed; they share one module and break each other. "
            "Fix: pip uninstall -y onnxruntime onnxruntime-gpu && pip install -e '.[cpu]' (or '.[gpu]')"
        )
    try:
        import onnxruntime as ort
    except ImportError:
        return "", [], problem or "onnxruntime is not installed: pip install -e '.[cpu]' (or '.[gpu]')"
    return ort.__version__, list(ort.get_available_providers()), problem


def run_info(args: argparse.Namespace) -> int:
    import torch

    from studio import __version__
    from studio.cli.console import make_resources
    from studio.ml.device import describe_device

    resources = make_resources(args.device)
    ort_version, providers, problem = onnxruntime_status()
    print(f"Studio {__version__} on Python {platform.python_version()} ({platform.platform()})")
    print(f"torch {torch.__version__} (CUDA build {torch.version.cuda or 'none'}), cuda available: "
          f"{torch.cuda.is_available()}")
    print(f"device: {describe_device(resources.device)}")
    print(f"onnxruntime: {ort_version or 'missing'}; providers: {', '.join(providers) or 'none'}")
    if problem:
        print(f"WARNING: {problem}")
    entries = resources.store.entries()
    print(f"models: {len(entries)} found")
    for entry in entries:
        print(f"  {entry.name:<28} {entry.arch:<22} {entry.source:<8} {entry.size_bytes / 1e6:7.2f} MB")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups[""].add_parser("info", help="versions, device, ONNX runtime and models found")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.set_defaults(func=run_info)
