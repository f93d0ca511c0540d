"""PNGs that carry their recipe: a human-readable ``parameters`` text chunk and a ``studio`` JSON chunk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from studio.core.formats.images import open_image

JSON_KEY = "studio"
TEXT_KEY = "parameters"


def recipe_to_text(recipe: dict[str, Any]) -> str:
    """e.g. ``model: sprite-gan, category: items, seed: 7, palette: auto-16, size: 32x32``."""
    flat: dict[str, Any] = {k: v for k, v in recipe.items() if k != "params"}
    flat.update(recipe.get("params", {}))
    return ", ".join(f"{k}: {v}" for k, v in flat.items())


def save_png(path: Path, rgba: np.ndarray, recipe: dict[str, Any] | None, write_metadata: bool = True) -> Path:
    """Write an RGBA PNG; with ``write_metadata`` False no text chunk at all is written (privacy setting)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA")
    info = None
    if write_metadata and recipe:
        info = PngImagePlugin.PngInfo()
        info.add_text(TEXT_KEY, recipe_to_text(recipe))
        info.add_text(JSON_KEY, json.dumps(recipe, sort_keys=True))
    tmp = path.with_name(path.name + ".part")
    image.save(tmp, format="PNG", pnginfo=info)
    tmp.replace(path)
    return path


def read_recipe(path: Path) -> dict[str, Any] | None:
    """The recipe stored by :func:`save_png`, or None when the PNG has none (or a damaged one)."""
    image = open_image(path)
    text = getattr(image, "text", {}) or image.info
    raw = text.get(JSON_KEY)
    if not raw:
        return None
    try:
        recipe = json.loads(raw)
    except ValueError:
        return None
    return recipe if isinstance(recipe, dict) else None
