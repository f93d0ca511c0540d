"""Fine-tuning a sprite model: start a run from a trained model's weights instead of random ones.

The user's categories rarely match the base model's. Every tensor indexed by category (label embeddings, the
discriminator's projection and its spectral-norm vector) is rebuilt row by row: a category the base knows by name
keeps its learnt row; a new one starts from the row of the base category its sprites look most like (the bundled
sprite encoder's vote over them, see :func:`closest_base_categories`), or from the mean of the base's rows when
there is no encoder; rows after the categories (the diffusion model's "no class" row for guidance) are kept.
Tag tables are rebuilt the same way by word: a word the base knows keeps its row, a new word starts at zero (no
effect until learnt), and a base without tags gives every word a zero row. Everything else must match the base
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from studio.core.errors import ModelFileError, StudioError
from studio.core.sprite_tags import TagVocabulary
from studio.ml.checkpoint import read_sidecar, sha256_file
from studio.ml.models.sprite_common import TagEmbedding

VOTERS = 512  # sprites of a new category the encoder looks at to find its closest base category


@dataclass(frozen=True)
class BaseModel:
    """A trained sprite model to fine-tune: its weights, architecture config and categories."""

    path: Path
    arch: str
    config: dict[str, Any]
    categories: list[str]
    sha256: str
    state: dict[str, torch.Tensor]
    tags: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """What a run and a model card record about where the weights came from."""
        return {"path": str(self.path), "sha256": self.sha256, "arch": self.arch, "categories": self.categories}


def read_base_model(path: Path, arch: str) -> BaseModel:
    """Read ``path`` (safetensors + JSON sidecar) as a base for ``arch``; ModelFileError when it cannot be one."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"the model to start from, {path}, does not exist")
    meta = read_sidecar(path)
    if meta.get("arch") != arch:
        raise ModelFileError(f"{path.name} is a {meta.get('arch')!r} model: a {arch} run cannot start from it")
    categories = [str(c) for c in meta.get("categories") or []]
    if not categories or len(categories) != int(meta["config"].get("num_classes", -1)):
        raise ModelFileError(f"{path.name} does not say which categories it was trained on")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{path.name} is not a readable safetensors file ({exc})") from None
    tags = list(TagVocabulary.from_dict(meta.get("tags")).words)
    return BaseModel(path, arch, dict(meta["config"]), categories, sha256_file(path), state, tags)


def closest_base_categories(
    images: np.ndarray, labels: np.ndarray, categories: list[str], base: BaseModel, device: str = "cpu"
) -> dict[str, str]:
    """For each of ``categories`` the base knows not by name, the base category the sprite encoder files most of its
    sprites under (``images`` (N, 32, 32, 4) uint8, ``labels`` indexes ``categories``); {} without an encoder."""
    from studio.ml.eval.sprite_reference import load_encoder, make_embed

    new = [i for i, c in enumerate(categories) if c.casefold() not in {b.casefold() for b in base.categories}]
    if not new:
        return {}
    try:
        module, meta = load_encoder(device=device)
    except StudioError:
        return {}
    encoder_categories = [str(c) for c in meta.get("categories", [])]
    if not set(encoder_categories) & set(base.categories):
        return {}  # the encoder cannot tell the base's categories apart
    embed = make_embed(module, encoder_categories, base.categories, device)
    closest = {}
    for index in new:
        members = images[labels == index][:VOTERS]
        if len(members):
            votes = np.bincount(embed(members)[0].argmax(axis=1), minlength=len(base.categories))
            closest[categories[index]] = base.categories[int(votes.argmax())]
    return closest


def load_base_weights(
    model: nn.Module,
    base: BaseModel,
    categories: list[str],
    closest: dict[str, str] | None = None,
    tags: list[str] | None = None,
) -> dict[str, str]:
    """Copy ``base``'s weights into ``model`` (built for ``categories``); returns where each category started:
    ``{"items": "items", "robots": "characters (closest)", "maps": "mean"}``.

    ``closest`` names a base category for a new one (see :func:`closest_base_categories`); others get the mean row.
    """
    known = {name.casefold(): i for i, name in enumerate(base.categories)}
    for new, similar in (closest or {}).items():
        known.setdefault(new.casefold(), base.categories.index(similar))
    origin = {}
    for category in categories:
        index = known.get(category.casefold())
        if index is None:
            origin[category] = "mean"
        elif base.categories[index].casefold() == category.casefold():
            origin[category] = base.categories[index]
        else:
            origin[category] = f"{base.categories[index]} (closest)"
    per_category = _category_tensors(model, len(categories))
    per_tag = _tag_tensors(model)
    loaded = {}
    for key, wanted in model.state_dict().items():
        source = base.state.get(key)
        if key in per_tag:
            source = _remap_tags(source, base.tags, tags or [], wanted)
        if source is None:
            raise ModelFileError(f"{base.path.name} does not fit this run: it has no {key}")
        if key in per_category:
            source = _remap_rows(source, base, categories, known, extra=per_category[key])
        if source.shape != wanted.shape:
            raise ModelFileError(
                f"{base.path.name} does not fit this run: {key} is {tuple(source.shape)}, "
                f"the run needs {tuple(wanted.shape)}"
            )
        loaded[key] = source.to(wanted.dtype)
    model.load_state_dict(loaded)
    return origin


def _category_tensors(model: nn.Module, n_categories: int) -> dict[str, int]:
    """State keys of the tensors indexed by category, each with the number of rows that follow the categories.

    In the sprite architectures every embedding table is a category table (time enters through sinusoids). A
    spectral-normalised table also stores its power-iteration vectors: ``_u`` has a row per category, ``_v`` an
    entry per feature.
    """
    keys: dict[str, int] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Embedding):
            continue
        extra = module.num_embeddings - n_categories
        for key, tensor in module.state_dict().items():
            if not key.endswith("._v") and tensor.dim() >= 1 and tensor.shape[0] == module.num_embeddings:
                keys[f"{name}.{key}"] = extra
    return keys


def _tag_tensors(model: nn.Module) -> set[str]:
    """State keys of the tag tables (one row per word of the vocabulary)."""
    return {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, TagEmbedding)}


def _remap_tags(
    source: torch.Tensor | None, base_words: list[str], words: list[str], wanted: torch.Tensor
) -> torch.Tensor:
    """The run's tag table: the base's row for each word it knows, zero (no effect yet) for the others."""
    rows = torch.zeros_like(wanted)
    if source is not None and source.shape[0] == len(base_words) and source.shape[1:] == wanted.shape[1:]:
        for i, word in enumerate(words):
            if word in base_words:
                rows[i] = source[base_words.index(word)]
    return rows


def _remap_rows(
    source: torch.Tensor, base: BaseModel, categories: list[str], known: dict[str, int], extra: int
) -> torch.Tensor:
    """The base's rows for ``categories``: a known category's own row, the mean row for a new one, then the
    ``extra`` rows after the categories as they were."""
    n_base = len(base.categories)
    if source.shape[0] != n_base + extra:
        raise ModelFileError(f"{base.path.name} has {source.shape[0]} category rows where {n_base + extra} belong")
    mean = source[:n_base].mean(dim=0)
    rows = [source[known[c.casefold()]] if c.casefold() in known else mean for c in categories]
    return torch.stack([*rows, *source[n_base:]])
