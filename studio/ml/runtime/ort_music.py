"""The music Transformer on onnxruntime: its exported ``decoder_with_past`` graph, callable exactly as the sampler
in :mod:`studio.ml.music.sample` calls the torch model (``model(ids, past) -> (logits, present)``, with
``config``, ``parameters()``, ``eval()`` and ``train()``), so melodies are sampled unchanged on either runtime.

The runtime loader (:mod:`studio.ml.runtime.loader`) picks torch or this for a job through :data:`ADAPTER`.
Decoding one token at a time is latency-bound, so the session runs on one CPU thread, as the torch sampler does.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from studio.ml import registry
from studio.ml.checkpoint import config_from_dict, load_model
from studio.ml.models.music_transformer import MusicTransformerConfig
from studio.ml.music import tokens
from studio.ml.runtime.exports import ExportRecord
from studio.ml.runtime.loader import ExportedModels, RuntimeLoader
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import OrtGraphRunner
from studio.ml.store import ModelEntry

GRAPH = "decoder_with_past"
MEASURE_STEPS = 24


class OrtMusicModel:
    """The exported graph behind the torch model's calling convention (inference only)."""

    runtime: ClassVar[str] = "onnxruntime"
    training = False

    def __init__(self, runner: OrtGraphRunner, config: MusicTransformerConfig, nbytes: int = 0) -> None:
        self.runner = runner
        self.config = config
        self.nbytes = nbytes  # size of the graph file: what the worker's model cache budgets
        self._device_marker = torch.empty(0, device=runner.device)

    def parameters(self) -> Iterator[torch.Tensor]:
        """Only says where results live (the sampler reads the device of the first parameter)."""
        yield self._device_marker

    def eval(self) -> OrtMusicModel:
        return self

    def train(self, mode: bool = True) -> OrtMusicModel:
        if mode:
            raise RuntimeError("an onnxruntime model cannot be trained; load the torch model for that")
        return self

    def empty_past(self, batch: int = 1) -> torch.Tensor:
        c = self.config
        return torch.zeros(c.n_layer, 2, batch, c.n_head, 0, c.head_dim, device=self.runner.device)

    def __call__(self, ids: torch.Tensor, past: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, length) ids [+ cache] -> (batch, length, vocab) logits, new cache (as MusicTransformer.forward)."""
        past = self.empty_past(ids.shape[0]) if past is None else past
        if past.shape[4] + ids.shape[1] > self.config.block_size:
            raise ValueError(
                f"sequence of {past.shape[4] + ids.shape[1]} tokens exceeds the model's {self.config.block_size}"
            )
        logits, present = self.runner(ids, past)
        return logits, present


class MusicSteps:
    """Feeds token ids of one sequence to a music ``decoder_with_past`` runner (torch or onnxruntime), keeping the
    cache; each call returns the next-token logits (V,) float32 (export checks compare runtimes with it)."""

    def __init__(self, runner: Any, config: MusicTransformerConfig) -> None:
        self.runner = runner
        self.past = torch.zeros(config.n_layer, 2, 1, config.n_head, 0, config.head_dim, device=runner.device)

    def __call__(self, ids: list[int]) -> torch.Tensor:
        logits, self.past = self.runner(torch.tensor([ids]), self.past)
        return logits[0, -1].float().cpu()


def load_ort_music_model(record: ExportRecord, config: MusicTransformerConfig, device: str = "cpu") -> OrtMusicModel:
    """Open the export's graph (checked against the registry's inputs) on one CPU thread."""
    graph = next(g for g in registry.get("music-transformer").onnx if g.name == GRAPH)
    path = record.graph_path(GRAPH)
    session = open_session(path, device, threads=1, graph=graph)
    return OrtMusicModel(OrtGraphRunner(session, graph.input_names, device), config, path.stat().st_size)


def decode_seconds(model: Any, steps: int = MEASURE_STEPS) -> float:
    """Median seconds per one-token step after a header-long prompt (what sampling a melody costs)."""
    device = next(model.parameters()).device
    ids = torch.zeros(1, tokens.HEADER_LEN, dtype=torch.long, device=device)
    with torch.no_grad():
        logits, past = model(ids, None)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            logits, past = model(logits[:, -1:].argmax(-1), past)
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


class MusicModels(ExportedModels):
    """The music Transformer on the runtime loader; "auto" compares the time of one decoding step."""

    key = "music"

    def load_torch(self, loader: RuntimeLoader, entry: ModelEntry, device: str) -> nn.Module:
        return load_model(entry.weights, device=device)[0]

    def load_onnx(self, loader: RuntimeLoader, entry: ModelEntry, record: ExportRecord,
                  device: str) -> OrtMusicModel:
        return load_ort_music_model(record, config_from_dict(MusicTransformerConfig, entry.meta["config"]), device)

    def seconds(self, model: nn.Module | OrtMusicModel) -> float:
        return decode_seconds(model.eval())


ADAPTER = MusicModels()
