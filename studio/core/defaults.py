"""Defaults the app and the command line share: the model each list opens on, the order of model lists, and the
copy model and sampling settings. Change a default here and both follow.

The copy sampling default is a function of the format so that a format that wants other settings can have them in
one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studio.core.modalities import all_modalities
from studio.core.modalities.copy import DEFAULT_COPY_MODEL

#: The model a generation workspace opens on (and the CLI uses) per modality (each modality names its own).
DEFAULT_MODELS = {m.name: m.default_model for m in all_modalities() if m.default_model}
SOURCE_ORDER = {"bundled": 0, "shared": 1, "user": 2}


@dataclass(frozen=True)
class CopyDefaults:
    model: str
    temperature: float
    top_p: float


def copy_defaults(format_name: str = "google-rsa") -> CopyDefaults:
    """The copy model and sampling for ``format_name``: the bundled self-trained adapter writes every format (it
    practised all three); the Debian adapter's own card says it is not meant for punchy headlines."""
    del format_name  # one default for every format today
    return CopyDefaults(DEFAULT_COPY_MODEL, temperature=0.7, top_p=0.9)


def default_model(modality: str) -> str:
    return DEFAULT_MODELS.get(modality, "")


def model_order(entry: Mapping[str, Any]) -> tuple:
    """Sort key of a model list: per modality the default first, then the bundled models (one per family), then
    shared and the user's own, by family and name; a user's test model never becomes the default by its name."""
    modality = str(entry.get("modality", ""))
    return (modality, entry.get("name") != default_model(modality), SOURCE_ORDER.get(str(entry.get("source")), 3),
            str(entry.get("family", "")), str(entry.get("name", "")))
