"""One fake task table for the whole main window: sprites (sprite_fakes), copy and music payloads of the
contracts' shapes, and a model list per modality, so window-level tests run in seconds."""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from tests.qt import sprite_fakes

COPY_AD = {"headline": ["Fresh beans weekly", "Roasted to order", "Coffee, your way"],
           "description": ["Pick a roast and a rhythm.", "Cancel any time."], "path": ["coffee", "weekly"]}
MODELS = [*sprite_fakes.MODELS,
          {"name": "tiny-lm", "arch": "llama", "modality": "copy", "family": "", "source": "user", "size_bytes": 1,
           "categories": [], "metrics": {}, "card_path": "", "path": "tiny-lm.gguf"},
          {"name": "music-transformer", "arch": "music-transformer", "modality": "music", "family": "transformer",
           "source": "bundled", "size_bytes": 1, "categories": [], "metrics": {"val_nll": 0.84}, "card_path": "",
           "path": "music-transformer.safetensors"}]
RATE = 22_050


def fake_models(spec: JobSpec, ctx: JobContext) -> list[dict[str, Any]]:
    wanted = spec.params.get("modality")
    return [{"family": "", "source": "bundled", "size_bytes": 1, "metrics": {}, "licence": "", "path": "",
             **m} for m in MODELS if not wanted or m["modality"] == wanted]


def fake_copy(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    ads = []
    for v in range(int(spec.params["variants"])):
        ad = {name: [f"{line} {v + 1}" if name == "headline" else line for line in lines]
              for name, lines in COPY_AD.items()}
        for name, lines in ad.items():
            for j, line in enumerate(lines):
                ctx.partial({"variant": v, "field": name, "index": j, "text": line, "done": True})
        ads.append(ad)
    return {"ads": ads, "recipe": spec.recipe()}


def fake_line(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    return {"text": f"Rewritten line (seed {spec.seed})", "field": spec.params["field"],
            "index": spec.params["index"]}


def fake_music(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    bars, bpm = int(spec.params.get("bars_to") or spec.params["bars"]), float(spec.params["bpm"])
    seconds = bars * 4 * 60 / bpm
    t = np.arange(int(seconds * RATE)) / RATE
    tone = (0.3 * np.sin(2 * np.pi * (220 + spec.seed % 200) * t)).astype(np.float32)
    stems = {"melody": np.stack([tone, tone], axis=1), "bass": np.stack([tone, tone], axis=1) * 0.5}
    notes = [{"part": "melody", "pitch": 60 + i % 7, "start": float(i), "duration": 0.9, "velocity": 100}
             for i in range(bars * 4)]
    notes += [{"part": "bass", "pitch": 40, "start": 4.0 * b, "duration": 4.0, "velocity": 90} for b in range(bars)]
    return {"rate": RATE, "mix": stems["melody"] + stems["bass"], "stems": stems, "notes": notes, "bpm": bpm,
            "bars": bars, "meter": spec.params["meter"], "key": spec.params["key"], "recipe": spec.recipe()}


TASKS = {**sprite_fakes.TASKS, "models.list": fake_models, "copy.generate": fake_copy, "copy.line": fake_line,
         "music.generate": fake_music, "music.continue": fake_music, "music.vary": fake_music}
