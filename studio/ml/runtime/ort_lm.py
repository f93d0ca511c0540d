"""The language model on onnxruntime: the exported Llama ``decoder_with_past`` graph behind the same ``prefill`` /
``decode_step`` interface as :class:`studio.ml.text.lm.LanguageModel`, so :func:`studio.ml.text.generate.stream`
and the copywriter's constrained decoder run on it unchanged (streaming, batched variants, left-padded prompts).

The graph takes the whole past and returns it extended (``present_keys``/``present_values``). :class:`OrtKVCache`
keeps those tensors together with each row's left padding, from which every call's ``attention_mask`` and
``position_ids`` are made exactly as the torch model makes them from its own cache, so both runtimes see the same
positions and masks.

Which runtime serves a language model is decided by the runtime loader (:mod:`studio.ml.runtime.loader`) through
:data:`ADAPTER`: "torch", "onnxruntime" (exported on first use if needed) or "auto": whichever of torch and the
verified exports of these exact GGUF weights decoded fastest on this machine, measured once and remembered. A
quantised export (int4, int8) is used only if its held-out perplexity, measured when it was made, is within
:data:`PERPLEXITY_TOLERANCE` of fp32.

Usage::

    lm = load_ort_language_model(record, gguf_path, device="cpu", threads=2)
    for piece in stream(lm, messages, max_new_tokens=40, seed=7):
        print(piece, end="")
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from studio.core.errors import BadInputError, ModelFileError, StudioError
from studio.ml import registry
from studio.ml.models.llama import LlamaConfig
from studio.ml.runtime.exports import FUSED_GRAPH, ExportRecord
from studio.ml.runtime.gqa_lm import GqaLanguageModel, load_gqa_language_model, read_gguf_header
from studio.ml.runtime.loader import ExportedModels, RuntimeLoader
from studio.ml.runtime.ort_session import open_session
from studio.ml.runtime.runners import OrtGraphRunner
from studio.ml.store import ModelEntry
from studio.ml.text.lm import LanguageModel, _as_rows, app_precision, load_language_model, repeat_prompt
from studio.ml.text.prompt_cache import PromptCache
from studio.ml.text.tokenizer import GGUFTokenizer

GRAPH = "decoder_with_past"
log = logging.getLogger(__name__)
CPU_VARIANTS = ("int4", "int8", "fp32")
CUDA_VARIANTS = ("fp16", "fp32")
PERPLEXITY_TOLERANCE = 0.05  # a quantised export may raise held-out perplexity by at most 5 % over fp32
MEASURE_PROMPT = "Write a short, honest headline for a lightweight waterproof trail running shoe."
MEASURE_STEPS = 16
MEASURE_BATCH = 8  # candidates per prompt when measuring the copy generator's batches


@dataclass
class OrtKVCache:
    """Keys and values of every layer so far, ``(layers, batch, kv_heads, length, head_dim)``, plus ``pad`` (batch,):
    the left padding of each row (never attended to; a row's positions start after it)."""

    k: torch.Tensor
    v: torch.Tensor
    pad: torch.Tensor | None = None

    @classmethod
    def empty(cls, config: LlamaConfig, batch: int, device: torch.device, pad: torch.Tensor | None) -> OrtKVCache:
        k = torch.zeros((config.n_layers, batch, config.n_kv_heads, 0, config.head_dim), device=device)
        return cls(k, k.clone(), pad)

    @property
    def batch(self) -> int:
        return self.k.shape[1]

    @property
    def length(self) -> int:
        return self.k.shape[3]

    @property
    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()

    def feeds(self, new: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(attention_mask (batch, length + new), position_ids (batch, new)) for ``new`` tokens per row."""
        total = self.length + new
        pad = self.pad if self.pad is not None else torch.zeros(self.batch, dtype=torch.long, device=self.k.device)
        mask = (torch.arange(total, device=pad.device)[None, :] >= pad[:, None]).long()
        positions = (torch.arange(self.length, total, device=pad.device)[None, :] - pad[:, None]).clamp(min=0)
        return mask, positions

    def extended(self, k: torch.Tensor, v: torch.Tensor) -> OrtKVCache:
        return OrtKVCache(k, v, self.pad)

    def expand(self, batch: int) -> OrtKVCache:
        """``batch`` copies of a single-row cache (one prefill, many variants)."""
        if self.batch != 1:
            raise ValueError("only a single-row cache can be expanded")
        pad = None if self.pad is None else self.pad.expand(batch).clone()
        return OrtKVCache(self.k.expand(-1, batch, -1, -1, -1).contiguous(),
                          self.v.expand(-1, batch, -1, -1, -1).contiguous(), pad)

    def select(self, rows: torch.Tensor) -> OrtKVCache:
        """Keep only ``rows`` (finished variants leave the batch)."""
        rows = rows.to(self.k.device)
        pad = None if self.pad is None else self.pad[rows]
        return OrtKVCache(self.k[:, rows].contiguous(), self.v[:, rows].contiguous(), pad)


@dataclass
class OrtLanguageModel:
    """A language model whose network runs in onnxruntime; tokenizer and sampling stay in Python/torch."""

    runner: OrtGraphRunner
    config: LlamaConfig
    tokenizer: GGUFTokenizer
    device: torch.device
    name: str = ""
    sha256: str = ""  # of the GGUF the export was made from (recipes name the same model either way)
    source: dict[str, Any] = field(default_factory=dict)
    variant: str = "fp32"
    nbytes: int = 0  # size of the graph file: what the worker's model cache budgets
    dtype: torch.dtype = torch.float32  # activations and cache (quantised variants keep float32 inputs/outputs)
    prompt_cache: PromptCache = field(default_factory=PromptCache, repr=False, compare=False)
    runtime: ClassVar[str] = "onnxruntime"

    @property
    def model(self) -> Any:
        """There is no torch module here: say so plainly to code that needs one (LoRA, training)."""
        raise StudioError(
            f"{self.name or 'this language model'} runs on onnxruntime; LoRA adapters, training and torch-side "
            "evaluation need the torch model (get_language_model(..., runtime='torch'))"
        )

    def prefill(
        self,
        ids: Sequence[int] | Sequence[Sequence[int]],
        max_new_tokens: int = 256,
        copies: int = 1,
        cache: OrtKVCache | None = None,
    ) -> tuple[torch.Tensor, OrtKVCache]:
        """As :meth:`studio.ml.text.lm.LanguageModel.prefill`: (next-token logits (B, V) float32 on the CPU, cache).

        ``max_new_tokens`` is accepted for the same signature; this cache grows with every call, so nothing is
        reserved.
        """
        del max_new_tokens
        rows = _as_rows(ids)
        if cache is not None:
            if len({len(r) for r in rows}) != 1 or len(rows) != cache.batch:
                raise BadInputError("extending a cache needs one equally long piece per cached row")
            self._check_room(cache.length + len(rows[0]) + 1)
            return self._forward(torch.tensor(rows), cache)
        longest = max(len(r) for r in rows)
        self._check_room(longest + 1)
        if len(rows) == 1:
            logits, cache = self._prefill_one(rows[0])
        else:
            pads = [longest - len(r) for r in rows]
            tokens = torch.tensor([[self.tokenizer.pad_id] * p + list(r) for p, r in zip(pads, rows, strict=True)])
            pad = torch.tensor(pads, device=self.runner.device) if any(pads) else None
            logits, cache = self._forward(tokens, OrtKVCache.empty(self.config, len(rows), self.runner.device, pad))
        return repeat_prompt(logits, cache, len(rows), copies)

    def _prefill_one(self, prompt: list[int]) -> tuple[torch.Tensor, OrtKVCache]:
        """One prompt, starting from the longest prefix of it already run (see studio.ml.text.prompt_cache)."""
        cache = OrtKVCache.empty(self.config, 1, self.runner.device, None)
        hit = self.prompt_cache.lookup(prompt, id(self.runner))  # a session's weights never change
        shared = 0
        if hit is not None:
            shared = hit.shared
            cache = OrtKVCache(hit.entry.k[:, :, :, :shared].contiguous(), hit.entry.v[:, :, :, :shared].contiguous())
        if shared == len(prompt):
            logits = hit.entry.logits.clone()
        else:
            logits, cache = self._forward(torch.tensor([prompt[shared:]]), cache)
        self.prompt_cache.store(prompt, cache.k, cache.v, logits)
        return logits, cache

    def decode_step(
        self, token_ids: Sequence[int] | torch.Tensor, cache: OrtKVCache
    ) -> tuple[torch.Tensor, OrtKVCache]:
        """Feed one token per row; returns (next-token logits (B, V) float32 on the CPU, cache)."""
        tokens = torch.as_tensor(token_ids, dtype=torch.long).view(-1, 1)
        if tokens.shape[0] != cache.batch:
            raise BadInputError(f"decode_step got {tokens.shape[0]} tokens for a cache of {cache.batch} rows")
        self._check_room(cache.length + 1)
        return self._forward(tokens, cache)

    def extend_logits(self, rows: Sequence[Sequence[int]], cache: OrtKVCache) -> torch.Tensor:
        """As :meth:`studio.ml.text.lm.LanguageModel.extend_logits`: logits (B, T, V) at every fed position."""
        tokens = torch.tensor([list(r) for r in rows], dtype=torch.long)
        self._check_room(cache.length + tokens.shape[1])
        logits, _, _ = self._run(tokens, cache)
        return logits.float().cpu()

    def sequence_logits(self, ids: Sequence[int]) -> torch.Tensor:
        """Logits (T, V) float32 at every position of one sequence (for perplexity)."""
        rows = _as_rows(ids)
        self._check_room(len(rows[0]))
        cache = OrtKVCache.empty(self.config, 1, self.runner.device, None)
        logits, _, _ = self._run(torch.tensor(rows), cache)
        return logits[0].float().cpu()

    def _run(self, tokens: torch.Tensor, cache: OrtKVCache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask, positions = cache.feeds(tokens.shape[1])
        logits, keys, values = self.runner(tokens, mask, positions, cache.k, cache.v)
        return logits, keys, values

    def _forward(self, tokens: torch.Tensor, cache: OrtKVCache) -> tuple[torch.Tensor, OrtKVCache]:
        logits, keys, values = self._run(tokens, cache)
        return logits[:, -1].float().cpu(), cache.extended(keys, values)

    def _check_room(self, needed: int) -> None:
        if needed > self.config.max_seq_len:
            raise BadInputError(
                f"the text needs {needed} tokens but this model reads at most {self.config.max_seq_len}: "
                "shorten the brief or ask for less text"
            )


class DecoderSteps:
    """Feeds token ids to any ``decoder_with_past`` runner (torch or onnxruntime) of one sequence, keeping the
    cache; each call returns the next-token logits (V,) float32 (export checks compare runtimes with it)."""

    def __init__(self, runner: Any, config: LlamaConfig) -> None:
        self.runner = runner
        self.cache = OrtKVCache.empty(config, 1, torch.device(runner.device), None)

    def __call__(self, ids: Sequence[int]) -> torch.Tensor:
        mask, positions = self.cache.feeds(len(ids))
        logits, keys, values = self.runner(torch.tensor([list(ids)]), mask, positions, self.cache.k, self.cache.v)
        self.cache = self.cache.extended(keys, values)
        return logits[0, -1].float().cpu()


def load_ort_language_model(
    record: ExportRecord, gguf_path: Path, device: str = "cpu", threads: int = 0, name: str | None = None
) -> OrtLanguageModel | GqaLanguageModel:
    """Open the export's graph (checked against the registry's inputs) with the GGUF's tokenizer: the fused graph
    of an int4 export (:mod:`studio.ml.runtime.gqa_lm`), else the traced ``decoder_with_past``. CUDA asked without
    the CUDA provider runs on the CPU provider (logged)."""
    if record.arch not in ("llama", "llama-lora"):
        raise ModelFileError(f"the export in {record.folder} is of a {record.arch} model, not a language model")
    if FUSED_GRAPH in record.graphs:
        return load_gqa_language_model(record, gguf_path, threads, name)
    graph = next(g for g in registry.get("llama").onnx if g.name == GRAPH)
    path = record.graph_path(GRAPH)
    session = open_session(path, device, threads, graph)
    config, tokenizer, source = read_gguf_header(Path(gguf_path))
    runner = OrtGraphRunner(session, graph.input_names, device)
    return OrtLanguageModel(runner, config, tokenizer, torch.device(runner.device), name or record.model,
                            record.source_sha256, source, record.variant, path.stat().st_size)


def quality_ok(record: ExportRecord) -> bool:
    """fp32/fp16 exports are validated against torch at export; a quantised one must have had its held-out
    perplexity measured within tolerance (``studio export onnx --int4`` records it)."""
    if record.variant in ("fp32", "fp16"):
        return True
    ratio = record.extra.get("quality", {}).get("perplexity_ratio")
    return ratio is not None and ratio <= 1 + PERPLEXITY_TOLERANCE


def decode_seconds(lm: Any, steps: int = MEASURE_STEPS) -> float:
    """Median seconds per greedy decoding step after a short prompt (what a reply's speed depends on)."""
    logits, cache = lm.prefill(lm.tokenizer.encode(MEASURE_PROMPT), steps + 1)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        logits, cache = lm.decode_step([int(logits[0].argmax())], cache)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first step pays for lazy initialisation


def batch_seconds(lm: Any, rows: int = MEASURE_BATCH, steps: int = MEASURE_STEPS) -> float:
    """Seconds per token of ``rows`` candidates of one prompt decoded together for ``steps`` steps, as the copy
    generator decodes them: the start included (the prompt's keys and values shared between the rows),
    the prompt itself already in the prompt cache as the system message is."""
    prompt = lm.tokenizer.encode(MEASURE_PROMPT)
    lm.prefill(prompt, steps + 1)  # the prompt cache holds it, and lazy initialisation is paid
    start = time.perf_counter()
    logits, cache = candidate_batch(lm, prompt, rows, steps + 1)
    for _ in range(steps):
        logits, cache = lm.decode_step(logits.argmax(-1).tolist(), cache)
    return (time.perf_counter() - start) / (rows * steps)


def candidate_batch(lm: Any, prompt: list[int], rows: int, max_new_tokens: int) -> tuple[torch.Tensor, Any]:
    """(logits, cache) of ``rows`` copies of ``prompt``: the prefix shared (``prefill_shared``) where the runtime
    has it, as :func:`studio.ml.text.candidates.sample_lines` starts its batches."""
    if hasattr(lm, "prefill_shared"):
        return lm.prefill_shared(prompt[:-1], [prompt[-1:]], max_new_tokens, rows=[0] * rows)
    return lm.prefill(prompt, max_new_tokens, copies=rows)


class LanguageModels(ExportedModels):
    """Language models (GGUF) on the runtime loader: on the CPU the int4, int8 and fp32 exports whose quality is
    within tolerance, on CUDA fp16 and fp32; "auto" compares the time of one decoding step."""

    key = "lm"

    def variants(self, device: str) -> tuple[str, ...]:
        return CUDA_VARIANTS if device == "cuda" else CPU_VARIANTS

    def accept(self, record: ExportRecord) -> bool:
        return quality_ok(record)

    def load_torch(self, loader: RuntimeLoader, entry: ModelEntry, device: str) -> LanguageModel:
        # decoding steps run in inference mode themselves; loading inside it would make the weights inference
        # tensors, which have no version counter for the prompt cache's stamp
        return load_language_model(entry.weights, device, app_precision(device), name=entry.name)

    def load_onnx(self, loader: RuntimeLoader, entry: ModelEntry, record: ExportRecord,
                  device: str) -> OrtLanguageModel | GqaLanguageModel:
        return load_ort_language_model(record, entry.weights, device, loader.resources.cpu_threads, entry.name)

    def seconds(self, model: Any) -> float:
        return decode_seconds(model)

    def batch_seconds(self, model: Any) -> float:
        """Seconds a token of the copy generator's work, MEASURE_BATCH candidates of one prompt (what "auto"
        compares for copy; both runtimes keep the prompt's keys and values once for all rows)."""
        return batch_seconds(model)


ADAPTER = LanguageModels()
