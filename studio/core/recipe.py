"""Recipes read back from files (PNG text chunks, WAV/FLAC/OGG comment tags, JSON sidecars) are untrusted data.

A recipe is the JSON object :meth:`studio.core.jobs.JobSpec.recipe` writes: ``{kind, model, seed, params{...}}``.
:func:`parse_recipe` / :func:`check_recipe` return it only in the shape every reader relies on (an object whose
``params`` is an object, strings and whole numbers where those belong, bounded in size, depth and magnitude) and
raise :class:`BadInputError` otherwise. The field helpers turn a value into one a widget accepts (clamped to its
range) or None, so restoring a recipe can never overflow a spin box or follow a path it should not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import BadInputError
from studio.core.formats.json_file import expect_object, parse_json
from studio.core.formats.palette import SUFFIXES, bundled_palettes
from studio.core.music_theory import parse_meter

MAX_RECIPE_BYTES = 64 << 10
MAX_RECIPE_DEPTH = 8
TEXT_FIELDS = ("kind", "model")
_AUTO_PALETTE = re.compile(r"auto-\d{1,3}")


def check_recipe(value: Any, source: str) -> dict[str, Any]:
    """``value`` (decoded JSON) as a recipe, or BadInputError naming ``source`` and what is wrong."""
    recipe = expect_object(value, f"the recipe in {source}")
    for key in TEXT_FIELDS:
        if key in recipe and not isinstance(recipe[key], str):
            raise BadInputError(f"the recipe in {source}: '{key}' must be text, not {type(recipe[key]).__name__}")
    seed = recipe.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise BadInputError(f"the recipe in {source}: 'seed' must be a whole number")
    if "params" in recipe and not isinstance(recipe["params"], dict):
        found = type(recipe["params"]).__name__
        raise BadInputError(f"the recipe in {source}: 'params' must be an object, not {found}")
    return recipe


def parse_recipe(text: str | bytes, source: str) -> dict[str, Any]:
    """A recipe from JSON text (at most 64 KB, 8 levels deep)."""
    return check_recipe(parse_json(text, f"the recipe in {source}", MAX_RECIPE_BYTES, MAX_RECIPE_DEPTH), source)


def recipe_or_problem(read: Callable[[Path], dict[str, Any] | None], path: Path) -> tuple[dict[str, Any] | None, str]:
    """(``read(path)`` or None, "" or why the recipe was left out), for opening a file whose image or audio is
    fine either way: a damaged recipe costs the recipe, never the file."""
    try:
        return read(path), ""
    except BadInputError as exc:
        return None, f"Its recipe was not restored: {exc}."


def whole_number(value: Any, low: int, high: int) -> int | None:
    """``value`` clamped to [low, high] when it is a whole number (not a bool), else None."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return max(low, min(high, value))


def real_number(value: Any, low: float, high: float) -> float | None:
    """``value`` clamped to [low, high] when it is a finite number (not a bool), else None."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    number = float(value) if abs(value) < 1e308 else math.copysign(math.inf, value)  # ints beyond float range
    return max(low, min(high, number))


def meter_choice(value: Any) -> str | None:
    """``value`` when it is a meter Studio supports ('4/4', '6/8', ...), else None."""
    try:
        return parse_meter(value).label if isinstance(value, str) else None
    except BadInputError:
        return None


def trusted_folders() -> list[Path]:
    """Where a palette named by a recipe may be read from without asking: Studio's own folders and the output
    folder in Settings (a recipe from someone else's file must not make Studio read anywhere it likes)."""
    from studio.core.settings import load_settings

    return [paths.resources_dir(), paths.data_dir(), paths.config_dir(), load_settings().resolved_output_dir]


def palette_choice(value: Any, trusted: Sequence[Path] | None = None) -> tuple[str | None, str]:
    """(palette spec to restore or None, problem to tell the user or ""). Files are accepted only as .hex/.gpl
    inside ``trusted`` (default :func:`trusted_folders`)."""
    if not isinstance(value, str) or not value.strip():
        return None, ""
    spec = value.strip()
    if spec.lower() == "none" or _AUTO_PALETTE.fullmatch(spec.lower()) or spec in bundled_palettes():
        return spec, ""
    path = Path(spec).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        return None, f"palette {spec[:80]!r} is not a .hex or .gpl file"
    resolved = path.resolve()
    for folder in trusted if trusted is not None else trusted_folders():
        if resolved.is_relative_to(Path(folder).expanduser().resolve()):
            return str(path), ""
    return None, (f"palette {spec[:80]} is outside Studio's folders, so it was not read; load it with "
                  "'Load file…' if you trust it")
