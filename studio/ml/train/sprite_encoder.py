"""Training the sprite encoder (``studio train sprite-encoder``): category, tags and damage, on the train split.

Augmented with the per-category policies of :mod:`studio.ml.data.augment`; half of each batch is then damaged
(:mod:`studio.ml.data.degrade`: blurred, noisy or specked, a third each) and the encoder learns, at once, the
category (cross-entropy with label smoothing), the words of the sprite's name (the data set's vocabulary, one
binary decision each) and which damage it shows. AdamW with a one-cycle schedule. Validation accuracy is measured
after every epoch on the untouched validation split. A pause
(SIGTERM in the child process, Ctrl+C in a terminal) saves a checkpoint that ``resume=True`` continues from.
Seeded: the same data, config and seed give the same weights (global RNG state is forked, not touched).
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from studio.core.cancel import CancelToken, JobCancelled
from studio.core.paths import repo_root
from studio.core.safe_write import write_atomic
from studio.ml.checkpoint import save_model
from studio.ml.data.augment import augment_batch
from studio.ml.data.degrade import DAMAGES
from studio.ml.data.sprites import SpriteDataset, load_sprite_dataset
from studio.ml.models.sprite_common import images_to_tensor
from studio.ml.models.sprite_encoder import DEGRADATIONS, SpriteEncoder, SpriteEncoderConfig

ARCH = "sprite-encoder"
EVAL_BATCH = 512


@dataclass
class EncoderTraining:
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    width: int = 48
    seed: int = 0
    damaged_share: float = 0.5  # of each batch, damaged for the degradation head


def damage_batch(images: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``images`` with about ``share`` of them damaged (each damage equally often); returns (images, damage index
    into DEGRADATIONS, 0 = clean)."""
    if DEGRADATIONS[1:] != tuple(DAMAGES):
        raise AssertionError("the encoder's degradation classes and the damages must match")
    kinds = np.where(rng.random(len(images)) < share, rng.integers(1, len(DEGRADATIONS), len(images)), 0)
    out = images.copy()
    for index, damage in enumerate(DAMAGES.values(), start=1):
        chosen = kinds == index
        if chosen.any():
            out[chosen] = damage(images[chosen], rng)
    return out, kinds.astype(np.int64)

def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo_root(), capture_output=True,
                             text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


@torch.no_grad()
def evaluate_classifier(model: SpriteEncoder, images: np.ndarray, labels: np.ndarray, device: str) -> dict[str, Any]:
    """Accuracy, mean loss and per-category accuracy of ``model`` on a labelled set."""
    model.eval()
    correct = np.zeros(len(labels), dtype=bool)
    loss = 0.0
    for start in range(0, len(images), EVAL_BATCH):
        x = images_to_tensor(images[start : start + EVAL_BATCH]).to(device)
        y = torch.from_numpy(labels[start : start + EVAL_BATCH]).to(device)
        logits, _ = model(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct[start : start + len(y)] = (logits.argmax(1) == y).cpu().numpy()
    per = {int(c): float(correct[labels == c].mean()) for c in np.unique(labels)}
    return {"accuracy": float(correct.mean()), "loss": loss / max(1, len(labels)), "per_category": per}


@torch.no_grad()
def evaluate_heads(model: SpriteEncoder, dataset: SpriteDataset, device: str, seed: int) -> dict[str, float]:
    """On the validation split: how often the top 1 / top 5 words include one of a sprite's own words (sprites
    with words only), and how often the damage head names each damage right (each applied to every sprite)."""
    model.eval()
    images = dataset.val_images
    features = torch.cat([model.features(images_to_tensor(images[i : i + EVAL_BATCH]).to(device))
                          for i in range(0, len(images), EVAL_BATCH)])
    out: dict[str, float] = {}
    worded = dataset.val_tags.sum(axis=1) > 0
    if model.tag_head is not None and worded.any():
        ranked = model.tag_logits(features).argsort(dim=1, descending=True).cpu().numpy()
        truth = dataset.val_tags.astype(bool)
        for k in (1, 5):
            hits = [truth[i, ranked[i, :k]].any() for i in np.flatnonzero(worded)]
            out[f"val_tag_top{k}"] = float(np.mean(hits))
    rng = np.random.default_rng(seed)
    for index, (name, damage) in enumerate(DAMAGES.items(), start=1):
        damaged = images_to_tensor(damage(images, rng)).to(device)
        guess = torch.cat([model.degradation_logits(model.features(damaged[i : i + EVAL_BATCH])).argmax(1)
                           for i in range(0, len(damaged), EVAL_BATCH)])
        out[f"val_damage_recognised_{name}"] = float((guess == index).float().mean())
    clean = model.degradation_logits(features).argmax(1)
    out["val_damage_recognised_clean"] = float((clean == 0).float().mean())
    return out


def _checkpoint_path(out: Path) -> Path:
    return out.with_name(out.stem + ".resume.pt")


def train_sprite_encoder(
    data: Path,
    out: Path,
    settings: EncoderTraining,
    on_event: Callable[[dict[str, Any]], None],
    cancel: CancelToken,
    device: str = "cpu",
    resume: bool = False,
) -> dict[str, Any]:
    """Train, save ``out`` (.safetensors + .json) and return the final metrics."""
    dataset = load_sprite_dataset(data)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return _train(dataset, Path(out), settings, on_event, cancel, device, resume)


def _train(
    dataset: SpriteDataset,
    out: Path,
    settings: EncoderTraining,
    on_event: Callable[[dict[str, Any]], None],
    cancel: CancelToken,
    device: str,
    resume: bool,
) -> dict[str, Any]:
    vocabulary = dataset.vocabulary
    config = SpriteEncoderConfig(num_classes=len(dataset.categories), width=settings.width,
                                 num_tags=len(vocabulary), degradations=len(DEGRADATIONS))
    model = SpriteEncoder(config).to(device)
    tags = dataset.train_tags.astype(np.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    images, labels = dataset.train_images, dataset.train_labels
    steps_per_epoch = -(-len(images) // settings.batch_size)
    total = settings.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate, total_steps=total)
    start_epoch, start_batch, history, augment_state = 0, 0, [], None
    checkpoint = _checkpoint_path(out)
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, start_batch = int(state["epoch"]), int(state["batch"])
        augment_state, history = state["augment_rng"], list(state["history"])
    started = time.monotonic()
    step = start_epoch * steps_per_epoch + start_batch
    first_step = step
    for epoch in range(start_epoch, settings.epochs):
        order = np.random.default_rng([settings.seed, epoch]).permutation(len(images))
        augment_rng = np.random.default_rng([settings.seed, epoch, 1])
        if augment_state is not None:
            augment_rng.bit_generator.state = augment_state
            augment_state = None
        model.train()
        for number, batch in enumerate(np.array_split(order, steps_per_epoch)):
            if epoch == start_epoch and number < start_batch:
                continue
            if cancel.cancelled:
                buffer = io.BytesIO()
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "schedule": schedule.state_dict(), "torch_rng": torch.get_rng_state(),
                            "augment_rng": augment_rng.bit_generator.state, "epoch": epoch, "batch": number,
                            "history": history}, buffer)
                write_atomic(checkpoint, buffer.getbuffer(), "the encoder's checkpoint", retry="resume")
                raise JobCancelled()
            augmented = augment_batch(images[batch], labels[batch], dataset.categories, augment_rng)
            augmented, kinds = damage_batch(augmented, settings.damaged_share, augment_rng)
            x = images_to_tensor(augmented).to(device)
            y = torch.from_numpy(labels[batch]).to(device)
            logits, features = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)
            loss = loss + F.cross_entropy(model.degradation_logits(features), torch.from_numpy(kinds).to(device))
            if config.num_tags:
                wanted = torch.from_numpy(tags[batch]).to(device)
                loss = loss + F.binary_cross_entropy_with_logits(model.tag_logits(features), wanted)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            elapsed = time.monotonic() - started
            on_event({"step": step, "total": total, "loss": {"ce": loss.item()},
                      "eta_s": elapsed / (step - first_step) * (total - step)})
        val = evaluate_classifier(model, dataset.val_images, dataset.val_labels, device)
        history.append({"epoch": epoch + 1, "val_accuracy": val["accuracy"], "val_loss": val["loss"]})
        on_event({"step": step, "total": total, "loss": {"ce": loss.item(), "val_ce": val["loss"]},
                  "message": f"epoch {epoch + 1}: validation accuracy {val['accuracy']:.3f}"})
    seconds = time.monotonic() - started
    train_metrics = evaluate_classifier(model, images, labels, device)
    names = dataset.categories
    metrics = {
        "val_accuracy": val["accuracy"],
        "train_accuracy": train_metrics["accuracy"],
        "val_loss": val["loss"],
        "val_accuracy_per_category": {names[c]: acc for c, acc in val["per_category"].items()},
        **evaluate_heads(model, dataset, device, settings.seed),
    }
    meta = {
        "name": out.stem,
        "modality": "eval",
        "family": "classifier",
        "categories": list(names),
        **({"tags": vocabulary.to_dict()} if len(vocabulary) else {}),
        "degradations": list(DEGRADATIONS),
        "metrics": metrics,
        "licence": f"Apache-2.0 weights trained by Studio on the data set {dataset.manifest.get('name', '')!r} "
        "(its licence is in its manifest.json)",
        "training": {
            **asdict(settings),
            "data": dataset.manifest.get("name", ""),
            "data_source": dataset.manifest.get("source", ""),
            "data_sha256": dataset.manifest.get("sha256", {}),
            "train_count": len(images),
            "val_count": len(dataset.val_labels),
            "seconds": round(seconds, 1),
            "device": device,
            "threads": torch.get_num_threads(),
            "commit": _commit(),
            "history": history,
        },
    }
    save_model(model.cpu(), ARCH, config, out, meta, retry="resume")
    checkpoint.unlink(missing_ok=True)
    return {"path": str(out), **metrics, "seconds": round(seconds, 1)}
