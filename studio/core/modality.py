"""What a modality (sprites, copy, music, voice) is: one object that names all its parts.

Generic code (the main window, the Train and Models workspaces, the command line, the runtime loader, ONNX export)
iterates over the registered modalities (:mod:`studio.core.modalities`) and never branches on a modality's name.
Parts that live in other layers are :class:`Ref` strings (``"package.module:attribute"``), resolved by the layer
that uses them, so this module stays pure Python and every layer keeps its import rules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Ref:
    """``"studio.ml.tasks.sprite"`` (a module) or ``"studio.ml.runtime.sprites:ADAPTER"`` (an attribute of one)."""

    target: str

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    def load(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module


@dataclass(frozen=True)
class Family:
    """A kind of model a training run can make: its label in the Train workspace, its key, its architecture."""

    label: str
    key: str
    arch: str


@dataclass(frozen=True)
class TrainChoice:
    """What the Train workspace's form says, from which a modality builds its ``studio train`` arguments.

    ``base``: None when nothing is chosen (the command's default), "" for a new model, else a model name."""

    family: str
    data: str
    preset: str
    name: str
    base: str | None = None
    grid: int = 0
    licence: str = ""
    max_steps: int = 0
    threads: int = 0
    resume: bool = False

    def common_args(self, threads: bool = True) -> list[str]:
        """The arguments every ``studio train`` command takes, in the order the commands document them."""
        args = ["--data", self.data, "--preset", self.preset, "--name", self.name]
        if self.licence:
            args += ["--licence", self.licence]
        if self.max_steps:
            args += ["--max-steps", str(self.max_steps)]
        if threads and self.threads:
            args += ["--threads", str(self.threads)]
        return args + (["--resume"] if self.resume else [])


@dataclass(frozen=True)
class Training:
    """How a modality trains on the user's data: what the Train workspace shows and which parts it calls."""

    families: tuple[Family, ...]
    command: Callable[[TrainChoice], list[str]]  # the arguments after ``studio train``
    inspector: Ref  # ml: (path, grid) -> {"usable", "counts", "rejected"}
    estimator: Ref  # ml: (params, ctx, preset, max_steps) -> {"seconds", "steps", "memory_mb", ...}
    data_hint: str
    sample_hint: str
    name_hint: str
    base_tooltip: str
    first_base: str = ""  # the base model listed first; "" for the family's own architecture name
    from_scratch: bool = True  # "Nothing: train a new model" is a choice
    needs_base: str = ""  # what to say when a base model is needed and none is installed
    exportable: bool = True  # its trained models export to ONNX
    sheet_grid: bool = False  # its data may be a sheet sliced on a grid
    preview: Ref | None = None  # ml: augmentation preview (params, seed, job id) -> {"path"}

    def family(self, key: str) -> Family:
        return next((f for f in self.families if f.key == key), self.families[0])


@dataclass(frozen=True)
class Modality:
    """One modality: its name (also the ``modality`` of its models in the store), label, workspace, tasks, command
    line, runtimes, exports and training."""

    name: str
    label: str  # what lists call it ("Ad copy")
    title: str  # its workspace's title ("Copy")
    icon: str
    workspace: Ref  # ui: (engine, settings) -> Workspace
    tasks: tuple[Ref, ...]  # ml modules whose ``@task`` functions are its jobs
    cli: tuple[Ref, ...]  # cli modules with an ``add_commands(groups)``
    default_model: str = ""  # what its workspace and commands open on
    opens: tuple[str, ...] = ()  # file extensions its workspace opens (drag and drop, File > Open)
    exports: tuple[str, ...] = ()  # what it writes, for help texts
    model_files: tuple[str, ...] = ("*.safetensors",)  # the model store lists these (with a JSON sidecar)
    runtimes: Mapping[str, Ref] = field(default_factory=dict)  # architecture -> runtime adapter (ml.runtime)
    step_adapters: Mapping[str, Ref] = field(default_factory=dict)  # architecture -> ONNX decoding steps
    export_checks: Mapping[str, Ref] = field(default_factory=dict)  # architecture -> quality of quantised exports
    describe: Ref | None = None  # ml: model sidecar meta -> extra fields for model lists
    speed_probe: Ref | None = None  # ml: store entry -> (its usual job, rate(result, seconds), unit) for the doctor
    training: Training | None = None
    takes_text: bool = False  # other workspaces can send it text (Edit > Send text to …)
    prepares: bool = False  # shows the first-run background preparation of its model

    def __post_init__(self) -> None:
        for name in ("runtimes", "step_adapters", "export_checks"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
