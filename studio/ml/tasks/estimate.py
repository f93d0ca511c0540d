"""``train.estimate``: time and memory of a training preset on this machine, from a few real training steps.

Each modality's estimator (``Training.estimator``, see :mod:`studio.core.modalities`) builds what its preset really
trains and times a few optimiser steps after a warm-up step (:func:`studio.ml.train.preflight.timed_steps`), then
multiplies by the run's steps. Memory is the measured peak on a GPU and, on the CPU, a bound from the parameters
(weights, gradients, two AdamW moments) and the activations of one batch.

Params: ``modality``, ``preset``, ``path`` (the data), ``family``, ``base`` (the model to start from, "" for a new
one, absent for what the command line picks), ``max_steps`` (0: the preset's). Payload: ``{"seconds", "steps",
"memory_mb", "device", "step_ms", "detail"}``.
"""

from __future__ import annotations

from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from studio.ml.tasks import task
from studio.ml.tasks.data import training_of
from studio.ml.train.preflight import Estimate


@task("train.estimate")
def estimate_training(spec: JobSpec, ctx: JobContext) -> Estimate:
    """Time and memory for a preset on this machine, from a few real training steps."""
    training = training_of(spec)
    preset = str(spec.params.get("preset", "quick"))
    max_steps = int(spec.params.get("max_steps", 0) or 0)
    ctx.progress(0.05, "timing a few training steps…")
    return training.estimator.load()(spec, ctx, preset, max_steps)
