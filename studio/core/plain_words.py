"""Plain words for what the app shows a game artist or a marketer: figures, model families, job kinds, and messages
that were written for the command line. The technical name goes into a tooltip, never away.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: metric stem -> (plain name, what the technical figure is; lower or higher is better)
METRICS: dict[str, tuple[str, str]] = {
    "fid": ("Difference from real sprites", "Fréchet distance of sprite-encoder features (FID); lower is better"),
    "kid": ("Difference from real sprites (small sets)", "kernel inception distance ×1000 (KID); lower is better"),
    "accuracy": ("Recognisable as its category", "share classified as the asked category; higher is better"),
    "near_copy_fraction": ("Near copies of the training sprites", "share within a small pixel distance; lower is "
                           "better"),
    "d": ("Critic's error", "GAN discriminator hinge loss: how often the critic is fooled"),
    "g": ("Artist's error", "GAN generator adversarial loss"),
    "d_real": ("Critic's score for real sprites", "mean discriminator score of real sprites"),
    "d_real_hinge": ("Critic's error on real sprites", "discriminator hinge loss on held-out real sprites"),
    "diversity": ("Variety", "mode-seeking ratio (pixel distance / latent distance); higher = more varied"),
    "loss": ("Training error", "the loss being minimised; lower is better"),
    "train": ("Error on the training data", "training loss; lower is better"),
    "validation": ("Error on unseen data", "validation loss: rising while training error falls means memorising"),
    "recon": ("Redraw error", "VAE reconstruction loss; lower is better"),
    "kl": ("Code spread", "VAE KL divergence of the latent code"),
    "mse": ("Noise-removal error", "diffusion velocity-prediction mean squared error; lower is better"),
    "ce": ("Judging error", "cross-entropy of the category classifier; lower is better"),
    "nll": ("Surprise at tunes", "negative log-likelihood per note token (nats); lower is better"),
    "perplexity": ("Surprise at the text", "perplexity: lower means the model expects such text"),
    "lr": ("Learning speed", "learning rate"),
    "lines": ("Lines", "lines of copy"),
    "tokens": ("Notes and beats read", "tokens"),
}
QUALIFIERS = (("train_", " (while training)"), ("validation_", " (unseen data)"), ("val_", " (unseen data)"),
              ("held_out_", " (held out)"))
SUFFIXES = (("_before", " before training"), ("_after", " after training"))
#: figures that say how good the output is; the rest (losses of one step, settings) go to tooltips only
QUALITY = ("fid", "accuracy", "near_copy_fraction", "val_nll", "validation_perplexity", "perplexity_after")

FAMILIES = {
    "gan": "GAN: the fastest, one step per batch",
    "vae": "VAE: variations and blends of a sprite",
    "diffusion": "Diffusion: the most detail, slower; redraws a selection",
    "transformer": "Note Transformer: writes melodies",
    "lora": "Brand voice: an adapter on the language model",
    "classifier": "Sprite judge: measures the other models",
    "": "Language model: writes every ad format",
}
SOURCES = {"bundled": "comes with Studio", "shared": "shared", "user": "yours"}
JOBS = {
    "sprite.generate": "Generating sprites", "sprite.variations": "Making variations", "sprite.blend": "Blending",
    "sprite.inpaint": "Redrawing the selection", "copy.generate": "Writing copy", "copy.line": "Rewriting a line",
    "music.generate": "Composing a clip", "music.continue": "Continuing the clip", "music.vary": "Varying bars",
    "models.list": "Looking for models", "models.import": "Importing a model", "models.export_onnx":
    "Exporting to ONNX", "models.verify": "Checking a model", "models.rename": "Renaming a model",
    "models.delete": "Deleting a model", "data.inspect": "Inspecting data", "data.augment_preview":
    "Previewing augmentations", "train.estimate": "Measuring training speed",
    "models.export_status": "Checking the language model", "system.doctor": "Checking this machine",
    "system.speed": "Measuring each workspace's speed",
}
#: command-line options as the app's controls name them
FLAGS = {"resume": "Resume", "init": "Start from", "scratch": "Start from: Nothing", "max-steps": "Max steps",
         "preset": "Preset", "name": "Name", "data": "Data", "grid": "Sheet grid", "licence": "Data licence",
         "base": "Start from"}


def _stem(key: str) -> tuple[str, str]:
    """(metric stem, qualifier words) of a key such as ``val_nll`` or ``perplexity_after``."""
    words = ""
    for prefix, said in QUALIFIERS:
        if key.startswith(prefix):
            key, words = key[len(prefix):], said
            break
    for suffix, said in SUFFIXES:
        if key.endswith(suffix):
            key, words = key[: -len(suffix)], said
    return key, words


def metric_name(key: str) -> str:
    """``val_nll`` -> "Surprise at tunes (unseen data)"; an unknown key is tidied up, not hidden."""
    stem, words = _stem(key)
    plain = METRICS.get(stem, (stem.replace("_", " ").capitalize(), ""))[0]
    return plain + words


def metric_tooltip(key: str) -> str:
    stem, _ = _stem(key)
    meaning = METRICS.get(stem, ("", ""))[1]
    return f"{key}: {meaning}" if meaning else key


def format_value(key: str, value: float) -> str:
    if "accuracy" in key or "fraction" in key:
        return f"{value:.0%}"
    if float(value).is_integer() and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:.3g}"


def quality_figures(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """[(plain "name: value", technical tooltip)] for the figures that say how good a model's output is."""
    return [(f"{metric_name(k)}: {format_value(k, float(v))}", metric_tooltip(k))
            for k, v in metrics.items() if k in QUALITY and isinstance(v, int | float)]


def technical_figures(metrics: Mapping[str, Any]) -> str:
    """Every numeric figure as ``key value`` lines, for a tooltip."""
    return "\n".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))


def family_words(family: str, modality: str = "") -> str:
    if modality == "copy" and family.lower() != "lora":
        family = ""  # a language model, whatever its architecture is called
    return FAMILIES.get(family.lower(), family.upper())


def source_words(source: str) -> str:
    return SOURCES.get(source, source)


def job_words(kind: str) -> str:
    return JOBS.get(kind, kind)


def without_cli_flags(message: str) -> str:
    """A trainer's message for the app: "run again with --resume" -> "press Resume", "(--lr)" dropped, other
    options named as the app's controls are."""
    message = re.sub(r"run (?:it )?again with --resume", "press Resume", message)
    message = re.sub(r"\s*\(--[a-z][a-z-]*\)", "", message)

    def control(match: re.Match[str]) -> str:
        name = FLAGS.get(match.group(1))
        return f"'{name}'" if name else "a setting of the command-line trainer"

    return re.sub(r"--([a-z][a-z-]*)", control, message)
