"""The registered modalities. Adding one is one line here (its module below, which names all its parts)."""

from __future__ import annotations

import functools
import importlib

from studio.core.modality import Modality, Ref

#: The modules of this package that describe a modality, in the order the app shows them.
REGISTERED = (
    "sprite",
    "copy",
    "music",
    "voice",
)


@functools.cache
def all_modalities() -> tuple[Modality, ...]:
    found = tuple(importlib.import_module(f"{__name__}.{name}").MODALITY for name in REGISTERED)
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        raise ValueError(f"a modality is registered twice: {names}")
    return found


def get(name: str) -> Modality:
    for modality in all_modalities():
        if modality.name == name:
            return modality
    known = ", ".join(m.name for m in all_modalities())
    raise KeyError(f"unknown modality {name!r} (known: {known})")


def trainable() -> tuple[Modality, ...]:
    return tuple(m for m in all_modalities() if m.training is not None)


def _part(kind: str, arch: str) -> Ref | None:
    for modality in all_modalities():
        ref = getattr(modality, kind).get(arch)
        if ref is not None:
            return ref
    return None


def runtime_adapter(arch: str) -> Ref | None:
    """The runtime adapter (:mod:`studio.ml.runtime.loader`) of architecture ``arch``, None when none runs it."""
    return _part("runtimes", arch)


def step_adapter(arch: str) -> Ref | None:
    """How to feed ``arch``'s ONNX decoding graph token by token (export checks), None for other graphs."""
    return _part("step_adapters", arch)


def export_check(arch: str) -> Ref | None:
    """What measures a quantised export of ``arch`` (recorded in its export record), None for nothing."""
    return _part("export_checks", arch)


def for_extension(suffix: str) -> Modality | None:
    """The modality whose workspace opens files ending in ``suffix`` (".png"), None when none does."""
    return next((m for m in all_modalities() if suffix.lower() in m.opens), None)


def model_file_patterns() -> tuple[str, ...]:
    """What the model store scans for, over every modality (each with a JSON sidecar beside it)."""
    return tuple(dict.fromkeys(p for m in all_modalities() for p in m.model_files))
