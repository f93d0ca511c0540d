"""Model-management tasks the UI runs through the worker (it may not touch model files itself)."""

from __future__ import annotations

from typing import Any

from studio.core.context import JobContext
from studio.core.defaults import copy_defaults, model_order
from studio.core.jobs import JobSpec
from studio.core.modalities import all_modalities
from studio.ml.tasks import task


def describe_entry(entry: Any) -> dict[str, Any]:
    """A model as model lists show it: the common fields, then those its modality adds (``Modality.describe``)."""
    meta = entry.meta
    card = entry.weights.with_suffix(".md")
    extra = next((m.describe.load()(meta) for m in all_modalities() if m.name == entry.modality and m.describe), {})
    return {
        "name": entry.name,
        "arch": entry.arch,
        "modality": entry.modality,
        "family": meta.get("family", ""),
        "source": entry.source,
        "size_bytes": entry.size_bytes,
        "categories": list(meta.get("categories", [])),
        "tags": meta.get("tags") or {},
        "metrics": dict(meta.get("metrics", {})),
        "licence": meta.get("licence", ""),
        "card_path": str(card) if card.exists() else "",
        "path": str(entry.weights),
        **extra,
    }


@task("models.list")
def list_models(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    entries = ctx.resources.store.entries()
    modality = spec.params.get("modality")
    return sorted((describe_entry(e) for e in entries if not modality or e.modality == modality), key=model_order)


@task("models.export_status")
def export_status(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    """Whether the default copy model still lacks the ONNX export that makes copy faster on this machine (int4 on
    a CPU, fp16 on CUDA): the app then makes it in the background after its window opens. An adapter has the
    CPU's int4 graph only (on CUDA it runs merged into its base model's torch weights)."""
    from studio.core.errors import ModelFileError
    from studio.ml.runtime.exports import has_export
    from studio.ml.train.lora import ARCH as LORA_ARCH

    name = str(spec.params.get("name") or copy_defaults().model)
    variant = "fp16" if str(ctx.device).startswith("cuda") else "int4"
    try:
        entry = ctx.resources.store.find(name)
    except ModelFileError:
        return {"name": name, "variant": variant, "needed": False, "installed": False}
    if entry.arch == LORA_ARCH and variant != "int4":
        return {"name": name, "variant": variant, "installed": True, "needed": False}
    return {"name": name, "variant": variant, "installed": True,
            "needed": not has_export(name, variant, ctx.resources.store)}


@task("models.verify")
def verify_model(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    """Check a model's files (sha256 for bundled models, loadability for all)."""
    from studio.ml.checkpoint import read_sidecar

    store = ctx.resources.store
    entry = store.find(str(spec.params["name"]))
    store.verify(entry)
    read_sidecar(entry.weights)
    return {"name": entry.name, "ok": True}


@task("models.import")
def import_model(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    """Import safetensors (+JSON), ONNX or GGUF into the user model folder, after checking it loads."""
    from pathlib import Path

    from studio.ml.model_import import import_file

    entry = import_file(Path(str(spec.params["path"])), str(spec.params.get("name", "")), ctx.resources.store)
    return {"name": entry, "ok": True}


@task("models.rename")
def rename_model(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    from studio.ml.model_import import rename_user_model

    new = rename_user_model(ctx.resources.store, str(spec.params["name"]), str(spec.params["new_name"]))
    ctx.resources.cache.clear()
    return {"name": new}


@task("models.delete")
def delete_model(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    from studio.ml.model_import import delete_user_model

    removed = delete_user_model(ctx.resources.store, str(spec.params["name"]))
    ctx.resources.cache.clear()
    return {"removed": removed}


@task("models.export_onnx")
def export_onnx(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    from studio.ml.export.pipeline import export_model

    ctx.progress(0.05, "exporting to ONNX and validating against torch…")
    record = export_model(str(spec.params["name"]), str(spec.params.get("variant", "fp32")), store=ctx.resources.store)
    return {"folder": str(record.folder), "graphs": record.graphs, "variant": record.variant}
