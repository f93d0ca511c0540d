"""JSON from files Studio did not necessarily write itself (recipes, sidecars, briefs, settings, run records).

One reader with limits, so that no such file can crash a caller: bounded size and nesting depth, no integer beyond
64 bits, text that is UTF-8 (NaN and Infinity are read as Python writes them); any failure is the caller's error type (a
:class:`~studio.core.errors.StudioError`) with a message that names the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.core.errors import BadInputError, StudioError

MAX_JSON_BYTES = 16 << 20
MAX_DEPTH = 32
MAX_INT = 2**63 - 1


def _check_tree(value: Any, source: str, max_depth: int, error: type[StudioError]) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise error(f"{source} is nested more than {max_depth} levels deep: not a file Studio wrote")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int) and not isinstance(item, bool) and not -MAX_INT - 1 <= item <= MAX_INT:
            raise error(f"{source} holds a number too large to use ({str(item)[:20]}…)")


def parse_json(text: str | bytes, source: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH,
               error: type[StudioError] = BadInputError) -> Any:
    """Decode JSON ``text`` (from ``source``, e.g. a file name) within the limits; ``error`` otherwise."""
    if len(text) > max_bytes:
        raise error(f"{source} is larger than {max_bytes >> 10} KB: not a file Studio can read safely")
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise error(f"{source} is not UTF-8 text") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise error(f"{source} is nested too deeply: not a file Studio wrote") from None
    except ValueError as exc:  # JSONDecodeError, integers of more than 4300 digits
        raise error(f"{source} is not valid JSON ({str(exc)[:120]})") from None
    _check_tree(value, source, max_depth, error)
    return value


def read_json(path: Path, source: str | None = None, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH,
              error: type[StudioError] = BadInputError) -> Any:
    """:func:`parse_json` of a file; a missing or unreadable file is ``error`` too."""
    path = Path(path)
    source = source or path.name
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{source} is {size >> 10} KB: larger than the {max_bytes >> 10} KB Studio reads safely")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{source}: no such file") from None
    except OSError as exc:
        raise error(f"{source} cannot be read ({exc.strerror or exc})") from None
    return parse_json(raw, source, max_bytes, max_depth, error)


def expect_object(value: Any, source: str, error: type[StudioError] = BadInputError) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``error`` (a list or a string where an object belongs)."""
    if not isinstance(value, dict):
        raise error(f"{source} does not hold a JSON object (found {type(value).__name__})")
    return value
