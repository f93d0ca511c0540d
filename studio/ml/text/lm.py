"""A loaded language model: Llama weights + the GGUF's tokenizer on one device, with prefill and decode steps.

The first load of a GGUF dequantises it (seconds) and keeps the float32 weights as safetensors in
``cache_dir()/lm/<sha256>.safetensors``; later loads read that file instead. Loading also writes the JSON sidecar
beside the GGUF that makes it appear in the model store (when that folder is writable).

Usage::

    from studio.ml.text.lm import load_language_model
    from studio.ml.text.generate import stream

    lm = load_language_model(gguf_path, device="cpu")            # or get_language_model(ctx.resources, name, dev)
    prompt = lm.tokenizer.encode_chat([{"role": "user", "content": "A headline for trail shoes"}])
    for piece in stream(lm, prompt, max_new_tokens=40, seed=7):   # text as it is generated
        print(piece, end="")

    # Lower level, what ``stream`` does:
    logits, cache = lm.prefill(prompt, max_new_tokens=40)        # (1, V) float32 on the CPU: the next token
    logits, cache = lm.decode_step([int(logits.argmax())], cache)
    logits, cache = lm.prefill(prompt, max_new_tokens=40, copies=3)           # 3 variants, one prefill
    logits, cache = lm.prefill([prompt_a, prompt_b], max_new_tokens=40)       # different prompts, left-padded
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from studio.core import paths
from studio.core.errors import BadInputError, DiskWriteError, ModelFileError
from studio.core.safe_write import staged_file, write_atomic
from studio.ml.checkpoint import config_from_dict, sha256_file
from studio.ml.models.llama import (
    INT8_ROW_BLOCK,
    KVCache,
    Llama,
    LlamaConfig,
    SharedPrefixCache,
    batch_copies,
    quantise_int8,
)
from studio.ml.text import gguf_loader
from studio.ml.text.prompt_cache import PromptCache
from studio.ml.text.tokenizer import GGUFTokenizer

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "int8": torch.int8}


@dataclass
class LanguageModel:
    """``dtype``: precision of the weights, activations and KV cache; ``weight_dtype``: precision decoding steps
    read the matrices in (on CPUs a float16 copy of the float32 weights, see ``Llama.set_decode_precision``)."""

    model: Llama
    tokenizer: GGUFTokenizer
    device: torch.device
    dtype: torch.dtype
    name: str = ""
    sha256: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    weight_dtype: torch.dtype | None = None  # precision decoding reads the matrices in (default: ``dtype``)
    prompt_cache: PromptCache = field(default_factory=PromptCache, repr=False, compare=False)

    @property
    def config(self) -> LlamaConfig:
        return self.model.config

    @property
    def nbytes(self) -> int:
        """Memory held by the weights and their decoding copies (what :class:`studio.ml.cache.ModelCache` budgets)."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    @torch.inference_mode()
    def prefill(
        self,
        ids: Sequence[int] | Sequence[Sequence[int]],
        max_new_tokens: int = 256,
        copies: int = 1,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """Run the prompt(s); returns (next-token logits (B, V) float32 on the CPU, cache).

        Room for ``max_new_tokens`` more is reserved (up to the model's context length; the cache grows if a
        caller goes further). A prompt that leaves no room for a reply is refused.

        ``ids`` is one prompt or a list of prompts (left-padded to the longest, each row keeps its own
        positions). ``copies`` > 1 repeats a single prompt's cache for that many variants. With ``cache``,
        ``ids`` (same length for every row) extend that cache instead of starting a new one.
        """
        rows = _as_rows(ids)
        limit = self.config.max_seq_len
        if cache is not None:
            if len({len(r) for r in rows}) != 1 or len(rows) != cache.batch:
                raise BadInputError("extending a cache needs one equally long piece per cached row")
            self._check_room(cache.length + len(rows[0]) + 1)
            cache.reserve(min(cache.length + len(rows[0]) + max_new_tokens, limit))
            return self._forward(torch.tensor(rows), cache, last_only=True)
        longest = max(len(r) for r in rows)
        self._check_room(longest + 1)
        capacity = min(longest + max_new_tokens, limit)
        if len(rows) == 1:
            logits, cache = self._prefill_one(rows[0], capacity)
        else:
            pads = [longest - len(r) for r in rows]
            tokens = torch.tensor([[self.tokenizer.pad_id] * p + list(r) for p, r in zip(pads, rows, strict=True)])
            pad = torch.tensor(pads, device=self.device) if any(pads) else None
            cache = KVCache.allocate(self.config, len(rows), capacity, self.device, self.dtype, pad)
            logits, cache = self._forward(tokens, cache, last_only=True)
        return repeat_prompt(logits, cache, len(rows), copies)

    @torch.inference_mode()
    def decode_step(self, token_ids: Sequence[int] | torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """Feed one token per row; returns (next-token logits (B, V) float32 on the CPU, cache)."""
        tokens = torch.as_tensor(token_ids, dtype=torch.long).view(-1, 1)
        if tokens.shape[0] != cache.batch:
            raise BadInputError(f"decode_step got {tokens.shape[0]} tokens for a cache of {cache.batch} rows")
        self._check_room(cache.length + 1)
        return self._forward(tokens, cache, last_only=False)

    @torch.inference_mode()
    def prefill_shared(self, prefix: Sequence[int], tails: Sequence[Sequence[int]], max_new_tokens: int = 64,
                       rows: Sequence[int] | None = None) -> tuple[torch.Tensor, SharedPrefixCache]:
        """Run ``prefix`` once (through the prompt cache) and each of ``tails`` after it as its own row; returns
        (next-token logits (B, V) float32 on the CPU, a cache whose rows share the prefix's keys and values) for
        ``rows``: the tail each row continues (repeats allowed; default one row per tail)."""
        logits, cache = self._prefill_tails(prefix, tails, max_new_tokens)
        if rows is None:
            return logits, cache
        index = torch.tensor(list(rows), dtype=torch.long)
        return logits[index], cache.select(index.to(self.device))

    def _prefill_tails(self, prefix: Sequence[int], tails: Sequence[Sequence[int]],
                       max_new_tokens: int) -> tuple[torch.Tensor, SharedPrefixCache]:
        rows = _as_rows(tails)
        longest = max(len(r) for r in rows)
        self._check_room(len(prefix) + longest + 1)
        with batch_copies(False):  # the prompt cache keeps float32 prefixes, whoever asks
            _, head = self._prefill_one(list(prefix), len(prefix))
        pads = [longest - len(r) for r in rows]
        tokens = torch.tensor([[self.tokenizer.pad_id] * p + r for p, r in zip(pads, rows, strict=True)])
        pad = torch.tensor(pads, device=self.device) if any(pads) else None
        capacity = min(longest + max_new_tokens, self.config.max_seq_len - len(prefix))
        own = KVCache.allocate(self.config, len(rows), capacity, self.device, self.dtype, pad)
        return self._forward(tokens, SharedPrefixCache(head, own), last_only=True)

    @torch.inference_mode()
    def extend_logits(self, rows: Sequence[Sequence[int]], cache: KVCache) -> torch.Tensor:
        """Feed equally long ``rows`` after ``cache``; returns the logits at every fed position (B, T, V) float32
        on the CPU (scoring candidate lines: one pass, no sampling)."""
        tokens = torch.tensor([list(r) for r in rows], dtype=torch.long)
        self._check_room(cache.length + tokens.shape[1])
        logits, _ = self.model(tokens.to(self.device), cache=cache, last_only=False)
        return logits.float().cpu()

    def _prefill_one(self, prompt: list[int], capacity: int) -> tuple[torch.Tensor, KVCache]:
        """One prompt, starting from the longest prefix of it already run (see studio.ml.text.prompt_cache)."""
        cache = KVCache.allocate(self.config, 1, capacity, self.device, self.dtype)
        hit = self.prompt_cache.lookup(prompt, self._weights_stamp())
        shared = 0
        if hit is not None:
            shared = hit.shared
            cache.k[:, :, :, :shared] = hit.entry.k[:, :, :, :shared]
            cache.v[:, :, :, :shared] = hit.entry.v[:, :, :, :shared]
            cache.length = shared
        if shared == len(prompt):
            logits = hit.entry.logits.clone()
        else:
            logits, cache = self._forward(torch.tensor([prompt[shared:]]), cache, last_only=True)
        self.prompt_cache.store(prompt, cache.k, cache.v, logits)
        return logits, cache

    def _weights_stamp(self) -> tuple[int, int]:
        """Changes whenever a weight is changed in place (a tensor's version counter), so stale prefixes go.
        Weights made in inference mode have no counter (and cannot be changed outside it): they count as 0."""
        return id(self.model), sum(0 if p.is_inference() else p._version for p in self.model.parameters())

    def _forward(self, tokens: torch.Tensor, cache: KVCache, last_only: bool) -> tuple[torch.Tensor, KVCache]:
        logits, _ = self.model(tokens.to(self.device), cache=cache, last_only=last_only)
        return logits[:, -1].float().cpu(), cache

    def _check_room(self, needed: int) -> None:
        if needed > self.config.max_seq_len:
            raise BadInputError(
                f"the text needs {needed} tokens but this model reads at most {self.config.max_seq_len}: "
                "shorten the brief or ask for less text"
            )


def _as_rows(ids: Sequence[int] | Sequence[Sequence[int]] | torch.Tensor) -> list[list[int]]:
    if isinstance(ids, torch.Tensor):
        ids = ids.tolist()
    if not ids:
        raise BadInputError("the prompt is empty")
    rows = [list(ids)] if isinstance(ids[0], int) else [list(r) for r in ids]
    if any(not r for r in rows):
        raise BadInputError("one of the prompts is empty")
    return rows


def repeat_prompt(logits: torch.Tensor, cache: Any, prompts: int, copies: int) -> tuple[torch.Tensor, Any]:
    """A prefill's (logits, cache) repeated as ``copies`` rows of one prompt (candidates sampled from it): every
    runtime's ``prefill(..., copies=)``. Copies of several prompts at once are refused."""
    if copies <= 1:
        return logits, cache
    if prompts != 1:
        raise BadInputError("copies repeat a single prompt; pass one prompt or several, not both")
    return logits.expand(copies, -1).contiguous(), cache.expand(copies)


def resolve_dtype(device: str | torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """Default: bfloat16 on a GPU that has it, else float16; float32 on a CPU. On a CPU "fp16" (or "bf16") keeps the
    float32 weights and adds float16 copies that decoding steps read: about twice the matrix speed where the CPU
    converts float16 in hardware (x86 AVX2/AVX-512, ARM), for 50 % more memory."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        try:
            return DTYPES[dtype]
        except KeyError:
            raise BadInputError(f"unknown precision {dtype!r} (use fp32, fp16, bf16 or int8)") from None
    if torch.device(device).type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered for this process while its size and mtime stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = sha256_file(path)
    return _SHA_MEMO[key]


def _cache_files(sha256: str) -> tuple[Path, Path]:
    folder = paths.cache_dir() / "lm"
    return folder / f"{sha256}.safetensors", folder / f"{sha256}.json"


def _read_cache(sha256: str) -> tuple[LlamaConfig, GGUFTokenizer, dict[str, Any], dict[str, torch.Tensor]] | None:
    weights_path, meta_path = _cache_files(sha256)
    if not (weights_path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != CACHE_FORMAT:
            return None
        config = config_from_dict(LlamaConfig, meta["config"])
        tokenizer = GGUFTokenizer.from_json(meta["tokenizer"])
        weights = load_file(str(weights_path))
    except Exception as exc:  # our own cache: anything unreadable is rebuilt from the GGUF
        log.warning("ignoring the damaged language-model cache %s (%s)", weights_path.name, exc)
        return None
    return config, tokenizer, meta.get("source", {}), weights


def _write_cache(
    sha256: str, config: LlamaConfig, tokenizer: GGUFTokenizer, source: dict[str, Any],
    weights: dict[str, torch.Tensor],
) -> None:
    weights_path, meta_path = _cache_files(sha256)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": CACHE_FORMAT, "config": asdict(config), "tokenizer": tokenizer.to_json(), "source": source}
    size = sum(t.numel() * t.element_size() for t in weights.values())
    try:
        with staged_file(weights_path, "the language-model cache", needed=size) as tmp:
            save_file(weights, str(tmp), metadata={"source_sha256": sha256})
        write_atomic(meta_path, json.dumps(meta), "the language-model cache")
    except DiskWriteError as exc:  # a full disk costs the next load some seconds, nothing more
        log.warning("could not cache the dequantised weights (%s)", exc)


def read_gguf(path: Path) -> tuple[LlamaConfig, GGUFTokenizer, dict[str, Any], dict[str, torch.Tensor]]:
    """Validate and dequantise a GGUF (slow path): (config, tokenizer, source info, float32 weights)."""
    reader = gguf_loader.open_gguf(path)
    config = gguf_loader.read_config(reader, path.name)
    tokenizer = GGUFTokenizer.from_metadata(gguf_loader.read_tokenizer_metadata(reader))
    weights = gguf_loader.read_weights(reader, config)
    return config, tokenizer, gguf_loader.source_info(reader, path), weights


def build_model(config: LlamaConfig, weights: dict[str, torch.Tensor]) -> Llama:
    """A Llama holding ``weights`` (no random initialisation first: every tensor is replaced)."""
    model = Llama(config, init_weights=False)
    try:
        model.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelFileError(f"the weights do not fit the model: {str(exc).splitlines()[0]}") from None
    return model.eval()


def load_language_model(
    path: Path, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None, name: str | None = None
) -> LanguageModel:
    """Load a Llama GGUF (``ModelFileError`` for anything that is not one) onto ``device``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"language model file {path} does not exist")
    sha256 = file_sha256(path)
    cached = _read_cache(sha256)
    if cached is None:
        cached = read_gguf(path)
        _write_cache(sha256, *cached)
    config, tokenizer, source, weights = cached
    register_sidecar(path, config, sha256, source, name)
    precision = resolve_dtype(device, dtype)
    model = build_model(config, weights).to(device)
    if torch.device(device).type == "cuda":
        if not precision.is_floating_point:
            raise BadInputError("int8 decoding copies are for CPUs; on a GPU use fp16 or bf16")
        model.to(precision)  # GPUs compute in half precision throughout
        compute_dtype = precision
    else:
        # CPUs compute in float32; "fp16"/"bf16"/"int8" add low-precision copies of the matrices that decoding
        # steps read instead (half or a quarter of the bytes; see studio.ml.models.llama.decode_linear).
        model.set_decode_precision(None if precision == torch.float32 else precision)
        if bf16_batches_faster():  # candidate batches (studio.ml.text.candidates) read bfloat16 copies
            model.set_batch_precision(torch.bfloat16)
        compute_dtype = torch.float32
    model.rope_cos, model.rope_sin = model.rope_cos.float(), model.rope_sin.float()
    return LanguageModel(model, tokenizer, torch.device(device), compute_dtype,
                         name or gguf_loader.model_name(path), sha256, source, precision)


def register_sidecar(
    path: Path, config: LlamaConfig, sha256: str, source: dict[str, Any], name: str | None = None
) -> Path | None:
    """Write ``<gguf stem>.json`` so the model store lists the file; keeps an existing one (its name may be chosen)."""
    side = path.with_suffix(".json")
    if side.exists():
        return side
    try:
        return gguf_loader.write_sidecar(path, gguf_loader.sidecar_meta(path, config, sha256, source, name))
    except OSError:  # a read-only (bundled) folder: the manifest lists those models instead
        return None


@functools.cache
def _int8_kernel_works() -> bool:
    """Whether this torch build runs its weight-only int8 kernel on this CPU (checked once on a tiny product)."""
    try:
        q, scale = quantise_int8(torch.ones(8, INT8_ROW_BLOCK))
        out = torch._weight_int8pack_mm(torch.ones(1, INT8_ROW_BLOCK, dtype=torch.bfloat16), q, scale)
        return bool(torch.allclose(out.float(), torch.full((1, 8), float(INT8_ROW_BLOCK)), rtol=0.02))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


@functools.cache
def bf16_batches_faster() -> bool:
    """Whether this CPU multiplies a candidate batch (48 rows by the model's widths) faster in bfloat16 than in
    float32, measured once: 2-3x on CPUs with AVX512-BF16 or AMX, slower on those without."""
    x, w = torch.randn(48, 576), torch.randn(1536, 576)

    def seconds(a: torch.Tensor, b: torch.Tensor) -> float:
        torch.nn.functional.linear(a, b)
        started = time.perf_counter()
        for _ in range(5):
            torch.nn.functional.linear(a, b)
        return time.perf_counter() - started

    try:
        return seconds(x.bfloat16(), w.bfloat16()) < 0.7 * seconds(x, w)
    except RuntimeError:
        return False


def app_precision(device: str | torch.device) -> str | None:
    """The precision the app runs a language model in: on a CPU float32 weights with int8 copies for decoding
    (1.4x the decoding speed of float32 for x1.002 of its held-out perplexity, measured on SmolLM2-135M; see
    ``studio bench copy``; bf16 copies where the int8 kernel is missing), on a GPU the default half precision."""
    if torch.device(device).type != "cpu":
        return None
    if _int8_kernel_works():
        return "int8"
    log.warning("this CPU or PyTorch build cannot run PyTorch's int8 kernel: decoding reads bfloat16 copies instead")
    return "bf16"


def get_language_model(
    resources: Any, name: str, device: str | None = None, runtime: str | None = None, purpose: str = "stream"
) -> Any:
    """The named language model from the store, through the worker's runtime loader (``resources.runtimes``, see
    :mod:`studio.ml.runtime.loader`), loaded once per device and kept in its model cache.

    ``runtime`` ("auto" | "torch" | "onnxruntime", default: the settings') picks what runs it; "auto" measures for
    ``purpose``: "stream" (one reply, token by token) or "batch" (the copy generator's candidates). Both kinds have the
    same prefill/decode_step interface; callers that need the torch module itself (``.model``: LoRA, training,
    perplexity through torch) pass ``runtime="torch"``.
    """
    entry = resources.store.find(name)
    if entry.arch != "llama" or entry.meta.get("format") != "gguf":
        raise ModelFileError(f"{name!r} is a {entry.arch} model, not a language model")
    return resources.runtimes.load(name, device, runtime, purpose=purpose)
