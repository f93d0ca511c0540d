"""The compact Llama: shapes, KV cache against full recompute, batching, save/load, sampling, training, ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.errors import BadInputError
from studio.ml import registry
from studio.ml.checkpoint import load_model, save_model
from studio.ml.models.llama import (
    DECODER_WITH_PAST,
    SMALL_BATCH_ROWS,
    KVCache,
    Llama,
    LlamaConfig,
    decode_linear,
    decoding_copies_for_every_input,
)
from studio.ml.sampling.text import SamplingParams, apply_repetition_penalty, sample, sample_row


def tiny(seed: int = 0, **changes: object) -> Llama:
    torch.manual_seed(seed)
    fields = {**LlamaConfig.tiny().__dict__, **changes}
    return Llama(LlamaConfig(**fields)).eval()


def cache_for(model: Llama, batch: int = 1, capacity: int = 32, pad: torch.Tensor | None = None) -> KVCache:
    return KVCache.allocate(model.config, batch, capacity, "cpu", torch.float32, pad)


def test_registered_with_a_tiny_config() -> None:
    arch = registry.get("llama")
    assert arch.modality == "copy" and arch.family == "transformer"
    assert isinstance(arch.tiny_config(), LlamaConfig)
    assert [g.name for g in arch.onnx] == ["decoder_with_past"]


def test_config_rejects_heads_that_do_not_divide() -> None:
    with pytest.raises(ValueError):
        LlamaConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError):
        LlamaConfig(dim=32, n_heads=4, n_kv_heads=3)


@torch.inference_mode()
def test_forward_shapes_and_last_only() -> None:
    model = tiny()
    ids = torch.randint(0, model.config.vocab_size, (2, 7))
    logits, cache = model(ids)
    assert logits.shape == (2, 7, model.config.vocab_size) and cache is None
    last, _ = model(ids, last_only=True)
    assert last.shape == (2, 1, model.config.vocab_size)
    torch.testing.assert_close(last[:, 0], logits[:, -1])


@torch.inference_mode()
def test_kv_cache_matches_full_recompute() -> None:
    model = tiny()
    ids = torch.randint(0, model.config.vocab_size, (1, 9))
    full, _ = model(ids)
    cache = cache_for(model, capacity=4)  # too small on purpose: the cache must grow
    prefix, cache = model(ids[:, :5], cache=cache)
    steps = [model(ids[:, i : i + 1], cache=cache)[0] for i in range(5, 9)]
    assert cache.length == 9 and cache.capacity >= 9
    torch.testing.assert_close(prefix, full[:, :5], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.cat(steps, dim=1), full[:, 5:], atol=1e-5, rtol=1e-4)


@torch.inference_mode()
def test_left_padded_batch_equals_single_rows() -> None:
    model = tiny()
    vocab = model.config.vocab_size
    short, long = torch.randint(0, vocab, (1, 4)), torch.randint(0, vocab, (1, 7))
    pad = torch.tensor([3, 0])
    batch_ids = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    cache = cache_for(model, batch=2, pad=pad)
    logits, cache = model(batch_ids, cache=cache, last_only=True)
    nxt = torch.randint(0, vocab, (2, 1))
    step, _ = model(nxt, cache=cache)
    for row, ids in enumerate((short, long)):
        single_cache = cache_for(model)
        single, single_cache = model(ids, cache=single_cache, last_only=True)
        torch.testing.assert_close(logits[row], single[0], atol=1e-5, rtol=1e-4)
        single_step, _ = model(nxt[row : row + 1], cache=single_cache)
        torch.testing.assert_close(step[row], single_step[0], atol=1e-5, rtol=1e-4)


@torch.inference_mode()
def test_expanded_cache_continues_like_separate_rows() -> None:
    model = tiny()
    ids = torch.randint(0, model.config.vocab_size, (1, 5))
    _, cache = model(ids, cache=cache_for(model))
    wide = cache.expand(3)
    nxt = torch.tensor([[1], [2], [3]])
    logits, _ = model(nxt, cache=wide)
    for row in range(3):
        _, own = model(ids, cache=cache_for(model))
        expected, _ = model(nxt[row : row + 1], cache=own)
        torch.testing.assert_close(logits[row], expected[0], atol=1e-5, rtol=1e-4)
    kept = wide.select(torch.tensor([2]))
    assert kept.batch == 1 and kept.length == wide.length


@torch.inference_mode()
def test_decode_precision_copies_serve_small_inputs_only() -> None:
    weight = torch.randn(48, 32)
    half = weight.half()
    for rows in (1, SMALL_BATCH_ROWS, SMALL_BATCH_ROWS + 1, 40):  # decode-sized and prefill-sized inputs
        x = torch.randn(rows, 32)
        out = decode_linear(x, weight, half)
        assert out.dtype == torch.float32
        if rows > SMALL_BATCH_ROWS:
            assert torch.equal(out, x @ weight.T)
        torch.testing.assert_close(out, x @ weight.T, atol=2e-2, rtol=1e-2)
    model = tiny()
    ids = torch.randint(0, model.config.vocab_size, (1, 12))
    full, _ = model(ids[:, :1])
    model.set_decode_precision(torch.float16)
    assert model.layers[0].self_attn.q_proj.decode_weight.dtype == torch.float16
    assert "layers.0.self_attn.q_proj.decode_weight" not in model.state_dict()  # never saved
    torch.testing.assert_close(model(ids[:, :1])[0], full, atol=1e-2, rtol=1e-2)
    model.set_decode_precision(None)
    assert torch.equal(model(ids[:, :1])[0], full)


def test_save_load_round_trip(tmp_path) -> None:
    model = tiny(seed=3)
    path = save_model(model, "llama", model.config, tmp_path / "tiny-llama.safetensors", {"name": "tiny-llama"})
    loaded, config, meta = load_model(path, expect_arch="llama")
    assert config == model.config and meta["name"] == "tiny-llama"
    ids = torch.randint(0, config.vocab_size, (2, 6))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids)[0], model(ids)[0])


def test_untied_head_round_trip(tmp_path) -> None:
    model = tiny(tie_embeddings=False)
    assert model.lm_head is not None
    path = save_model(model, "llama", model.config, tmp_path / "untied.safetensors")
    loaded, _, _ = load_model(path)
    ids = torch.randint(0, model.config.vocab_size, (1, 4))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids)[0], model(ids)[0])


def test_two_training_steps_give_finite_decreasing_loss() -> None:
    model = tiny().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.randint(0, model.config.vocab_size, (4, 12), generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(2):
        logits, _ = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[1] < losses[0]


def test_sampling_is_seeded_and_reproducible() -> None:
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(1))
    params = SamplingParams(temperature=1.0, top_p=0.9)

    def draw(seed: int) -> list[int]:
        gens = [torch.Generator().manual_seed(seed + r) for r in range(3)]
        return [sample(logits, params, gens).tolist() for _ in range(5)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
    # A row drawn alone gives what it gives inside the batch.
    alone = torch.Generator().manual_seed(7 + 2)
    assert [sample_row(logits[2], params, alone) for _ in range(5)] == [step[2] for step in draw(7)]


def test_greedy_top_k_and_top_p_limits() -> None:
    logits = torch.tensor([0.0, 3.0, 1.0, 2.9, -1.0])
    gen = torch.Generator().manual_seed(0)
    assert sample_row(logits, SamplingParams(temperature=0.0), gen) == 1
    assert {sample_row(logits, SamplingParams(temperature=2.0, top_k=1), gen) for _ in range(20)} == {1}
    picks = {sample_row(logits, SamplingParams(temperature=1.0, top_p=0.6), gen) for _ in range(200)}
    assert picks == {1, 3}  # the two leading tokens hold more than 60 % together; the rest never come up
    wide = {sample_row(logits, SamplingParams(temperature=5.0, top_p=1.0), gen) for _ in range(400)}
    assert wide == {0, 1, 2, 3, 4}


def test_repetition_penalty_and_masks() -> None:
    logits = np.array([2.0, -2.0, 1.0], np.float32)
    penalised = apply_repetition_penalty(logits, [0, 1], 2.0)
    assert penalised.tolist() == [1.0, -4.0, 1.0]
    assert logits.tolist() == [2.0, -2.0, 1.0]  # the input is left alone
    masked = torch.tensor([float("-inf"), 0.5, float("-inf")])
    assert sample_row(masked, SamplingParams(temperature=1.0), torch.Generator()) == 1
    with pytest.raises(BadInputError):
        sample_row(torch.full((3,), float("-inf")), SamplingParams(), torch.Generator())
    with pytest.raises(BadInputError):
        SamplingParams(top_p=0.0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_onnx_decoder_with_past_matches_torch(tmp_path) -> None:
    """The legacy exporter keeps this test at seconds; the dynamo exporter gives the same graph (checked by hand)."""
    ort = pytest.importorskip("onnxruntime")
    model = tiny()
    graph = DECODER_WITH_PAST
    wrapped = graph.wrap(model).eval()
    inputs = graph.example_inputs(model.config, 2)
    path = tmp_path / "decoder.onnx"
    torch.onnx.export(
        wrapped, inputs, str(path), input_names=list(graph.input_names), output_names=list(graph.output_names),
        dynamic_axes=graph.dynamic_axes, opset_version=18, dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # Other sizes than the example: batch 1, three new tokens after five past ones, the first two padded.
    config = model.config
    past = torch.randn(config.n_layers, 1, config.n_kv_heads, 5, config.head_dim)
    feed = (
        torch.tensor([[4, 5, 6]]), torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1]]), torch.tensor([[3, 4, 5]]),
        past, past * 0.5,
    )
    expected = [t.detach().numpy() for t in wrapped(*feed)]
    got = session.run(None, {name: t.numpy() for name, t in zip(graph.input_names, feed, strict=True)})
    for want, have in zip(expected, got, strict=True):
        assert want.shape == have.shape
        torch.testing.assert_close(torch.from_numpy(have), torch.from_numpy(want), atol=graph.atol, rtol=graph.rtol)


@torch.inference_mode()
def test_int8_decode_copies_follow_the_float_weights_and_skip_odd_widths() -> None:
    model = Llama(LlamaConfig(vocab_size=96, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=40,
                              max_seq_len=64)).eval()
    ids = torch.randint(0, 96, (1, 12))
    full, _ = model(ids)
    model.set_decode_precision(torch.int8)
    q_proj, down_proj = model.layers[0].self_attn.q_proj, model.layers[0].mlp.down_proj
    assert q_proj.decode_weight.dtype == torch.int8 and q_proj.decode_scale is not None
    # the int8 kernel needs input widths in blocks of 32: a 40-wide input gets a bfloat16 copy instead of a crash
    assert down_proj.decode_weight.dtype == torch.bfloat16 and down_proj.decode_scale is None
    assert not any("decode" in key for key in model.state_dict())
    assert torch.equal(model(ids)[0], full), "a 12-token prefill still reads the float32 weights"
    step, _ = model(ids[:, :1])
    torch.testing.assert_close(step, full[:, :1], atol=0.05, rtol=0.05)
    with decoding_copies_for_every_input():
        quantised, _ = model(ids)
    assert not torch.equal(quantised, full)
    torch.testing.assert_close(quantised, full, atol=0.05, rtol=0.05)
    assert torch.equal(model(ids)[0], full), "the block ends and prefills read float32 again"
