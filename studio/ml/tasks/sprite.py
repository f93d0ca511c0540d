"""Sprite jobs: ``sprite.generate`` (any sprite model), ``sprite.variations`` and ``sprite.blend`` (VAE) and
``sprite.inpaint`` (diffusion). Payloads follow the contract in the shared brief: each sprite is
``{"index", "rgba": HxWx4 uint8, "recipe"}`` and sprite ``i`` of a job is made from seed ``seed + i``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec, thaw
from studio.core.pixel_finish import FinishOptions, finish_sprites
from studio.core.sprite_ops import AUTO_PALETTE, check_rgba, quantize, resolve_palette
from studio.core.sprite_tags import MAX_PROMPT_CHARS, TagVocabulary
from studio.ml.data.augment import tile_categories
from studio.ml.manifest import read_manifest
from studio.ml.models.sprite_common import SPRITE_SIZE, circular_padding, images_to_tensor, tensor_to_images
from studio.ml.runtime.sprites import SpriteRuntime
from studio.ml.sampling.ddim import ddim_sample
from studio.ml.sampling.sprites import seeded_generators
from studio.ml.store import ModelEntry
from studio.ml.tasks import task

MAX_COUNT = 1024
BATCH = {"gan": 64, "vae": 64, "diffusion": 16}  # sprites per forward pass (halved after a CUDA OOM)
SIZE = f"{SPRITE_SIZE}x{SPRITE_SIZE}"
SPRITE_ARCHS = ("sprite-gan", "sprite-vae", "sprite-diffusion")


class LoadedSpriteModel(nn.Module):
    """A sprite network plus what jobs need to know about its file; the network and its runtime come from the
    worker's runtime loader (and stay in its model cache)."""

    def __init__(
        self, net: nn.Module, name: str, categories: list[str], sha256: str, vocabulary: TagVocabulary,
        sampler: SpriteRuntime | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.sampler = sampler or SpriteRuntime(net, {})  # what generates: torch or onnxruntime
        self.name = name
        self.categories = categories
        self.sha256 = sha256
        self.vocabulary = vocabulary

    @property
    def family(self) -> str:
        return self.net.family

    def label(self, category: Any) -> int:
        if category not in self.categories:
            raise BadInputError(
                f"{self.name} knows no category {category!r}; it knows: {', '.join(self.categories)}"
            )
        return self.categories.index(category)

    def condition(self, params: Mapping[str, Any], ctx: JobContext) -> tuple[str, tuple[str, ...]]:
        """The category and tags a request asks for: its prompt read in the model's vocabulary (unknown words are
        reported and left out; only unknown words is an error), its category given or inferred from the words."""
        prompt = params.get("prompt") or ""
        if not isinstance(prompt, str):
            raise BadInputError("the prompt must be text")
        category = params.get("category") or None
        if not prompt.strip():
            if category is None:
                raise BadInputError("pick a category or type a few words (e.g. 'skeleton', 'red potion')")
            return category, ()
        if not len(self.vocabulary):
            raise BadInputError(f"{self.name} was trained without words: pick a category and leave the prompt empty")
        reading = self.vocabulary.read(prompt)
        if not reading.tags:
            examples = ", ".join(self.vocabulary.words[:12])
            raise BadInputError(f"{self.name} knows none of the words in the prompt. {reading.explain()} "
                                f"Words it knows include: {examples} (the prompt field completes them).")
        if reading.explain() or len(prompt) > MAX_PROMPT_CHARS:
            ctx.note(reading.explain() or f"Only the first {MAX_PROMPT_CHARS} characters of the prompt are read.")
        return category or self.vocabulary.category_of(reading.tags) or self.categories[0], reading.tags

    def tag_tensor(self, tags: tuple[str, ...], count: int) -> torch.Tensor | None:
        """(count, T) multi-hot rows for the model's tag input (None for a model without tags)."""
        if not len(self.vocabulary):
            return None
        row = torch.zeros(len(self.vocabulary))
        for tag in tags:
            row[self.vocabulary.index(tag)] = 1.0
        return row.expand(count, -1).clone()


def _load(ctx: JobContext, name: str, runtime: str | None = None) -> LoadedSpriteModel:
    """Model ``name`` from the runtime loader (torch or onnxruntime, as ``runtime`` or the settings say)."""
    store = ctx.resources.store
    entry = store.find(name)
    if entry.arch not in SPRITE_ARCHS:
        raise BadInputError(f"{name!r} is a {entry.arch} model, not a sprite generator: pick a sprite model")
    sampler = ctx.resources.runtimes.load(entry.name, ctx.device, runtime)  # kept in the worker's model cache
    net, meta = sampler.net, sampler.meta
    categories = list(meta.get("categories") or [])
    if len(categories) != net.config.num_classes:
        categories = [str(i) for i in range(net.config.num_classes)]
    vocabulary = TagVocabulary.from_dict(meta.get("tags"))
    if len(vocabulary) != getattr(net.config, "num_tags", 0):
        raise BadInputError(f"{name}: its sidecar lists {len(vocabulary)} words but the network has "
                            f"{getattr(net.config, 'num_tags', 0)} tag inputs; the model files do not belong "
                            "together")
    return LoadedSpriteModel(net, name, categories, _sha256(ctx.resources, entry), vocabulary, sampler)


def _sha256(resources: Any, entry: ModelEntry) -> str:
    """A bundled model's hash is in the manifest (already checked); others are hashed once by the runtime loader."""
    if entry.source == "bundled":
        listed = read_manifest(resources.store.bundled).get(entry.name)
        relative = entry.weights.relative_to(resources.store.bundled).as_posix()
        if listed and relative in listed.files:
            return listed.files[relative]
    return resources.runtimes.weights_hash(entry.weights)


def _require(model: LoadedSpriteModel, family: str, what: str) -> None:
    if model.family != family:
        raise BadInputError(f"{what} needs a {family.upper()} sprite model; {model.name} is a {model.family} model")


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise BadInputError(f"{key} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def _float(params: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not low <= value <= high:
        raise BadInputError(f"{key} must be a number from {low} to {high}, not {value!r}")
    return float(value)


def _sprite(params: Mapping[str, Any], key: str) -> np.ndarray:
    if key not in params:
        raise BadInputError(f"this job needs a sprite in {key!r}")
    rgba = check_rgba(params[key])
    if rgba.shape[:2] != (SPRITE_SIZE, SPRITE_SIZE):
        raise BadInputError(f"sprite models work on {SIZE} sprites; this one is {rgba.shape[1]}x{rgba.shape[0]}")
    return rgba


def _recipe_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as JSON-ready data; images and masks are recorded by their sha256, not their pixels."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            out[key] = "sha256:" + hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
        else:
            out[key] = thaw(value)
    return out


class _Finisher:
    """The pixel-art finish (or, switched off, only crisp alpha) and the palette for each sprite, then its recipe;
    hands each sprite over as a PARTIAL event with the model's raw output beside it (the canvas can undo the finish).

    Palettes: ``none`` lets the finish choose up to ``max_colours`` per sprite, ``auto-N`` up to N, a named or
    .hex/.gpl palette maps every sprite onto it."""

    def __init__(self, ctx: JobContext, model: LoadedSpriteModel, params: dict[str, Any], tile: bool = False) -> None:
        self.ctx = ctx
        self.model = model
        self.palette_spec = str(params.get("palette", "none"))
        finish = FinishOptions.from_dict(params.get("finish"))
        automatic = AUTO_PALETTE.fullmatch(self.palette_spec.lower())
        if automatic:  # check the spec now, not after the model has run
            resolve_palette(self.palette_spec, np.zeros((1, 1, 4), dtype=np.uint8))
            finish = replace(finish, max_colours=int(automatic.group(1)))
        self.palette = None if automatic else resolve_palette(self.palette_spec)
        self.options = replace(finish, wrap=tile)
        self.params = {**params, "finish": self.options.to_dict()}
        self.results: list[dict[str, Any]] = []

    def finish(self, images: np.ndarray) -> np.ndarray:
        """The finished sprites of a batch (N, 32, 32, 4), all at once."""
        if not self.options.enabled and self.palette is not None:
            return np.stack([quantize(rgba, self.palette) for rgba in images])
        return finish_sprites(images, self.options, self.palette)

    def recipe(self, index: int) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "model_sha256": self.model.sha256,
            "kind": self.ctx.spec.kind,
            "seed": self.ctx.spec.seed + index,
            "params": self.params,
            "size": SIZE,
        }

    def add(self, images: np.ndarray) -> None:
        for rgba, finished in zip(images, self.finish(images), strict=True):
            index = len(self.results)
            item = {"index": index, "rgba": finished, "raw": rgba, "recipe": self.recipe(index)}
            self.results.append(item)
            self.ctx.partial(item)


def _tiling(params: Mapping[str, Any], category: str) -> bool:
    tile = params.get("tile", False)
    if not isinstance(tile, bool):
        raise BadInputError("tile must be true or false")
    if tile and category not in tile_categories():
        raise BadInputError(f"only {' and '.join(sorted(tile_categories()))} sprites can tile seamlessly; "
                            f"{category!r} sprites stand alone")
    return tile


def _chunks(total: int, family: str, ctx: JobContext) -> list[tuple[int, int]]:
    size = max(1, int(BATCH[family] * ctx.batch_scale))
    return [(start, min(total, start + size)) for start in range(0, total, size)]


@task("sprite.generate")
def generate_sprites(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    """``count`` new sprites of one category, or of the words of a prompt, from any sprite model (diffusion: DDIM
    with guidance)."""
    model = _load(ctx, spec.model)
    params = spec.params
    category, tags = model.condition(params, ctx)
    label = model.label(category)
    count = _int(params, "count", 16, 1, MAX_COUNT)
    steps = _int(params, "steps", 10, 1, getattr(model.net.config, "timesteps", 1000))
    guidance = _float(params, "guidance", 2.0, 0.0, 20.0)
    prompt = str(params.get("prompt") or "")[:MAX_PROMPT_CHARS]
    tile = _tiling(params, category)
    if tile and model.sampler.runtime != "torch":
        ctx.note("Seamless tiles are drawn with PyTorch: an ONNX graph cannot switch its padding to wrap around.")
        model = _load(ctx, spec.model, runtime="torch")
    clean = {"category": category, "prompt": prompt, "tags": list(tags), "count": count,
             "palette": str(params.get("palette", "none")), "steps": steps, "guidance": guidance, "tile": tile,
             "finish": params.get("finish")}
    finisher = _Finisher(ctx, model, clean, tile)
    chunks = _chunks(count, model.family, ctx)
    with circular_padding(model.net, tile):
        for number, (start, stop) in enumerate(chunks):
            images = model.sampler.generate(
                torch.full((stop - start,), label), seeded_generators(spec.seed + start, stop - start),
                steps=steps, guidance=guidance, on_step=_chunk_progress(ctx, number, len(chunks), start, stop, count),
                tags=model.tag_tensor(tags, stop - start),
            )
            finisher.add(tensor_to_images(images))
    return finisher.results


def _chunk_progress(ctx: JobContext, number: int, chunks: int, start: int, stop: int, count: int):
    def on_step(done: int, total: int) -> None:
        ctx.progress((number + done / total) / chunks, f"sprites {start + 1}-{stop} of {count}")

    return on_step


def _encode(model: LoadedSpriteModel, rgba: np.ndarray, label: int) -> torch.Tensor:
    device = next(model.net.parameters()).device
    mean, _ = model.net.encode(images_to_tensor(rgba).to(device), torch.tensor([label], device=device))
    return mean[0]


@task("sprite.variations")
@torch.no_grad()
def sprite_variations(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    """Sprites near a picked one: its latent code mixed with fresh noise, ``strength`` 0 (same) to 1 (any)."""
    model = _load(ctx, spec.model, runtime="torch")  # the graphs cover generation, not the encoder
    _require(model, "vae", "variations")
    params = spec.params
    rgba = _sprite(params, "rgba")
    label = model.label(params.get("category"))
    count = _int(params, "count", 16, 1, MAX_COUNT)
    strength = _float(params, "strength", 0.5, 0.0, 1.0)
    finisher = _Finisher(ctx, model, _recipe_params({**params, "count": count, "strength": strength}))
    center = _encode(model, rgba, label)
    chunks = _chunks(count, "vae", ctx)
    for number, (start, stop) in enumerate(chunks):
        noise = model.net.sample_latents(seeded_generators(spec.seed + start, stop - start)).to(center.device)
        z = (1.0 - strength**2) ** 0.5 * center + strength * noise  # variance-preserving mix
        images = model.net.decode(z, torch.full((stop - start,), label, device=center.device))
        ctx.progress((number + 1) / len(chunks), f"variations {start + 1}-{stop} of {count}")
        finisher.add(tensor_to_images(images))
    return finisher.results


@task("sprite.blend")
@torch.no_grad()
def sprite_blend(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    """``frames`` sprites morphing from ``a`` to ``b`` along the straight path between their latent codes."""
    model = _load(ctx, spec.model, runtime="torch")
    _require(model, "vae", "blending")
    params = spec.params
    a, b = _sprite(params, "a"), _sprite(params, "b")
    label = model.label(params.get("category"))
    frames = _int(params, "frames", 8, 2, MAX_COUNT)
    finisher = _Finisher(ctx, model, _recipe_params({**params, "frames": frames}))
    start, end = _encode(model, a, label), _encode(model, b, label)
    weights = torch.linspace(0.0, 1.0, frames, device=start.device)[:, None]
    z = (1 - weights) * start + weights * end
    images = model.net.decode(z, torch.full((frames,), label, device=start.device))
    ctx.progress(1.0, f"{frames} frames")
    finisher.add(tensor_to_images(images))
    return finisher.results


@task("sprite.inpaint")
def sprite_inpaint(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    """Redraw the masked pixels of a sprite with the diffusion model; the other pixels stay exactly as they were."""
    model = _load(ctx, spec.model, runtime="torch")  # keeps known pixels between steps: the torch model's sampler
    _require(model, "diffusion", "inpainting")
    params = spec.params
    rgba = _sprite(params, "rgba")
    mask = np.asarray(params.get("mask"))
    if mask.shape != rgba.shape[:2] or mask.dtype != np.bool_:
        raise BadInputError(f"the mask must be a {SIZE} array of True/False (True = redraw)")
    label = model.label(params.get("category"))
    steps = _int(params, "steps", 20, 1, model.net.config.timesteps)
    guidance = _float(params, "guidance", 2.0, 0.0, 20.0)
    finisher = _Finisher(ctx, model, _recipe_params({**params, "steps": steps, "guidance": guidance}))
    device = next(model.net.parameters()).device
    generators = seeded_generators(spec.seed, 1)
    redraw = torch.from_numpy(mask).float()[None, None].to(device)
    with torch.no_grad():
        out = ddim_sample(
            model.net, model.net.schedule(), model.net.sample_noise(generators).to(device),
            torch.tensor([label]), steps=steps, guidance=guidance, generators=generators,
            known=images_to_tensor(rgba).to(device), redraw=redraw,
            on_step=lambda done, total: ctx.progress(done / total, f"step {done}/{total}"),
        )
    drawn = finisher.finish(tensor_to_images(out))[0]
    result = np.where(mask[..., None], drawn, rgba).astype(np.uint8)
    return {"rgba": result, "recipe": finisher.recipe(0)}


def speed_probe(entry: ModelEntry) -> tuple[JobSpec, Callable[[Any, float], float], str]:
    """The doctor's measure of this workspace: a 32-sprite batch, in sprites per second."""
    category = (entry.meta.get("categories") or ["items"])[0]
    return (JobSpec("sprite.generate", {"category": category, "count": 32}, seed=1, model=entry.name),
            lambda result, seconds: len(result) / seconds, "sprites/s")
