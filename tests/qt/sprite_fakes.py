"""A scriptable fake of the sprite tasks: payloads of the contract's shape with real, seeded RGBA arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.core.context import JobContext
from studio.core.jobs import JobSpec, thaw
from studio.core.sprite_ops import outline

PALETTE = np.array(
    [[0xFF, 0x00, 0x4D], [0xFF, 0xA3, 0x00], [0xFF, 0xEC, 0x27], [0x00, 0xE4, 0x36], [0x29, 0xAD, 0xFF],
     [0x83, 0x76, 0x9C], [0xFF, 0x77, 0xA8], [0xC2, 0xC3, 0xC7]],
    dtype=np.uint8,
)


def make_sprite(seed: int, size: int = 32) -> np.ndarray:
    """A little slime creature with shading, eyes and an outline: looks like pixel art, differs by seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cx, cy = (size - 1) / 2, size * 0.58
    rx, ry = size * rng.uniform(0.30, 0.42), size * rng.uniform(0.24, 0.34)
    wobble = 1 + 0.08 * np.sin(xx * rng.uniform(0.5, 1.2))
    body = ((xx - cx) / rx) ** 2 + ((yy - cy) / (ry * wobble)) ** 2 <= 1
    body[int(cy + ry * 0.8):] = False
    base, light = PALETTE[rng.choice(len(PALETTE), 2, replace=False)]
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[body, :3] = base
    rgba[body & (yy < cy - ry * 0.35), :3] = light
    rgba[body, 3] = 255
    eye_y, gap = int(cy - ry * 0.1), int(rx * rng.uniform(0.3, 0.5))
    for ex in (int(cx) - gap, int(cx) + gap):
        rgba[eye_y - 1 : eye_y + 2, ex - 1 : ex + 2] = (255, 241, 232, 255)
        rgba[eye_y : eye_y + 2, ex : ex + 1] = (29, 43, 83, 255)
    return outline(rgba, (24, 20, 37, 255))


MODELS = [
    {"name": "sprite-gan", "arch": "sprite_gan", "modality": "sprite", "family": "gan", "source": "bundled",
     "size_bytes": 1000, "categories": ["items", "monsters", "walls"], "metrics": {"fid": 41.5}, "card_path": "",
     "tags": {"words": ["skeleton", "potion", "stone", "red"],
              "category_counts": {"skeleton": {"monsters": 40}, "potion": {"items": 50}, "stone": {"walls": 30},
                                  "red": {"items": 20}}},
     "tile_categories": ["walls"]},
    {"name": "sprite-vae", "arch": "sprite_vae", "modality": "sprite", "family": "vae", "source": "user",
     "size_bytes": 1000, "categories": ["items", "monsters"], "metrics": {}, "card_path": ""},
    {"name": "sprite-diffusion", "arch": "sprite_ddpm", "modality": "sprite", "family": "diffusion",
     "source": "user", "size_bytes": 1000, "categories": ["items"], "metrics": {}, "card_path": ""},
    {"name": "smollm2", "arch": "llama", "modality": "text", "family": "transformer", "source": "bundled",
     "size_bytes": 1000, "categories": [], "metrics": {}, "card_path": ""},
]


def recipe_for(spec: JobSpec, seed: int) -> dict[str, Any]:
    params = {k: v for k, v in thaw(spec.params).items() if not isinstance(v, np.ndarray)}
    return {"model": spec.model, "model_sha256": "ab" * 32, "kind": spec.kind, "seed": seed, "params": params,
            "size": "32x32"}


def fake_list(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    return [dict(m) for m in MODELS]


def fake_list_text_only(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    return [dict(m) for m in MODELS if m["modality"] != "sprite"]


def noisy(rgba: np.ndarray, seed: int) -> np.ndarray:
    """What a model might have drawn before the finish: the sprite with colour noise."""
    noise = np.random.default_rng(seed).integers(-30, 31, rgba[..., :3].shape)
    out = rgba.copy()
    out[..., :3] = np.clip(rgba[..., :3].astype(int) + noise, 0, 255).astype(np.uint8) * (rgba[..., 3:] > 0)
    return out


def _stream(spec: JobSpec, ctx: JobContext, images: list[np.ndarray]) -> list[dict[str, Any]]:
    out = []
    for i, rgba in enumerate(images):
        item = {"index": i, "rgba": rgba, "raw": noisy(rgba, spec.seed + i), "recipe": recipe_for(spec, spec.seed + i)}
        ctx.progress((i + 1) / len(images), f"sprite {i + 1}/{len(images)}")
        ctx.partial(item)
        out.append(item)
    return out


def fake_generate(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    return _stream(spec, ctx, [make_sprite(spec.seed + i) for i in range(int(spec.params["count"]))])


def fake_variations(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    base = np.asarray(spec.params["rgba"])
    images = []
    for i in range(int(spec.params["count"])):
        rgba = base.copy()
        rgba[base[..., 3] > 0, 0] = (40 * (i + 1)) % 256
        images.append(rgba)
    return _stream(spec, ctx, images)


def fake_blend(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    a, b = np.asarray(spec.params["a"]).astype(float), np.asarray(spec.params["b"]).astype(float)
    frames = int(spec.params["frames"])
    images = [np.rint(a + (b - a) * t).astype(np.uint8) for t in np.linspace(0, 1, frames)]
    return _stream(spec, ctx, images)


def fake_inpaint(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    rgba = np.asarray(spec.params["rgba"]).copy()
    rgba[np.asarray(spec.params["mask"])] = (255, 0, 77, 255)
    return {"rgba": rgba, "recipe": recipe_for(spec, spec.seed)}


def fake_fail(spec: JobSpec, ctx: JobContext) -> None:
    from studio.core.errors import BadInputError

    raise BadInputError("category 'dragons' is not one this model was trained on")


TASKS = {
    "models.list": fake_list,
    "sprite.generate": fake_generate,
    "sprite.variations": fake_variations,
    "sprite.blend": fake_blend,
    "sprite.inpaint": fake_inpaint,
}
