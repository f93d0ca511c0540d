"""The language model on onnxruntime's fused graph (:mod:`studio.ml.export.llama_graph`), behind the same
``prefill`` / ``decode_step`` / ``prefill_shared`` interface as :class:`studio.ml.text.lm.LanguageModel`, so
streaming, the constrained decoder and candidate batches run on it unchanged.

The keys and values live in one preallocated numpy buffer per cache, ``(layers, 2, batch, kv_heads, capacity,
head_dim)``; every layer's slice is bound (IO binding) as both the graph's past input and its present output, so
``GroupQueryAttention`` writes each new position in place and nothing is copied per token. Rows keep their own
lengths (``seqlens_k``): prompts of different lengths are right-padded once and then each row writes at its own
position, so there is no padding mask at all. The kernel takes several new tokens with a past for one row at a
time only, so several rows are extended a token at a time (one batched step per token).

Rows of one prompt (candidates: ``prefill_shared``; variants and scored lines: ``prefill(copies=)``) share it
instead of copying it: a :class:`SharedCache` holds the prompt once in a one-row buffer and appends every row's
tokens after it; each step feeds all rows' tokens as one sequence, with their own rotary positions
(``position_ids``) and an attention bias that lets each token see the prompt, its row's tail and its row's earlier
tokens only. Keeping, repeating or dropping rows copies nothing, and a step reads the prompt's keys and values once
for all rows, not once per row.

An adapter's export holds a second graph (:data:`~studio.ml.runtime.exports.FUSED_ONE_ROW_GRAPH`) whose products
are 8-bit blocks: at several threads a step that feeds a single token (one stream) runs on it, every other run on the
per-tensor int8 graph (:func:`studio.ml.runtime.cpu.one_row_graph`). Both write the same keys and values buffer.

Usage::

    lm = load_gqa_language_model(record, gguf_path, threads=2)
    logits, cache = lm.prefill(prompt, max_new_tokens=40)
    logits, cache = lm.decode_step([int(logits[0].argmax())], cache)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from studio.core.errors import BadInputError, ModelFileError, StudioError
from studio.ml.models.llama import LlamaConfig
from studio.ml.runtime.exports import FUSED_FORMAT as FORMAT
from studio.ml.runtime.exports import FUSED_GRAPH as GRAPH
from studio.ml.runtime.exports import FUSED_INPUTS as INPUTS
from studio.ml.runtime.exports import FUSED_ONE_ROW_GRAPH as ONE_ROW_GRAPH
from studio.ml.runtime.exports import ExportRecord
from studio.ml.text import gguf_loader
from studio.ml.text.lm import _as_rows, repeat_prompt
from studio.ml.text.prompt_cache import PromptCache
from studio.ml.text.tokenizer import GGUFTokenizer

log = logging.getLogger(__name__)


@dataclass
class GqaCache:
    """Keys and values ``kv`` (layers, 2, rows, kv_heads, capacity, head_dim) float32 and each row's ``lengths``;
    the first ``len(lengths)`` rows of the buffer are the batch (finished rows are squeezed out in place)."""

    kv: np.ndarray
    lengths: np.ndarray  # (batch,) int64: positions filled in each row
    _bound: dict[int, Any] = field(default_factory=dict, repr=False)  # IO bindings of this buffer, per session

    @classmethod
    def allocate(cls, config: LlamaConfig, batch: int, capacity: int) -> GqaCache:
        shape = (config.n_layers, 2, batch, config.n_kv_heads, capacity, config.head_dim)
        return cls(np.zeros(shape, np.float32), np.zeros(batch, np.int64))

    @property
    def batch(self) -> int:
        return len(self.lengths)

    @property
    def capacity(self) -> int:
        return self.kv.shape[4]

    @property
    def length(self) -> int:
        """The longest row's length."""
        return int(self.lengths.max())

    @property
    def nbytes(self) -> int:
        return self.kv.nbytes

    def reserve(self, needed: int) -> GqaCache:
        """This cache, or a copy with room for ``needed`` positions (capacity doubles, what is stored is kept)."""
        if needed <= self.capacity:
            return self
        grown = np.zeros((*self.kv.shape[:2], self.batch, self.kv.shape[3], max(needed, 2 * self.capacity),
                          self.kv.shape[5]), np.float32)
        grown[:, :, :, :, : self.capacity] = self.kv[:, :, : self.batch]
        return GqaCache(grown, self.lengths.copy())

    def select(self, rows: torch.Tensor | Sequence[int]) -> GqaCache:
        """Keep (or repeat) ``rows`` (finished candidates leave the batch). Keeping fewer rows in their order
        squeezes them to the front of this buffer, in place: this cache is then spent. Otherwise the filled
        positions are copied into a new buffer (the rest of a row is written before anything reads it)."""
        index = np.asarray(torch.as_tensor(rows).cpu(), dtype=np.int64).reshape(-1)
        filled = self.length
        if len(index) < self.batch and bool(np.all(np.diff(index) > 0)):
            for row, source in enumerate(index.tolist()):
                if row != source:  # a source is never a row already written: sources only lie further on
                    self.kv[:, :, row, :, :filled] = self.kv[:, :, source, :, :filled]
            return GqaCache(self.kv, self.lengths[index].copy())
        kv = np.empty((*self.kv.shape[:2], len(index), *self.kv.shape[3:]), np.float32)
        for row, source in enumerate(index.tolist()):
            kv[:, :, row, :, :filled] = self.kv[:, :, source, :, :filled]
        return GqaCache(kv, self.lengths[index].copy())

    def binding(self, session: Any) -> Any:
        """An IO binding of ``session`` with every layer's keys and values bound in place (made once per session)."""
        key = id(session)
        if key not in self._bound:
            import onnxruntime as ort

            bound = session.io_binding()
            for layer in range(self.kv.shape[0]):
                for j, kind in enumerate(("key", "value")):
                    value = ort.OrtValue.ortvalue_from_numpy(self.kv[layer, j, : self.batch])  # shares the memory
                    bound.bind_ortvalue_input(f"past_{kind}.{layer}", value)
                    bound.bind_ortvalue_output(f"present_{kind}.{layer}", value)
            self._bound[key] = bound
        return self._bound[key]


@dataclass
class SharedCache:
    """Rows that share a prompt: ``buffer`` (one row) holds the prompt, then every row's tokens where they were
    written; ``visible`` (rows, capacity) says which of those positions each row attends to, ``positions`` (rows,)
    each row's next rotary position. Rows selected from this cache share its buffer: this cache is then spent."""

    buffer: GqaCache
    visible: np.ndarray
    positions: np.ndarray

    @classmethod
    def of_prompt(cls, buffer: GqaCache, rows: int) -> SharedCache:
        """``rows`` rows that have each read the prompt in ``buffer`` (one row) and nothing else."""
        visible = np.zeros((rows, buffer.capacity), bool)
        visible[:, : buffer.length] = True
        return cls(buffer, visible, np.full(rows, buffer.length, np.int64))

    @property
    def batch(self) -> int:
        return len(self.positions)

    @property
    def length(self) -> int:
        """The longest row's length (prompt, tail and tokens of its own)."""
        return int(self.positions.max())

    @property
    def written(self) -> int:
        return self.buffer.length

    def select(self, rows: torch.Tensor | Sequence[int]) -> SharedCache:
        """Keep, repeat or drop rows (finished candidates leave the batch): no keys or values are copied."""
        index = np.asarray(torch.as_tensor(rows).cpu(), dtype=np.int64).reshape(-1)
        return SharedCache(self.buffer, self.visible[index], self.positions[index])

    def reserve(self, new: int, limit: int) -> SharedCache:
        """This cache, or one with room for ``new`` more tokens within ``limit`` positions: the buffer doubles, or,
        at the limit, keeps only the positions some row still attends to."""
        if self.written + new <= self.buffer.capacity:
            return self
        if self.written + new <= limit:
            keep = np.arange(self.written)
        else:
            keep = np.flatnonzero(self.visible[:, : self.written].any(0))
        if len(keep) + new > limit:
            raise BadInputError(f"these candidates need {len(keep) + new} positions but this model reads at most "
                                f"{limit}: ask for fewer candidates or shorter lines")
        kv = self.buffer.kv
        capacity = min(max(len(keep) + new, 2 * self.buffer.capacity), limit)
        buffer = GqaCache(np.zeros((*kv.shape[:4], capacity, kv.shape[5]), np.float32), np.array([len(keep)]))
        whole = len(keep) == self.written  # a slice copies 3x faster than gathering the same positions
        buffer.kv[:, :, :, :, : len(keep)] = kv[:, :, :, :, : self.written] if whole else kv[:, :, :, :, keep]
        visible = np.zeros((self.batch, capacity), bool)
        visible[:, : len(keep)] = self.visible[:, keep]
        return SharedCache(buffer, visible, self.positions)


@dataclass
class GqaLanguageModel:
    """A language model whose network runs in onnxruntime's fused graph; tokenizer and sampling stay in Python."""

    session: Any
    config: LlamaConfig
    tokenizer: GGUFTokenizer
    name: str = ""
    sha256: str = ""  # of the GGUF the export was made from
    source: dict[str, Any] = field(default_factory=dict)
    variant: str = "int4"
    nbytes: int = 0  # size of the graph file: what the worker's model cache budgets
    threads: int = 0
    one_row: Any = None  # the session that runs a step of a single token, where it is not ``session``
    prompt_cache: PromptCache = field(default_factory=PromptCache, repr=False, compare=False)
    runtime: ClassVar[str] = "onnxruntime"
    device: ClassVar[torch.device] = torch.device("cpu")
    dtype: ClassVar[torch.dtype] = torch.float32

    @property
    def model(self) -> Any:
        """There is no torch module here: say so plainly to code that needs one (LoRA, training)."""
        raise StudioError(
            f"{self.name or 'this language model'} runs on onnxruntime; LoRA adapters, training and torch-side "
            "evaluation need the torch model (get_language_model(..., runtime='torch'))"
        )

    def on_graph(self, graph: str) -> GqaLanguageModel:
        """This model running everything on one of its graphs (the export measures each)."""
        session = self.one_row if graph == ONE_ROW_GRAPH and self.one_row is not None else self.session
        return replace(self, session=session, one_row=None, prompt_cache=PromptCache())

    def _session_for(self, tokens: int) -> Any:
        """The session a run feeding ``tokens`` tokens in all goes to."""
        return self.one_row if tokens == 1 and self.one_row is not None else self.session

    def prefill(self, ids: Sequence[int] | Sequence[Sequence[int]], max_new_tokens: int = 256, copies: int = 1,
                cache: GqaCache | SharedCache | None = None) -> tuple[torch.Tensor, GqaCache | SharedCache]:
        """As :meth:`studio.ml.text.lm.LanguageModel.prefill`: (next-token logits (B, V) float32, cache)."""
        rows = _as_rows(ids)
        if cache is not None:
            if len({len(r) for r in rows}) != 1 or len(rows) != cache.batch:
                raise BadInputError("extending a cache needs one equally long piece per cached row")
            self._check_room(cache.length + len(rows[0]) + 1)
            if isinstance(cache, SharedCache):
                return self._shared_run(rows, cache)
            cache = cache.reserve(self._capacity(cache.length + len(rows[0]), max_new_tokens))
            return self._extend(np.asarray(rows, np.int64), cache)[:, -1], cache
        longest = max(len(r) for r in rows)
        self._check_room(longest + 1)
        capacity = self._capacity(longest, max_new_tokens)
        if len(rows) == 1 and copies > 1:  # rows of one prompt share it, each writing its tokens into its buffer
            logits, cache = self._prefill_one(rows[0], self._capacity(longest, copies * max_new_tokens))
            return logits.expand(copies, -1).contiguous(), SharedCache.of_prompt(cache, copies)
        if len(rows) == 1:
            logits, cache = self._prefill_one(rows[0], capacity)
        else:
            logits, cache = self._prefill_padded(rows, capacity)
        return repeat_prompt(logits, cache, len(rows), copies)

    def decode_step(self, token_ids: Sequence[int] | torch.Tensor,
                    cache: GqaCache | SharedCache) -> tuple[torch.Tensor, GqaCache | SharedCache]:
        """Feed one token per row; returns (next-token logits (B, V) float32, cache), the cache filled in place."""
        tokens = np.asarray(torch.as_tensor(token_ids, dtype=torch.long).view(-1, 1))
        if tokens.shape[0] != cache.batch:
            raise BadInputError(f"decode_step got {tokens.shape[0]} tokens for a cache of {cache.batch} rows")
        self._check_room(cache.length + 1)
        if isinstance(cache, SharedCache):
            return self._shared_run(tokens.tolist(), cache)
        cache = cache.reserve(cache.length + 1)
        return self._run(tokens, cache)[:, -1], cache

    def prefill_shared(self, prefix: Sequence[int], tails: Sequence[Sequence[int]], max_new_tokens: int = 64,
                       rows: Sequence[int] | None = None) -> tuple[torch.Tensor, SharedCache]:
        """``prefix`` once (through the prompt cache), then every one of ``tails`` after it in one run; returns
        (logits (B, V), a :class:`SharedCache`, the prefix stored once) for ``rows``: the tail each row continues
        (repeats allowed; default one row per tail). The buffer is sized for every row's ``max_new_tokens``:
        growing it later copies every position written, ~50 MB at a copy prompt of 500 tokens and 24 rows."""
        pieces = _as_rows(tails)
        index = list(range(len(pieces))) if rows is None else list(rows)
        longest = max(len(r) for r in pieces)
        self._check_room(len(prefix) + longest + 1)
        room = len(prefix) + sum(len(r) for r in pieces) + len(index) * max_new_tokens
        _, head = self._prefill_one(list(prefix), min(room, self.config.max_seq_len))
        logits, cache = self._shared_run(pieces, SharedCache.of_prompt(head, len(pieces)))
        return (logits, cache) if rows is None else (logits[index], cache.select(index))

    def _shared_run(self, rows: list[list[int]], cache: SharedCache,
                    every_position: bool = False) -> tuple[torch.Tensor, SharedCache]:
        """Each row's tokens (any lengths) after what it has read, all in one run; (logits (B, V) at each row's
        last token, or (all tokens fed, V) at every one, the cache with them written)."""
        lengths = np.asarray([len(r) for r in rows], np.int64)
        new = int(lengths.sum())
        cache = cache.reserve(new, self.config.max_seq_len)
        start, total = cache.written, cache.written + new
        owner = np.repeat(np.arange(len(rows)), lengths)  # the row of each token fed, in feeding order
        order = np.arange(new)
        sees = np.empty((new, total), bool)
        sees[:, :start] = cache.visible[owner, :start]
        sees[:, start:] = (owner[:, None] == owner[None, :]) & (order[None, :] <= order[:, None])
        first = np.cumsum(lengths) - lengths
        positions = cache.positions[owner] + order - first[owner]
        session = self._session_for(new)
        bound = cache.buffer.binding(session)
        bound.bind_cpu_input("input_ids", np.asarray([[t for r in rows for t in r]], np.int64))
        bound.bind_cpu_input("seqlens_k", np.array([total - 1], np.int32))
        bound.bind_cpu_input("total_sequence_length", np.array(total, np.int32))
        picked = np.arange(new) if every_position else first + lengths - 1
        bound.bind_cpu_input("logit_positions", picked)
        bound.bind_cpu_input("position_ids", positions[None])
        bound.bind_cpu_input("attention_bias", np.where(sees, np.float32(0), np.float32(-np.inf))[None, None])
        logits = np.empty((1, len(picked), self.config.vocab_size), np.float32)
        bound.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
        session.run_with_iobinding(bound)
        cache.buffer.lengths = np.array([total], np.int64)
        cache.visible[owner, start + order] = True
        cache.positions = cache.positions + lengths
        return torch.from_numpy(logits[0]), cache

    def extend_logits(self, rows: Sequence[Sequence[int]], cache: GqaCache | SharedCache) -> torch.Tensor:
        """As :meth:`studio.ml.text.lm.LanguageModel.extend_logits`: logits (B, T, V) at every fed position (rows
        sharing a prompt: every row's tokens in one run)."""
        tokens = np.asarray([list(r) for r in rows], np.int64)
        self._check_room(cache.length + tokens.shape[1])
        if isinstance(cache, SharedCache):
            return self._shared_run(tokens.tolist(), cache, every_position=True)[0].view(*tokens.shape, -1)
        if cache.capacity < cache.length + tokens.shape[1]:
            raise BadInputError("the cache has no room for these tokens: prefill with a larger max_new_tokens")
        return self._extend(tokens, cache)

    def sequence_logits(self, ids: Sequence[int]) -> torch.Tensor:
        """Logits (T, V) float32 at every position of one sequence (for perplexity)."""
        rows = _as_rows(ids)
        self._check_room(len(rows[0]))
        cache = GqaCache.allocate(self.config, 1, len(rows[0]))
        return self._run(np.asarray(rows, np.int64), cache, every_position=True)[0]

    def _prefill_one(self, prompt: list[int], capacity: int) -> tuple[torch.Tensor, GqaCache]:
        """One prompt, starting from the longest prefix of it already run (see studio.ml.text.prompt_cache)."""
        cache = GqaCache.allocate(self.config, 1, capacity)
        hit = self.prompt_cache.lookup(prompt, id(self.session))  # a session's weights never change
        shared = 0
        if hit is not None:
            shared = hit.shared
            cache.kv[:, 0, :, :, :shared] = hit.entry.k[:, :, :, :shared].numpy()
            cache.kv[:, 1, :, :, :shared] = hit.entry.v[:, :, :, :shared].numpy()
            cache.lengths[0] = shared
        if shared == len(prompt):
            logits = hit.entry.logits.clone()
        else:
            logits = self._run(np.asarray([prompt[shared:]], np.int64), cache)[:, -1]
        keys, values = torch.from_numpy(cache.kv[:, 0, :1]), torch.from_numpy(cache.kv[:, 1, :1])
        self.prompt_cache.store(prompt, keys, values, logits)
        return logits, cache

    def _prefill_padded(self, rows: list[list[int]], capacity: int) -> tuple[torch.Tensor, GqaCache]:
        """Several prompts right-padded into one run; each row's logits are taken at its own last token."""
        longest = max(len(r) for r in rows)
        tokens = np.asarray([r + [self.tokenizer.pad_id] * (longest - len(r)) for r in rows], np.int64)
        cache = GqaCache.allocate(self.config, len(rows), capacity)
        lasts = sorted({len(r) - 1 for r in rows})
        logits = self._run(tokens, cache, positions=lasts, lengths=np.asarray([len(r) for r in rows]))
        return torch.stack([logits[b, lasts.index(len(r) - 1)] for b, r in enumerate(rows)]), cache

    def _extend(self, tokens: np.ndarray, cache: GqaCache) -> torch.Tensor:
        """Feed ``tokens`` (B, T) after the cache; logits (B, T, V). Several rows go a token at a time."""
        if cache.batch == 1 or tokens.shape[1] == 1:
            return self._run(tokens, cache, every_position=True)
        return torch.cat([self._run(tokens[:, t:t + 1], cache) for t in range(tokens.shape[1])], dim=1)

    def _run(self, tokens: np.ndarray, cache: GqaCache, every_position: bool = False,
             positions: Sequence[int] | None = None, lengths: np.ndarray | None = None) -> torch.Tensor:
        """Run ``tokens`` (B, T) after each row's filled positions; logits (B, P, V) at ``positions`` (default: the
        last, or every one). ``lengths``: the real lengths of right-padded first prompts."""
        batch, new = tokens.shape
        total = cache.lengths + new if lengths is None else lengths
        if positions is None:
            positions = range(new) if every_position else [new - 1]
        picked = np.asarray(list(positions), np.int64)
        longest = max(int(total.max()), new)
        session = self._session_for(tokens.size)
        bound = cache.binding(session)
        bound.bind_cpu_input("input_ids", np.ascontiguousarray(tokens))
        bound.bind_cpu_input("seqlens_k", (total - 1).astype(np.int32))
        bound.bind_cpu_input("total_sequence_length", np.array(longest, np.int32))
        bound.bind_cpu_input("logit_positions", picked)
        start = cache.lengths if lengths is None else np.zeros(batch, np.int64)
        bound.bind_cpu_input("position_ids", start[:, None] + np.arange(new, dtype=np.int64))
        bound.bind_cpu_input("attention_bias", np.zeros((1, 1, new, longest), np.float32))
        logits = np.empty((batch, len(picked), self.config.vocab_size), np.float32)
        bound.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
        session.run_with_iobinding(bound)
        cache.lengths = cache.lengths + new if lengths is None else lengths.astype(np.int64)
        return torch.from_numpy(logits)

    def _capacity(self, needed: int, max_new_tokens: int) -> int:
        return min(needed + max_new_tokens, self.config.max_seq_len)

    def _check_room(self, needed: int) -> None:
        if needed > self.config.max_seq_len:
            raise BadInputError(
                f"the text needs {needed} tokens but this model reads at most {self.config.max_seq_len}: "
                "shorten the brief or ask for less text"
            )


def read_gguf_header(path: Path) -> tuple[LlamaConfig, GGUFTokenizer, dict[str, Any]]:
    """Config, tokenizer and source info from a GGUF's metadata (no weights are read)."""
    reader = gguf_loader.open_gguf(path)
    config = gguf_loader.read_config(reader, path.name)
    tokenizer = GGUFTokenizer.from_metadata(gguf_loader.read_tokenizer_metadata(reader))
    return config, tokenizer, gguf_loader.source_info(reader, path)


def is_current(record: ExportRecord) -> bool:
    """Whether an export is this version's fused graph (older exports are made again)."""
    return GRAPH in record.graphs and record.extra.get("format") == FORMAT


def load_gqa_language_model(record: ExportRecord, gguf_path: Path, threads: int = 0, name: str | None = None,
                            one_row: bool | None = None) -> GqaLanguageModel:
    """Open the export's fused graph (its inputs checked) with the GGUF's tokenizer, on the CPU; and its graph for a
    single row, where it has one and ``one_row`` (default: :func:`~studio.ml.runtime.cpu.one_row_graph` at
    ``threads``, 0 being every core)."""
    from studio.ml.runtime.cpu import cores, int4_kernel_note, one_row_graph

    if not is_current(record):
        raise ModelFileError(f"the export in {record.folder} is from an older version of Studio: export it again")
    if note := int4_kernel_note():
        log.warning("%s", note)
    session = _open_checked(record.graph_path(GRAPH), threads)
    nbytes = record.graph_path(GRAPH).stat().st_size
    single = None
    if ONE_ROW_GRAPH in record.graphs and (one_row_graph(threads or cores()) if one_row is None else one_row):
        single = _open_checked(record.graph_path(ONE_ROW_GRAPH), threads)
        nbytes += record.graph_path(ONE_ROW_GRAPH).stat().st_size
    config, tokenizer, source = read_gguf_header(Path(gguf_path))
    return GqaLanguageModel(session, config, tokenizer, name or record.model, record.source_sha256, source,
                            record.variant, nbytes, threads, single)


def _open_checked(path: Path, threads: int) -> Any:
    """An onnxruntime session on a fused graph whose inputs are the fused decoder's."""
    from studio.ml.runtime.ort_session import open_session

    session = open_session(path, "cpu", threads, spin_within_runs=threads != 1)
    names = [i.name for i in session.get_inputs()]
    if names[: len(INPUTS)] != list(INPUTS):
        raise ModelFileError(f"{path.name} has inputs {names[:4]}, not the fused decoder's: export it again")
    return session
