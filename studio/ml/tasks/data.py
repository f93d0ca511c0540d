"""Tasks behind the Train workspace: what a data folder holds and an augmentation preview, each through the
modality's own preflight parts (``Training.inspector``/``preview``, see :mod:`studio.core.modalities`)."""

from __future__ import annotations

from typing import Any

from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec
from studio.core.modalities import get as get_modality
from studio.core.modality import Training
from studio.ml.tasks import task
from studio.ml.train.preflight import data_path


def training_of(spec: JobSpec) -> Training:
    """The training parts of the request's modality (a modality that does not train is refused by name)."""
    name = str(spec.params.get("modality", "sprite"))
    try:
        training = get_modality(name).training
    except KeyError:
        raise BadInputError(f"unknown modality {name!r}") from None
    if training is None:
        raise BadInputError(f"{name!r} models are not trained in Studio")
    return training


@task("data.inspect")
def inspect_data(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    training = training_of(spec)
    path = data_path(spec)
    ctx.progress(0.1, f"reading {path.name}…")
    return training.inspector.load()(path, int(spec.params.get("grid", 0) or 0))


@task("data.augment_preview")
def augment_preview_task(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    training = training_of(spec)
    if training.preview is None:
        raise BadInputError("augmentations are previewed for sprites only")
    return training.preview.load()(spec, ctx)
