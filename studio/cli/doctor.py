"""``studio doctor``: which device and runtime each workspace uses here, the GPU and its driver, the speed of each
workspace, and in plain words why Studio runs on the CPU when it does (the status bar and Settings show the same)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from studio.core.jobs import JobSpec
from studio.core.machine_report import report_lines


def run_doctor(args: argparse.Namespace) -> int:
    from studio.cli.console import run_in_console
    from studio.cli.info import onnxruntime_status

    kind = "system.speed" if args.measure else "system.doctor"
    report = run_in_console(JobSpec(kind), device=args.device, quiet=not args.measure)
    _, _, problem = onnxruntime_status()
    if problem:
        report = dataclasses.replace(report, notes=(*report.notes, problem))
    if args.json:
        print(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups[""].add_parser(
        "doctor", help="what models run on here and why; GPU, driver, speed of each workspace",
        description="Which device and runtime (PyTorch or ONNX Runtime, and its provider) each workspace uses, the "
                    "GPU's name, driver and free memory, each workspace's measured speed, and why Studio runs on the "
                    "CPU when it does (no driver, a CPU build, an old driver, a provider or library missing, out of "
                    "memory).")
    parser.add_argument("--measure", action="store_true",
                        help="time each workspace's usual job now (about a minute on a laptop CPU) and remember it")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="diagnose this device instead of the one in Settings")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    parser.set_defaults(func=run_doctor)
