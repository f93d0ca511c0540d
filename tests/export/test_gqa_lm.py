"""The fused onnxruntime graph (studio.ml.export.llama_graph) and its runtime against torch, on a tiny random Llama
whose layers are stored as Q4_1 like the default model's: the GGUF's blocks are kept exactly, so with float32
activations (accuracy level 0) every logit, greedy token, sampled text and constrained line equals torch's; the
shipped graph (int8 activations, level 4) stays within a small tolerance."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

from studio.core.copy_brief import brief_from_dict
from studio.core.copy_formats import generation_format
from studio.core.errors import BadInputError, ModelFileError
from studio.ml.export.llama_graph import GRAPH, _from_gguf, build_graph
from studio.ml.export.records import write_record
from studio.ml.runtime.exports import find_export, has_export, read_record
from studio.ml.runtime.gqa_lm import GqaLanguageModel, SharedCache, read_gguf_header
from studio.ml.runtime.ort_session import open_session
from studio.ml.sampling.constrained import LineRules
from studio.ml.sampling.text import SamplingParams
from studio.ml.text import gguf_loader
from studio.ml.text.candidates import RowJob, sample_lines
from studio.ml.text.copywriter import constraints_for
from studio.ml.text.generate import stream, stream_batch
from studio.ml.text.lm import load_language_model
from studio.ml.text.scoring import continuation_logprobs
from tests.export.conftest import LM
from tests.ml.tiny_gguf import tiny_config, tiny_model, write_tiny_gguf

CHAT = [{"role": "user", "content": "Write a headline"}]
WARM = SamplingParams(temperature=1.2, top_p=0.98)
ATOL = 1e-4


@pytest.fixture(scope="module")
def q4_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fused")
    return write_tiny_gguf(folder / "tiny-q4.gguf", tiny_model(seed=3, max_seq_len=256, dim=64),
                           layer_type=GGMLQuantizationType.Q4_1)


def _fused(gguf: Path, accuracy_level: int, folder: Path) -> GqaLanguageModel:
    path = folder / f"fused-{accuracy_level}.onnx"
    build_graph(gguf, path, accuracy_level)
    config, tokenizer, _ = read_gguf_header(gguf)
    return GqaLanguageModel(open_session(path, "cpu", 1), config, tokenizer)


@pytest.fixture(scope="module")
def exact(q4_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """(torch float32, the fused graph with float32 activations) on the same Q4_1 weights."""
    return load_language_model(q4_gguf, "cpu", "fp32"), _fused(q4_gguf, 0, tmp_path_factory.mktemp("exact"))


def test_q4_1_and_q8_0_blocks_are_kept_exactly(q4_gguf: Path) -> None:
    reader = gguf_loader.open_gguf(q4_gguf)
    tensors = {t.name: t for t in reader.tensors}
    for name, bits in (("blk.0.ffn_up.weight", 4), ("token_embd.weight", 8)):
        tensor = tensors[name]
        rows, cols = (int(n) for n in reversed(tensor.shape))
        want = np.asarray(dequantize(tensor.data, tensor.tensor_type), np.float32).reshape(rows, cols)
        np.testing.assert_allclose(_from_gguf(tensor, rows, cols, bits).dequantised(), want, atol=1e-6)


def test_logits_and_greedy_tokens_equal_torch(exact) -> None:
    torch_lm, fused = exact
    prompt = torch_lm.tokenizer.encode_chat(CHAT)
    want, cache = torch_lm.prefill(prompt, 4)
    got, fused_cache = fused.prefill(prompt, 4)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    for token in (5, 17, 40, 41, 42, 43, 44):  # past the 4 positions reserved: the buffer grows
        want, cache = torch_lm.decode_step([token], cache)
        got, fused_cache = fused.decode_step([token], fused_cache)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    assert fused_cache.length == len(prompt) + 7
    runs = []
    for lm in exact:
        tokens: list[int] = []
        list(stream(lm, CHAT, 16, SamplingParams(temperature=0.0), on_token=lambda t, _, seen=tokens: seen.append(t)))
        runs.append(tokens)
    assert runs[0] == runs[1] and len(runs[0]) > 0


def test_int8_activations_stay_close_to_torch(q4_gguf: Path, tmp_path: Path) -> None:
    torch_lm, fused = load_language_model(q4_gguf, "cpu", "fp32"), _fused(q4_gguf, 4, tmp_path)
    prompt = torch_lm.tokenizer.encode_chat(CHAT)
    want, cache = torch_lm.prefill(prompt, 8)
    got, fused_cache = fused.prefill(prompt, 8)
    for token in (None, 5, 17):
        if token is not None:
            want, cache = torch_lm.decode_step([token], cache)
            got, fused_cache = fused.decode_step([token], fused_cache)
        assert float((got - want).abs().max()) < 0.02 * float(want.abs().max())


def test_right_padded_prompts_and_rows_of_different_lengths_equal_single_rows(exact) -> None:
    _, fused = exact
    tok = fused.tokenizer
    short, long = tok.encode("the cat"), tok.encode("a much longer prompt about the weather in spring")
    logits, cache = fused.prefill([short, long], 8)
    assert cache.lengths.tolist() == [len(short), len(long)]
    singles = [fused.prefill(ids, 8) for ids in (short, long)]
    for row, (single, _) in enumerate(singles):
        torch.testing.assert_close(logits[row], single[0], atol=ATOL, rtol=1e-3)
    logits, cache = fused.decode_step([7, 9], cache)
    for row, (token, (_, single_cache)) in enumerate(zip((7, 9), singles, strict=True)):
        single, _ = fused.decode_step([token], single_cache)
        torch.testing.assert_close(logits[row], single[0], atol=ATOL, rtol=1e-3)
    logits, cache = fused.decode_step([3], cache.select(torch.tensor([1])))  # a finished row leaves the batch
    assert cache.batch == 1 and logits.shape == (1, tok.vocab_size)


def test_streamed_variants_prompts_and_scores_equal_torch(exact) -> None:
    torch_lm = exact[0]
    for batch in (["the cat", "a much longer prompt about the weather in spring"], [CHAT] * 3):
        texts = []
        for lm in exact:
            rows: dict[int, str] = {}
            for event in stream_batch(lm, batch, 12, WARM, seed=5):
                rows[event.row] = rows.get(event.row, "") + event.text
            texts.append(rows)
        assert len(texts[0]) == len(batch) and texts[0] == texts[1]
    prompt = torch_lm.tokenizer.encode("Write ad headlines:\n")
    lines = [torch_lm.tokenizer.encode(t, add_bos=False) for t in ("Fresh beans", "Brewly is here", "A")]
    want, got = (continuation_logprobs(lm, prompt, lines) for lm in exact)
    # torch scores batches through its bfloat16 copies (studio.ml.models.llama.batch_copies): 3 digits agree
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), atol=2e-3)


def test_constrained_lines_on_a_fixed_seed_equal_torch(exact) -> None:
    torch_lm = exact[0]
    brief = brief_from_dict({"product": "Brewly", "features": ["fresh beans every week"], "audience": "home baristas",
                             "tone": "warm", "must_use": [], "banned": ["cheap"]})
    constraints = constraints_for(torch_lm, brief, generation_format("google-rsa"))
    prefix = torch_lm.tokenizer.encode("Write ad headlines:\n", add_bos=False)
    jobs = [RowJob(tuple(torch_lm.tokenizer.encode(tail, add_bos=False)), LineRules(30), seed)
            for seed, tail in enumerate(["- Fresh", "- Brewly is", "- A", "- Fresh"])]
    params = SamplingParams(0.8, 0.95)
    lines = [[(c.row, c.text) for c in sample_lines(lm, prefix, jobs, constraints, params)] for lm in exact]
    assert lines[0] == lines[1] and len(lines[0]) >= 3


def test_a_shared_prompt_prefix_is_reused(exact) -> None:
    torch_lm, fused = exact
    first = fused.tokenizer.encode_chat([{"role": "system", "content": "Short ad copy."}, *CHAT])
    second = [*first[:-3], 7, 9, 11]
    fused.prefill(first, 8)
    fed: list[int] = []
    run = fused._run
    fused._run = lambda tokens, cache, **kw: (fed.append(tokens.shape[1]), run(tokens, cache, **kw))[1]
    try:
        got, _ = fused.prefill(second, 8)
    finally:
        del fused._run
    want, _ = torch_lm.prefill(second, 8)
    assert fed == [3], "only the new tail of the prompt runs"
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)


def test_candidates_share_one_copy_of_the_prompt_and_equal_torch(exact) -> None:
    """Tails of different lengths in one run, rows repeated, dropped and extended by several tokens, the buffer
    grown and, at the model's length limit, compacted to what the rows still attend to: every step's logits equal
    torch's, whose rows each hold their own copy."""
    torch_lm, fused = exact
    prefix = torch_lm.tokenizer.encode_chat(CHAT)
    tails = [[5, 6, 7], [9], [11, 12]]
    want, reference = torch_lm.prefill_shared(prefix, tails, 2)
    got, shared = fused.prefill_shared(prefix, tails, 2)
    assert isinstance(shared, SharedCache) and shared.buffer.batch == 1
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    reference, shared = reference.select(index), shared.select(index)
    grown = shared.buffer.capacity
    for step in range(12):
        tokens = [(7 * step + 3 * row) % 200 + 3 for row in range(shared.batch)]
        want, reference = torch_lm.decode_step(tokens, reference)
        got, shared = fused.decode_step(tokens, shared)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    assert shared.buffer.capacity > grown, "the buffer grew"
    keep = torch.tensor([1, 4])
    reference, shared = reference.select(keep), shared.select(keep)
    want, reference = torch_lm.prefill([[20, 21, 22], [23, 24, 25]], 8, cache=reference)
    got, shared = fused.prefill([[20, 21, 22], [23, 24, 25]], 8, cache=shared)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    limit, compacted = fused.config.max_seq_len, False
    while not compacted:  # the two rows read far less than the limit, but all rows wrote more
        assert shared.length < limit - 1
        before = shared.written
        tokens = [shared.length % 200 + 3, shared.length % 150 + 5]
        want, reference = torch_lm.decode_step(tokens, reference)
        got, shared = fused.decode_step(tokens, shared)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
        compacted = shared.written < before
    assert shared.buffer.capacity == limit
    _, copies = fused.prefill(prefix, 4, copies=3)  # copies of one prompt (variants, scoring) share it too
    assert isinstance(copies, SharedCache) and copies.batch == 3 and copies.buffer.batch == 1
    _, many = fused.prefill_shared(prefix, [[5]], 2)
    many = many.select(torch.zeros(120, dtype=torch.long))
    with pytest.raises(BadInputError, match="fewer candidates"):  # what they read no longer fits: said, not cut
        for _ in range(4):
            _, many = fused.decode_step([7] * 120, many)


def test_rows_asked_for_at_the_start_get_room_for_all_their_tokens(exact) -> None:
    """The copy generator's start: tails run once, rows repeating them, and a buffer that never has to grow (each
    growth copies every position written), the same logits as torch's rows."""
    torch_lm, fused = exact
    prefix = torch_lm.tokenizer.encode_chat(CHAT)
    rows = [0, 0, 0, 1, 1, 1]
    want, reference = torch_lm.prefill_shared(prefix, [[5, 6], [9]], 5, rows=rows)
    got, shared = fused.prefill_shared(prefix, [[5, 6], [9]], 5, rows=rows)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    capacity = shared.buffer.capacity
    for step in range(5):
        tokens = [(5 * step + row) % 200 + 3 for row in range(len(rows))]
        want, reference = torch_lm.decode_step(tokens, reference)
        got, shared = fused.decode_step(tokens, shared)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    assert shared.buffer.capacity == capacity, "no growth"
    _, copies = fused.prefill(prefix, 5, copies=4)
    capacity = copies.buffer.capacity
    for _ in range(5):
        _, copies = fused.decode_step([7] * 4, copies)
    assert copies.buffer.capacity == capacity, "copies of one prompt: no growth either"


def test_bad_input_is_refused_like_torch(exact) -> None:
    _, fused = exact
    with pytest.raises(BadInputError, match="empty"):
        fused.prefill([])
    _, cache = fused.prefill([5, 6], 4)
    with pytest.raises(BadInputError, match="2 tokens for a cache of 1"):
        fused.decode_step([1, 2], cache)
    with pytest.raises(BadInputError, match="at most 256"):
        fused.prefill([5] * 256)


def test_head_widths_the_fused_kernel_cannot_take_are_refused(tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "narrow.gguf", tiny_model(seed=1))
    assert tiny_config().head_dim % 16
    with pytest.raises(ModelFileError, match="multiple of 16"):
        build_graph(gguf, tmp_path / "narrow.onnx")


def test_an_older_or_foreign_int4_export_is_refused_and_made_again(exported_home: Path, caplog) -> None:
    from studio.ml.checkpoint import sha256_file
    from studio.ml.export.pipeline import export_model

    folder = exported_home / "onnx" / LM / "int4"
    current = read_record(folder)
    assert GRAPH in current.graphs and has_export(LM, "int4")
    sha256 = sha256_file(exported_home / "lm" / "Tiny-LM.gguf")
    write_record(current.__class__(**{**current.__dict__, "extra": {}}))  # no format: an older version's export
    with caplog.at_level(logging.WARNING):
        assert find_export(LM, ("int4",), sha256) is None and not has_export(LM, "int4")
    assert "older version" in caplog.text
    remade = export_model(LM, "int4")
    assert find_export(LM, ("int4",), sha256) is not None and remade.extra["quality"]["perplexity_ratio"] > 0
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert find_export(LM, ("int4",), "0" * 64) is None
    assert "other weights" in caplog.text


def test_the_decoders_threads_spin_within_a_run_only(exported_home: Path) -> None:
    """Several threads spin between the operators of a run (waking a sleeping one for each of some 700 small
    operators a token costs more than it gains) and sleep when the run ends; one thread has no pool to spin."""
    from studio.ml.runtime.gqa_lm import load_gqa_language_model

    record = read_record(exported_home / "onnx" / LM / "int4")
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    for threads, spins in ((2, "1"), (1, "0")):
        options = load_gqa_language_model(record, gguf, threads).session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == spins
        if spins == "1":
            assert options.get_session_config_entry("session.force_spinning_stop") == "1"


def test_a_q8_0_embedding_table_stays_8_bit(q4_gguf: Path, tmp_path: Path) -> None:
    """The default model's Q8_0 table is gathered as it is stored (its rows exact: the logits tests above), not as
    a float32 table four times its size."""
    import onnx

    build_graph(q4_gguf, tmp_path / "fused.onnx", 4)
    model = onnx.load(str(tmp_path / "fused.onnx"))
    embedding = next(n for n in model.graph.node if n.output[0] == "embedded_blocks")
    assert embedding.op_type == "GatherBlockQuantized"
    table = next(t for t in model.graph.initializer if t.name == "embed_tokens.q")
    assert table.data_type == onnx.TensorProto.UINT8
    assert not any(t.name == "embed_tokens" for t in model.graph.initializer)
