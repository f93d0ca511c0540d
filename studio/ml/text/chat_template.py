"""Rendering a model's Jinja chat template the way Hugging Face's ``apply_chat_template`` does, sandboxed.

The template comes from the model file, so it runs in Jinja's immutable sandbox (no attribute tricks, no
mutation of the messages) with the same options and helpers (``raise_exception``, ``tojson``) as the reference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from studio.core.errors import BadInputError, ModelFileError


class _TemplateRaised(Exception):
    pass


def _raise_exception(message: str) -> None:
    raise _TemplateRaised(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@lru_cache(maxsize=8)
def _compile(source: str) -> Any:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise ModelFileError(f"the model's chat template is not valid Jinja: {exc}") from None


def render_chat_template(
    source: str, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True, **extra: Any
) -> str:
    """The prompt text for ``messages`` (dicts with ``role`` and ``content``)."""
    for message in messages:
        if not isinstance(message.get("role"), str) or not isinstance(message.get("content"), str):
            raise BadInputError("each chat message needs a 'role' and a 'content' text")
    template = _compile(source)
    try:
        return template.render(
            messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt, **extra
        )
    except _TemplateRaised as exc:
        raise BadInputError(f"the model's chat template refused these messages: {exc}") from None
    except TemplateError as exc:
        raise ModelFileError(f"the model's chat template failed: {exc}") from None
