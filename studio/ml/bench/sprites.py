"""Sprite generation speed side by side: torch eager, torch.compile and onnxruntime for each sprite model, a
16-sprite grid and a 256-sprite batch.

Every runtime goes through the same sampling code (:func:`studio.ml.runtime.sprites.sample_sprites`, what the
sprite task runs), so only the network's runtime differs; times include the conversion to uint8 RGBA and the alpha
snap, as a generate job makes them. The onnxruntime graph is exported for the bench exactly as `studio export onnx`
makes it (dynamo export, onnxslim, onnxruntime's extended optimisation). A model that is not installed is measured
as an untrained stand-in of its default size (speed does not depend on the weights' values) and marked so.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.errors import ModelFileError
from studio.core.pixel_finish import FinishOptions, finish_sprites
from studio.ml import registry
from studio.ml.bench.timing import cuda_sync, measure
from studio.ml.checkpoint import load_model
from studio.ml.export import optimise
from studio.ml.export.onnx_export import export_architecture
from studio.ml.models.sprite_common import tensor_to_images
from studio.ml.registry import OnnxGraph
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import OrtGraphRunner, TorchGraphRunner
from studio.ml.runtime.sprites import GRAPHS, sample_sprites
from studio.ml.sampling.sprites import seeded_generators
from studio.ml.store import ModelStore

log = logging.getLogger(__name__)

MODELS = ("sprite-gan", "sprite-vae", "sprite-diffusion")
GRID, BATCH = 16, 256
TARGET_GRID_SPEEDUP = 1.3  # issue 6: the 16-sprite grid at least 1.3x torch eager on the CPU
TARGET_GRID_MS = {"gan": 300.0, "diffusion": 2000.0}  # issue 3: a 16-sprite grid on a 2-core CPU


class CompiledRunner(TorchGraphRunner):
    runtime = "torch.compile"

    def __init__(self, module: nn.Module, graph: OnnxGraph, device: str) -> None:
        super().__init__(module, graph, device)
        self.module = torch.compile(self.module, dynamic=False)


def load_or_stand_in(name: str, store: ModelStore, device: str) -> tuple[nn.Module, Any, str, str]:
    """(module, config, where it came from, architecture): the installed model, else an untrained one of the
    default size (``name`` is then an architecture name)."""
    try:
        entry = store.find(name)
        store.verify(entry)
        module, config, _ = load_model(entry.weights, expect_arch=entry.arch, device=device)
        return module, config, f"installed ({entry.source})", entry.arch
    except ModelFileError:
        arch = registry.get(name)
        config = arch.config_cls()
        torch.manual_seed(0)
        return arch.build(config).to(device).eval(), config, "untrained stand-in (speed only)", arch.name


def export_for_bench(arch_name: str, module: nn.Module, config: Any, graph: OnnxGraph, folder: Path) -> Path:
    """The graph as `studio export onnx` makes it: exported and validated, slimmed, optimised."""
    arch = registry.get(arch_name)
    raw = export_architecture(arch, module.float().cpu().eval(), config, folder, graphs=[graph.name])[0].path
    slim = optimise.slim(raw, folder / f"{graph.name}.slim.onnx")
    return optimise.ort_optimise(slim, folder / f"{graph.name}.opt.onnx")


FINISH = FinishOptions()


def _sprites(runner: Any, module: nn.Module, count: int, steps: int, guidance: float) -> list:
    labels = (torch.arange(count) % module.config.num_classes).to(runner.device)
    images = sample_sprites(runner, module, labels, seeded_generators(0, count), steps, guidance)
    return list(finish_sprites(tensor_to_images(images), FINISH))  # the app's default output


def _measure_runner(runner: Any, module: nn.Module, device: str, repeats: int, warmup: int, steps: int,
                    guidance: float, big_repeats: int) -> dict[str, Any]:
    sync = cuda_sync(device)
    start = time.perf_counter()
    _sprites(runner, module, GRID, steps, guidance)  # first call: compiles or initialises
    first_s = time.perf_counter() - start
    with torch.inference_mode():
        grid = measure(lambda: _sprites(runner, module, GRID, steps, guidance), repeats, warmup, sync)
        batch = measure(lambda: _sprites(runner, module, BATCH, steps, guidance), big_repeats, 1, sync)
    return {"first_call_s": round(first_s, 2), "grid16": grid.as_dict(), f"batch{BATCH}": batch.as_dict()}


def bench_model(name: str, store: ModelStore, device: str, threads: int, repeats: int, warmup: int, steps: int,
                guidance: float, compile_: bool, folder: Path) -> list[dict[str, Any]]:
    module, config, source, arch_name = load_or_stand_in(name, store, device)
    family = module.family
    graph = next(g for g in registry.get(arch_name).onnx if g.name == GRAPHS[family])
    big_repeats = max(1, repeats // 4) if family == "diffusion" else max(1, repeats // 2)
    base = {"model": name, "family": family, "source": source, "device": device,
            "params": sum(p.numel() for p in module.parameters()),
            "steps": steps if family == "diffusion" else None, "guidance": guidance if family == "diffusion" else None}
    makers: list[tuple[str, Any]] = [("torch eager", lambda: TorchGraphRunner(module, graph, device))]
    if compile_:
        makers.append(("torch.compile", lambda: CompiledRunner(module, graph, device)))
    makers.append(("onnxruntime", lambda: OrtGraphRunner(
        open_session(export_for_bench(arch_name, module, config, graph, folder), device, threads, graph),
        graph.inputs_for(config), device)))
    rows = []
    for runtime, make in makers:
        log.info("sprite bench: %s on %s", name, runtime)
        try:
            numbers = _measure_runner(make(), module, device, repeats, warmup, steps, guidance, big_repeats)
            rows.append({**base, "runtime": runtime, "status": "ok", **numbers})
        except Exception as exc:  # torch.compile needs a working compiler; report it and measure the rest
            rows.append({**base, "runtime": runtime, "status": f"failed: {str(exc).splitlines()[0][:160]}"})
    eager = rows[0].get("grid16", {}).get("median_ms")
    for row in rows:
        grid = row.get("grid16", {}).get("median_ms")
        row["grid16_speedup_vs_eager"] = round(eager / grid, 2) if eager and grid else None
        batch = row.get(f"batch{BATCH}", {}).get("median_ms")
        eager_batch = rows[0].get(f"batch{BATCH}", {}).get("median_ms")
        row[f"batch{BATCH}_speedup_vs_eager"] = round(eager_batch / batch, 2) if eager_batch and batch else None
    return rows


def bench_sprites(models: tuple[str, ...] = MODELS, device: str = "cpu", threads: int = 0, repeats: int = 10,
                  warmup: int = 2, steps: int = 10, guidance: float = 2.0, compile_: bool = True) -> dict[str, Any]:
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    store = ModelStore()
    rows = []
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        for name in models:
            rows += bench_model(name, store, device, threads, repeats, warmup, steps, guidance, compile_,
                                Path(tmp) / name)
    ort = [r for r in rows if r["runtime"] == "onnxruntime" and r.get("grid16_speedup_vs_eager")]
    targets = {r["model"]: {"ratio": r["grid16_speedup_vs_eager"], "target": TARGET_GRID_SPEEDUP,
                            "met": r["grid16_speedup_vs_eager"] >= TARGET_GRID_SPEEDUP} for r in ort}
    return {"repeats": repeats, "warmup": warmup, "threads": threads, "rows": rows, "targets": targets}


def _cell(timing: dict[str, Any] | None) -> str:
    return f"{timing['median_ms']:.1f} ({timing['iqr_ms']:.1f})" if timing else "-"


def _absolute(row: dict[str, Any]) -> str:
    target, grid = TARGET_GRID_MS.get(row["family"]), row.get("grid16")
    if target is None or grid is None:
        return "-"
    return f"{target:.0f} ms: {'met' if grid['median_ms'] <= target else 'MISSED'}"


def _speedup(value: float | None) -> str:
    return f"{value:.2f}x" if value else "-"


def markdown(report: dict[str, Any]) -> list[str]:
    lines = [
        "## Sprites",
        "",
        f"16-sprite grid and {BATCH}-sprite batch through the sprite task's sampling code; medians of "
        f"{report['repeats']} grid runs after {report['warmup']} warm-up (fewer batch runs), IQR in brackets; "
        f"{report['threads']} threads. First call = compilation or session start-up, not in the medians.",
        "",
        f"| model | weights | runtime | first call s | 16-grid ms | x eager | {BATCH}-batch ms | x eager | "
        "16-grid target | status |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in report["rows"]:
        extra = f" ({r['steps']} steps, guidance {r['guidance']})" if r.get("steps") else ""
        grid, batch = r.get("grid16"), r.get(f"batch{BATCH}")
        lines.append(f"| {r['model']}{extra} | {r['source']} | {r['runtime']} | {r.get('first_call_s', '-')} | "
                     f"{_cell(grid)} | {_speedup(r.get('grid16_speedup_vs_eager'))} | {_cell(batch)} | "
                     f"{_speedup(r.get(f'batch{BATCH}_speedup_vs_eager'))} | {_absolute(r)} | {r['status']} |")
    lines += ["", "| target: onnxruntime 16-grid vs torch eager | measured | target | met |", "|---|---:|---:|---|"]
    for model, t in report["targets"].items():
        lines.append(f"| {model} | {t['ratio']:.2f}x | {t['target']:.1f}x | {'yes' if t['met'] else 'NO'} |")
    return lines
