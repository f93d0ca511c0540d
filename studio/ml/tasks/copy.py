"""Ad-copy tasks: ``copy.generate`` (whole ads, streamed line by line) and ``copy.line`` (one new line).

Params (see the payload contract): ``brief`` (dict), ``format``, ``framework``, ``variants``, ``temperature``,
``top_p``; optional ``counts`` ({field: lines}), ``candidates`` (lines sampled per slot) and ``locked`` ({field:
{slot index: line}}, lines kept as they are). Results carry each line's ``angle`` and the slots that fell back to
an extractive line from the brief. The model is a language model of the store or a LoRA adapter
(``arch: "llama-lora"``), applied to its base model on load; both stay in the worker's model cache.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from studio.core import paths
from studio.core.context import JobContext
from studio.core.copy_brief import brief_from_dict
from studio.core.copy_formats import check_framework, field_counts, generation_format
from studio.core.copy_plan import must_use_notes
from studio.core.defaults import copy_defaults
from studio.core.errors import BadInputError, ModelFileError
from studio.core.jobs import JobSpec, thaw
from studio.core.modalities.copy import BASE_LANGUAGE_MODEL, DEFAULT_COPY_MODEL
from studio.ml.sampling.text import SamplingParams
from studio.ml.tasks import task
from studio.ml.text.copywriter import (
    CopyRequest,
    WrittenAd,
    check_request,
    foreign_brief_note,
    regenerate_line,
    write_ads,
)
from studio.ml.text.lm import LanguageModel, get_language_model

log = logging.getLogger(__name__)

MAX_VARIANTS = 10
MAX_CANDIDATES = 16


def resolve_copy_model(store: Any, name: str, note: Callable[[str], None] | None = None) -> str:
    """The store name to write with: ``name``, or the default. The bundled default adapter gives way to its base
    model when it is missing or damaged (its sha256 differs), with ``note`` saying so: copy still works. A model
    the user named must be there."""
    wanted = name or copy_defaults().model
    if wanted != DEFAULT_COPY_MODEL:
        return wanted
    try:
        store.verify(store.find(wanted))
    except ModelFileError as exc:
        (note or log.warning)(f"{exc}: writing with the base model {BASE_LANGUAGE_MODEL} instead (set-up restores "
                              "the bundled adapter)")
        return BASE_LANGUAGE_MODEL
    return wanted


def load_copy_model(resources: Any, name: str, device: str | None = None, runtime: str | None = None,
                    note: Callable[[str], None] | None = None) -> Any:
    """A language model by store name (torch or onnxruntime, as :func:`get_language_model` picks; ``runtime=
    "torch"`` when the torch module is needed). A LoRA adapter runs merged into its torch base model, or on
    onnxruntime in its own int4 export (:mod:`studio.ml.runtime.lora_lm`). The default is resolved by
    :func:`resolve_copy_model` (``note`` hears of a fallback)."""
    from studio.ml.train.lora import ARCH as LORA_ARCH

    device = device or resources.device
    entry = resources.store.find(resolve_copy_model(resources.store, name, note))
    runtime = runtime or copy_runtime(resources)
    if entry.arch != LORA_ARCH:
        return get_language_model(resources, entry.name, device, runtime=runtime, purpose="batch")
    return resources.runtimes.load(entry.name, device, runtime, purpose="batch")


def copy_runtime(resources: Any) -> str:
    """The runtime that writes copy: the user's choice; "auto" is measured once on this machine at the app's thread
    count on the copy generator's own work, a batch of candidates of one prompt (both runtimes keep the prompt's
    keys and values once for all rows): see
    ``RuntimeLoader.load(..., purpose="batch")`` and ``studio bench copy``."""
    return getattr(resources, "runtime", "auto")


def _number(params: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    try:
        value = float(params.get(key, default))
    except (TypeError, ValueError):
        raise BadInputError(f"{key} must be a number") from None
    if not (low <= value <= high) or math.isnan(value):
        raise BadInputError(f"{key} must be between {low:g} and {high:g}, not {value:g}")
    return value


def _locked(params: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    """``locked``: {field: {slot index: line}}: lines the user keeps while the rest is written again."""
    raw = params.get("locked") or {}
    if not isinstance(raw, Mapping):
        raise BadInputError("locked must map a field to {slot index: line}")
    found: dict[str, dict[int, str]] = {}
    for name, slots in raw.items():
        if not isinstance(slots, Mapping) or not all(isinstance(t, str) for t in slots.values()):
            raise BadInputError("locked must map a field to {slot index: line}")
        found[str(name)] = {int(i): t for i, t in slots.items()}
    return found


def request_from_spec(spec: JobSpec) -> CopyRequest:
    params = thaw(spec.params)
    brief = brief_from_dict(params.get("brief"))
    fmt = generation_format(str(params.get("format", "google-rsa")))
    framework = check_framework(str(params.get("framework", "none")))
    variants = int(_number(params, "variants", 1, 1, MAX_VARIANTS))
    sampling = SamplingParams(temperature=_number(params, "temperature", 0.7, 0.0, 2.0),
                              top_p=_number(params, "top_p", 0.9, 0.01, 1.0))
    candidates = int(_number(params, "candidates", CopyRequest.candidates, 1, MAX_CANDIDATES))
    request = CopyRequest(brief, fmt, framework, field_counts(fmt, params.get("counts")), variants, sampling,
                          seed=int(spec.seed), candidates=candidates, locked=_locked(params))
    for name in request.locked:
        fmt.field(name)  # a clear error for a field the format does not have
    check_request(request)
    return request


def recipe(spec: JobSpec, lm: LanguageModel) -> dict[str, Any]:
    """What made the lines; ``model`` is the one that wrote them (the base, when the default adapter fell back)."""
    return {"model": lm.name or spec.model, "model_sha256": lm.sha256, "kind": spec.kind, "seed": spec.seed,
            "params": thaw(spec.params)}


@task("copy.generate")
def generate_copy(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    request = request_from_spec(spec)
    note = foreign_brief_note(request.brief)
    ctx.progress(0.0, "loading the language model")
    lm = load_copy_model(ctx.resources, spec.model, ctx.device, note=ctx.note)
    for text in [note, *must_use_notes(request.brief, request.format, request.counts)]:
        if text:
            ctx.note(text)
    ads = write_ads(lm, request, on_partial=ctx.partial, cancel=ctx.check_cancel,
                    on_line=lambda done, total: ctx.progress(done / total, f"line {done} of {total}"))
    return {"ads": [ad.texts() for ad in ads], "angles": [_angles(ad) for ad in ads],
            "fallback": [_fallbacks(ad) for ad in ads], "recipe": recipe(spec, lm)}


def _angles(ad: WrittenAd) -> dict[str, list[str]]:
    return {name: [line.angle for line in lines] for name, lines in ad.lines.items()}


def _fallbacks(ad: WrittenAd) -> dict[str, list[int]]:
    """Per field, the slots filled with an extractive line from the brief (no written candidate passed)."""
    return {name: [i for i, line in enumerate(lines) if line.fallback] for name, lines in ad.lines.items()}


@task("copy.line")
def regenerate_copy_line(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    params = thaw(spec.params)
    request = request_from_spec(spec)
    field_name = str(params.get("field", ""))
    request.format.field(field_name)  # a clear error for a field the format does not have
    existing = params.get("existing") or []
    if not isinstance(existing, list) or not all(isinstance(x, str) for x in existing):
        raise BadInputError("existing must be a list of the field's current lines")
    index = int(params.get("index", len(existing)))
    lm = load_copy_model(ctx.resources, spec.model, ctx.device, note=ctx.note)

    def stream(payload: dict[str, Any]) -> None:
        if payload["index"] == index:  # the other lines are kept as they are
            ctx.partial(payload)

    line = regenerate_line(lm, request, field_name, index, existing, on_partial=stream, cancel=ctx.check_cancel)
    return {"text": line.text, "field": field_name, "index": index, "angle": line.angle, "fallback": line.fallback,
            "recipe": recipe(spec, lm)}


def speed_probe(entry: Any) -> tuple[JobSpec, Callable[[Any, float], float], str]:
    """The doctor's measure of this workspace: three headlines for the example brief, in lines per minute."""
    brief = json.loads((paths.resources_dir() / "briefs" / "examples" / "coffee-subscription.json").read_text())
    spec = JobSpec("copy.generate", {"brief": brief, "format": "google-rsa", "counts": {"headline": 3}},
                   seed=1, model=entry.name)
    return spec, lambda result, seconds: 60 * sum(len(v) for ad in result["ads"] for v in ad.values()) / seconds, \
        "lines/min"
