"""LoRA adapters of the language model on the runtime loader: on torch, merged into a copy of their base model's
weights; on onnxruntime (a CPU), the base model's fused graph with the adapter merged into 8-bit blocks
(``studio export onnx NAME --int4``, :mod:`studio.ml.export.llama_graph`). "auto" measures both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.core.errors import ModelFileError
from studio.ml.runtime.exports import ExportRecord
from studio.ml.runtime.ort_lm import LanguageModels, load_ort_language_model
from studio.ml.store import ModelEntry


def base_model(entry: ModelEntry) -> str:
    """The store name of the model an adapter was trained on."""
    base = entry.meta.get("base_model")
    if not base:
        raise ModelFileError(f"the adapter {entry.name!r} does not say which model it was trained on")
    return str(base)


class AdapterModels(LanguageModels):
    key = "lm-lora"

    def variants(self, device: str) -> tuple[str, ...]:
        return ("int4",) if device == "cpu" else ()  # the fused graph is the CPU's; CUDA runs the merged torch model

    def load_torch(self, loader: Any, entry: ModelEntry, device: str) -> Any:
        from studio.ml.train.lora import apply_adapter

        base = loader.load(base_model(entry), device, runtime="torch")
        return apply_adapter(base, Path(entry.weights), entry.name)

    def load_onnx(self, loader: Any, entry: ModelEntry, record: ExportRecord, device: str) -> Any:
        base = loader.resources.store.find(base_model(entry))
        loader.resources.store.verify(base)
        if record.extra.get("base_sha256") != loader.weights_hash(base.weights):
            raise ModelFileError(f"the ONNX export of {entry.name} was made on other weights of {base.name}: "
                                 f"export it again (`studio export onnx {entry.name} --int4`)")
        return load_ort_language_model(record, base.weights, device, loader.resources.cpu_threads, entry.name)


ADAPTER = AdapterModels()
