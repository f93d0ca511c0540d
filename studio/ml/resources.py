"""What the worker owns and hands to every task: device, model store, model cache, runtime preference and the runtime
loader. This is where the layers of ``studio.ml`` are put together: the loader gets the export pipeline from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from studio.core.settings import Settings
from studio.ml.cache import ModelCache
from studio.ml.device import configure_cpu_threads, resolve_device
from studio.ml.export.pipeline import export_model
from studio.ml.runtime.exports import ExportRecord
from studio.ml.runtime.loader import RuntimeLoader
from studio.ml.store import ModelStore


def export_now(name: str, store: ModelStore, device: str) -> ExportRecord:
    """The ONNX export forcing onnxruntime on a model without one makes now: a GGUF language model's (or its LoRA
    adapter's) fused int4 graph on a CPU, else fp32."""
    entry = store.find(name)
    language = (entry.arch == "llama" and entry.meta.get("format") == "gguf") or entry.arch == "llama-lora"
    return export_model(name, "int4" if language and device == "cpu" else "fp32", store=store)


@dataclass
class Resources:
    device: str
    runtime: str
    store: ModelStore
    cache: ModelCache
    cpu_threads: int
    settings: Settings = field(default_factory=Settings)

    @cached_property
    def runtimes(self) -> RuntimeLoader:
        """Loads every model on torch or onnxruntime (see studio.ml.runtime.loader)."""
        return RuntimeLoader(self, exporter=lambda name, store: export_now(name, store, self.device))

    @classmethod
    def from_settings(cls, settings: Settings) -> Resources:
        threads = configure_cpu_threads(settings.model_threads)
        shared = Path(settings.shared_model_dir).expanduser() if settings.shared_model_dir else None
        return cls(
            device=resolve_device(settings.device),
            runtime=settings.runtime,
            store=ModelStore(shared=shared),
            cache=ModelCache(settings.model_memory_budget_mb << 20),
            cpu_threads=threads,
            settings=settings,
        )
