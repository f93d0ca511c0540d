"""PNGs that carry their recipe: a human-readable ``parameters`` text chunk and a ``studio`` JSON chunk."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from studio.core.errors import BadInputError
from studio.core.formats.images import open_image
from studio.core.recipe import parse_recipe
from studio.core.safe_write import write_atomic

JSON_KEY = "studio"
TEXT_KEY = "parameters"


def recipe_to_text(recipe: dict[str, Any]) -> str:
    """e.g. ``model: sprite-gan, category: items, seed: 7, palette: auto-16, size: 32x32``."""
    flat: dict[str, Any] = {k: v for k, v in recipe.items() if k != "params"}
    params = recipe.get("params", {})
    flat.update(params if isinstance(params, dict) else {})
    return ", ".join(f"{k}: {v}" for k, v in flat.items())


def save_png(path: Path, rgba: np.ndarray, recipe: dict[str, Any] | None, write_metadata: bool = True) -> Path:
    """Write an RGBA PNG crash-safely; with ``write_metadata`` False no text chunk at all is written (privacy)."""
    path = Path(path)
    return write_atomic(path, png_bytes(rgba, recipe if write_metadata else None), f"the image {path.name}")


def png_bytes(rgba: np.ndarray, recipe: dict[str, Any] | None) -> bytes:
    """An RGBA PNG in memory, with the recipe's text chunks when there is one."""
    image = Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA")
    info = None
    if recipe:
        info = PngImagePlugin.PngInfo()
        info.add_text(TEXT_KEY, recipe_to_text(recipe))
        info.add_text(JSON_KEY, json.dumps(recipe, sort_keys=True))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_recipe(path: Path) -> dict[str, Any] | None:
    """The recipe stored by :func:`save_png`, None when the PNG has none; BadInputError (saying the image itself
    is fine) when the chunk is not a recipe Studio can use."""
    image = open_image(path)
    text = getattr(image, "text", {}) or image.info
    raw = text.get(JSON_KEY)
    if not raw:
        return None
    if not isinstance(raw, str | bytes):
        raise BadInputError(f"{Path(path).name}: its recipe chunk is not text")
    return parse_recipe(raw, Path(path).name)

