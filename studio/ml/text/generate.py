"""The generic streaming loop: prompt -> tokens one at a time, seeded, cancellable, with hooks for constraints.

Constrained decoding plugs in through two hooks, called for every row at every step:

* ``logits_processor(ids_so_far, logits) -> logits``: ``ids_so_far`` are the ids generated so far in that row
  (list[int]), ``logits`` the next-token scores (V,) float32 on the CPU; set forbidden ids to ``-inf``.
  Processors run before the repetition penalty, temperature, top-k and top-p.
* ``stop(ids_so_far, text_so_far) -> bool``: end the row after the token just added (the end-of-turn tokens of
  the model always end it, and are not part of the text).

For batches, pass one callable for all rows or a list with one per row.

Usage::

    from studio.ml.sampling.text import SamplingParams
    from studio.ml.text.generate import generate, stream, stream_batch

    messages = [{"role": "user", "content": "Three words for a coffee brand"}]
    for piece in stream(lm, messages, max_new_tokens=32, params=SamplingParams(temperature=0.7), seed=3,
                        cancel=ctx.check_cancel):
        print(piece, end="")
    text = generate(lm, messages, max_new_tokens=32, seed=3)                 # the same text at once
    for event in stream_batch(lm, [messages] * 3, max_new_tokens=32, seed=3):    # variants, seeds 3, 4, 5
        print(event.row, event.text, event.done)
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from studio.ml.sampling.text import SamplingParams, sample_row
from studio.ml.text.lm import LanguageModel
from studio.ml.text.tokenizer import GGUFTokenizer

LogitsProcessor = Callable[[list[int], torch.Tensor], torch.Tensor]
StopCondition = Callable[[list[int], str], bool]
Prompt = str | Sequence[int] | Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class TokenEvent:
    row: int
    token_id: int  # -1 on the closing event of a row that ended on an end-of-turn token or the length limit
    text: str  # text added by this token ("" while a UTF-8 character is still incomplete)
    done: bool


class Detokenizer:
    """Turns a row's token ids into text incrementally, never splitting a UTF-8 character."""

    def __init__(self, tokenizer: GGUFTokenizer) -> None:
        self._bytes = tokenizer.token_bytes
        self._special = tokenizer.special_ids
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._strip_first_space = tokenizer.kind == "llama"  # SentencePiece marks word starts with a space
        self.text = ""

    def push(self, token_id: int) -> str:
        if token_id in self._special:
            return ""
        piece = self._decoder.decode(self._bytes[token_id])
        if self._strip_first_space and not self.text and piece.startswith(" "):
            piece = piece[1:]
        self.text += piece
        return piece

    def flush(self) -> str:
        piece = self._decoder.decode(b"", final=True)
        self.text += piece
        return piece


def encode_prompt(lm: LanguageModel, prompt: Prompt) -> list[int]:
    """A str is raw text, a list of ints is used as is, a list of {role, content} dicts goes through the chat
    template."""
    if isinstance(prompt, str):
        return lm.tokenizer.encode(prompt)
    items = list(prompt)
    if items and isinstance(items[0], Mapping):
        return lm.tokenizer.encode_chat(items)
    return [int(i) for i in items]


def _per_row(hook: Callable | Sequence[Callable] | None, rows: int) -> list[Callable | None]:
    if hook is None or callable(hook):
        return [hook] * rows
    hooks = list(hook)
    if len(hooks) != rows:
        raise ValueError(f"{len(hooks)} hooks for {rows} rows")
    return hooks


def stream_batch(
    lm: LanguageModel,
    prompts: Sequence[Prompt],
    max_new_tokens: int = 256,
    params: SamplingParams | None = None,
    seed: int = 0,
    logits_processor: LogitsProcessor | Sequence[LogitsProcessor] | None = None,
    cancel: Callable[[], None] | None = None,
    stop: StopCondition | Sequence[StopCondition] | None = None,
) -> Iterator[TokenEvent]:
    """Generate for several prompts at once (row r uses seed ``seed + r``); yields a :class:`TokenEvent` per token.

    Identical prompts share one prefill. Rows that end are dropped from the batch. ``cancel`` is called before
    every step and stops the loop by raising (pass ``ctx.check_cancel``).
    """
    params = params or SamplingParams()
    encoded = [encode_prompt(lm, p) for p in prompts]
    n = len(encoded)
    processors, stops = _per_row(logits_processor, n), _per_row(stop, n)
    generators = [torch.Generator().manual_seed(seed + r) for r in range(n)]
    detoks = [Detokenizer(lm.tokenizer) for _ in range(n)]
    generated: list[list[int]] = [[] for _ in range(n)]
    stop_ids = lm.tokenizer.stop_ids
    if cancel:
        cancel()
    # The reply stops where the model's context ends.
    max_new_tokens = min(max_new_tokens, lm.config.max_seq_len - max(len(ids) for ids in encoded))
    if all(ids == encoded[0] for ids in encoded):
        logits, cache = lm.prefill(encoded[0], max_new_tokens, copies=n)
    else:
        logits, cache = lm.prefill(encoded, max_new_tokens)
    active = list(range(n))
    for step in range(max_new_tokens):
        if cancel:
            cancel()
        chosen, still = [], []
        for slot, row in enumerate(active):
            scores = logits[slot]
            if processors[row] is not None:
                scores = processors[row](list(generated[row]), scores)
            token = sample_row(scores, params, generators[row], encoded[row] + generated[row])
            if token in stop_ids:
                yield TokenEvent(row, -1, detoks[row].flush(), True)
                continue
            generated[row].append(token)
            text = detoks[row].push(token)
            last = step == max_new_tokens - 1
            ended = last or (stops[row] is not None and stops[row](list(generated[row]), detoks[row].text))
            if ended:
                text += detoks[row].flush()
            yield TokenEvent(row, token, text, ended)
            if not ended:
                chosen.append(token)
                still.append(slot)
        if not still:
            return
        if len(still) < len(active):
            cache = cache.select(torch.tensor(still))  # a CPU index selects rows of a cache on any device
            active = [active[s] for s in still]
        logits, cache = lm.decode_step(chosen, cache)


def stream(
    lm: LanguageModel,
    prompt: Prompt,
    max_new_tokens: int = 256,
    params: SamplingParams | None = None,
    seed: int = 0,
    logits_processor: LogitsProcessor | None = None,
    on_token: Callable[[int, str], None] | None = None,
    cancel: Callable[[], None] | None = None,
    stop: StopCondition | None = None,
) -> Iterator[str]:
    """Yield the reply to ``prompt`` piece by piece (empty pieces are skipped); ``on_token(id, text)`` sees
    every token."""
    for event in stream_batch(lm, [prompt], max_new_tokens, params, seed, logits_processor, cancel, stop):
        if on_token is not None and event.token_id >= 0:
            on_token(event.token_id, event.text)
        if event.text:
            yield event.text


def generate(lm: LanguageModel, prompt: Prompt, max_new_tokens: int = 256, params: SamplingParams | None = None,
             seed: int = 0, **hooks: object) -> str:
    """The whole reply at once (same arguments as :func:`stream`)."""
    return "".join(stream(lm, prompt, max_new_tokens, params, seed, **hooks))  # type: ignore[arg-type]
