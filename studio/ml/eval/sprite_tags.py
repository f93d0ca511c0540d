"""Do sprites asked for in words show those words? The encoder's tag classifier, trained on real tiles, judges.

For every word with at least :data:`MIN_TAG_EXAMPLES` training tiles, a model draws :data:`PER_TAG` sprites asked
for by that word alone; the classifier's top 1 and top 5 words are checked for it. The same is measured on the real
validation tiles that carry the word. A model is as good with words as real tiles are when its hit rate reaches
theirs: the report gives both and their ratio (micro-averaged: every sprite and every real tile counts once per
word).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from studio.ml.data.sprites import SpriteDataset

MIN_TAG_EXAMPLES = 30
PER_TAG = 16
TagLogits = Callable[[np.ndarray], np.ndarray]  # images -> (N, encoder words) logits


def eligible_tags(dataset: SpriteDataset, encoder_words: list[str]) -> list[str]:
    """Words of the data set with enough training tiles that the encoder also knows, most frequent first."""
    vocabulary = dataset.vocabulary
    if not len(vocabulary):
        return []
    counts = dataset.train_tags.sum(axis=0)
    return [word for word, n in zip(vocabulary.words, counts, strict=True)
            if n >= MIN_TAG_EXAMPLES and word in encoder_words]


def hits(logits: np.ndarray, wanted: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sprite: is ``wanted`` the top word, and is it among the top five."""
    ranked = np.argsort(-logits, axis=1)
    return ranked[:, 0] == wanted, (ranked[:, :5] == wanted).any(axis=1)


def real_rates(dataset: SpriteDataset, tags: list[str], encoder_words: list[str], tag_logits: TagLogits) -> dict:
    """Hit rates of the validation tiles that carry each word."""
    column = {word: i for i, word in enumerate(dataset.vocabulary.words)}
    logits = tag_logits(dataset.val_images) if len(dataset.val_images) else np.zeros((0, len(encoder_words)))
    per_tag = {}
    for tag in tags:
        members = np.flatnonzero(dataset.val_tags[:, column[tag]] > 0)
        top1, top5 = hits(logits[members], encoder_words.index(tag))
        per_tag[tag] = {"count": len(members), "top1": top1.tolist(), "top5": top5.tolist()}
    return per_tag


def summarise(per_tag: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Micro-averaged rates plus per-word rates (lists of hits become means)."""
    top1 = [h for entry in per_tag.values() for h in entry["top1"]]
    top5 = [h for entry in per_tag.values() for h in entry["top5"]]
    return {
        "count": len(top1),
        "top1": float(np.mean(top1)) if top1 else None,
        "top5": float(np.mean(top5)) if top5 else None,
        "per_tag": {tag: {"count": e["count"], "top1": float(np.mean(e["top1"])) if e["top1"] else None,
                          "top5": float(np.mean(e["top5"])) if e["top5"] else None} for tag, e in per_tag.items()},
    }


def tag_report(model_per_tag: dict[str, dict], real_per_tag: dict[str, dict]) -> dict[str, Any]:
    """The model's and the real tiles' rates side by side, with model / real ratios."""
    model, real = summarise(model_per_tag), summarise(real_per_tag)

    def ratio(key: str) -> float | None:
        return model[key] / real[key] if model[key] is not None and real[key] else None

    return {"words": len(model_per_tag), "per_word": PER_TAG, "model": model, "real": real,
            "ratio_top1": ratio("top1"), "ratio_top5": ratio("top5")}
