"""What the worker owns and hands to every task: device, model store, model cache, runtime preference."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from studio.core.settings import Settings
from studio.ml.cache import ModelCache
from studio.ml.device import configure_cpu_threads, resolve_device
from studio.ml.runtime.select import RuntimeSelector
from studio.ml.store import ModelStore


@dataclass
class Resources:
    device: str
    runtime: str
    store: ModelStore
    cache: ModelCache
    cpu_threads: int
    settings: Settings = field(default_factory=Settings)

    @cached_property
    def runtimes(self) -> RuntimeSelector:
        """Loads models and picks torch or onnxruntime for each graph (see studio.ml.runtime.select)."""
        return RuntimeSelector(self)

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
