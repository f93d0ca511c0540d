"""Typed job requests: frozen dataclasses that check their fields when made, travel as plain dicts (the recipe that
goes into every output file) and come back from them, as krita-ai-diffusion's ``api.py`` does for its workflows.

A request class declares its job ``kind`` and its fields (the seed among them); ``number(...)`` and ``choice(...)``
give a field its range or its choices. ``request.spec(model)`` is the ``JobSpec`` the engine runs and
``Request.from_spec(spec)`` is what the task reads back, so a recipe read from a file is checked like a form.

Usage::

    @dataclass(frozen=True)
    class VoiceRequest(Request):
        kind: ClassVar[str] = "voice.speak"
        text: str = ""
        speed: float = number(1.0, 0.5, 2.0)
        seed: int = 0

    spec = VoiceRequest(text="Hello").spec("cmu-us-slt")
    request = VoiceRequest.from_spec(spec)              # in the task
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec, thaw


def number(default: float | int, low: float, high: float) -> Any:
    """A numeric field that must lie in [low, high]."""
    return dataclasses.field(default=default, metadata={"range": (low, high)})


def choice(default: str, options: tuple[str, ...]) -> Any:
    """A text field that must be one of ``options``."""
    return dataclasses.field(default=default, metadata={"choices": options})


class Request:
    """Base of the request dataclasses (each is ``@dataclass(frozen=True)`` and declares ``kind`` and ``seed``)."""

    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            low_high = spec.metadata.get("range")
            if low_high is not None:
                low, high = low_high
                if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) \
                        or not low <= value <= high:
                    raise BadInputError(f"{_label(spec.name)} must be a number from {low:g} to {high:g}, not "
                                        f"{value!r}")
            options = spec.metadata.get("choices")
            if options is not None and value not in options:
                raise BadInputError(f"{_label(spec.name)} must be one of {', '.join(options)}, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The request as plain data (lists, dicts, str, numbers): the recipe."""
        return _encode(self)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The request a recipe describes; wrong types, unknown fields and values out of range are BadInputError."""
        return _decode(cls, data, cls.__name__)

    def spec(self, model: str = "") -> JobSpec:
        params = self.to_dict()
        seed = params.pop("seed", 0)
        return JobSpec(self.kind, params, seed=int(seed), model=model)

    @classmethod
    def from_spec(cls, spec: JobSpec) -> Self:
        params = thaw(spec.params)
        if not isinstance(params, dict):
            raise BadInputError(f"the parameters of a {spec.kind} job must be a mapping")
        return cls.from_dict({**params, "seed": spec.seed})


def _label(name: str) -> str:
    return name.replace("_", " ")


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a field left None is not given
        fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {name: _encode(item) for name, item in fields if item is not None}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _decode(option, value, where)
            except BadInputError as exc:
                problems.append(str(exc))
        raise BadInputError(problems[0] if problems else f"{where} is missing")
    if dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, value, where)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            raise BadInputError(f"{where} must be a list")
        return tuple(_decode(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or kind is dict:
        if not isinstance(value, Mapping):
            raise BadInputError(f"{where} must be a mapping")
        args = typing.get_args(kind)
        item = args[1] if args else Any
        return {str(k): _decode(item, v, f"{where}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            raise BadInputError(f"{where} must be one of {', '.join(str(m.value) for m in kind)}") from None
    if kind is bool:
        if not isinstance(value, bool):
            raise BadInputError(f"{where} must be true or false, not {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInputError(f"{where} must be a whole number, not {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadInputError(f"{where} must be a number, not {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise BadInputError(f"{where} must be text, not {type(value).__name__}")
        return value
    raise TypeError(f"requests cannot hold {kind!r} ({where})")


def _decode_dataclass(cls: Any, value: Any, where: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise BadInputError(f"{where} must be a mapping, not {type(value).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise BadInputError(f"{where} has no field {', '.join(map(repr, unknown))} (it has: {', '.join(fields)})")
    values = {name: _decode(hints[name], value[name], _label(name)) for name in fields if name in value}
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise BadInputError(f"{where}: {exc}") from None
