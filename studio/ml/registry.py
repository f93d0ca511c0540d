"""Architecture registry: name -> config dataclass, module builder and optional ONNX spec.

An *architecture* (``sprite-gan``) is registered here in code; a *model* is a trained file that names its
architecture in its JSON sidecar (see :mod:`studio.ml.checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class OnnxGraph:
    """One exportable graph of an architecture (a model may export several, e.g. a UNet step and a decoder)."""

    name: str
    wrap: Callable[[nn.Module], nn.Module]  # returns the module whose forward is exported
    example_inputs: Callable[[Any, int], tuple[torch.Tensor, ...]]  # (config, batch) -> inputs
    input_names: Sequence[str]
    output_names: Sequence[str]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    atol: float = 1e-4
    rtol: float = 1e-3
    tagged: bool = False  # takes a trailing "tags" input (N, T) when the model's config has num_tags > 0

    def inputs_for(self, config: Any) -> list[str]:
        """The graph's input names for a model of ``config`` (the tag input only where the model has tags)."""
        names = list(self.input_names)
        return [*names, "tags"] if self.tagged and getattr(config, "num_tags", 0) else names

    def axes_for(self, config: Any) -> dict[str, dict[int, str]]:
        """``dynamic_axes`` restricted to the inputs and outputs this model's graph has."""
        present = {*self.inputs_for(config), *self.output_names}
        return {name: axes for name, axes in self.dynamic_axes.items() if name in present}


@dataclass(frozen=True)
class Architecture:
    name: str
    modality: str  # "sprite" | "copy" | "music" | "eval"
    family: str  # "gan" | "vae" | "diffusion" | "transformer" | ...
    config_cls: type
    build: Callable[[Any], nn.Module]
    onnx: tuple[OnnxGraph, ...] = ()
    description: str = ""

    def tiny_config(self) -> Any:
        return self.config_cls.tiny()


_ARCHITECTURES: dict[str, Architecture] = {}


class DuplicateArchitectureError(ValueError):
    pass


def register(arch: Architecture) -> Architecture:
    if arch.name in _ARCHITECTURES:
        raise DuplicateArchitectureError(f"architecture {arch.name!r} is registered twice")
    if not hasattr(arch.config_cls, "tiny"):
        raise TypeError(f"{arch.config_cls.__name__} needs a tiny() classmethod for tests")
    _ARCHITECTURES[arch.name] = arch
    return arch


def _load_builtin() -> None:
    # Importing the model modules registers them; kept lazy so `studio --help` stays fast.
    import studio.ml.models  # noqa: F401


def get(name: str) -> Architecture:
    _load_builtin()
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(_ARCHITECTURES)) or "none"
        raise KeyError(f"unknown architecture {name!r} (known: {known})") from None


def names() -> list[str]:
    _load_builtin()
    return sorted(_ARCHITECTURES)


def all_architectures() -> list[Architecture]:
    _load_builtin()
    return [_ARCHITECTURES[n] for n in sorted(_ARCHITECTURES)]
