"""A LoRA adapter on onnxruntime: the base model's fused graph with the adapter merged into 8-bit blocks (equal to torch
with the adapter merged and its matrices rounded the same way, at float32 activations), or with Q/K/V, the attention
output and gate/up as smoothed per-tensor int8 products (close to torch, signed or unsigned weights as the CPU
needs), exported by `studio export onnx NAME --int4` against its base model with both graphs (a single row runs on
the blocks at several threads), run by the copy task on onnxruntime or torch, and refused when the base model's
weights are not the ones it was made on, or when its signed weights would saturate on this CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from gguf import GGMLQuantizationType
from torch import nn

from studio.cli import main
from studio.core import paths
from studio.core.errors import BadInputError, ModelFileError
from studio.core.jobs import JobSpec
from studio.core.modalities.copy import BASE_LANGUAGE_MODEL
from studio.ml.bench.copy import load_torch as load_bench_torch
from studio.ml.cache import ModelCache
from studio.ml.export.calibration import calibration_prompts, measure
from studio.ml.export.llama_graph import BLOCK, build_graph, requantise, smoothing
from studio.ml.export.pipeline import export_model
from studio.ml.export.records import write_record
from studio.ml.resources import Resources
from studio.ml.runtime import cpu, exports
from studio.ml.runtime.cpu import signed_int8_weights
from studio.ml.runtime.exports import read_record, stale_reason
from studio.ml.runtime.gqa_lm import GqaLanguageModel, load_gqa_language_model, read_gguf_header
from studio.ml.runtime.ort_session import open_session
from studio.ml.store import ModelStore
from studio.ml.tasks.copy import load_copy_model
from studio.ml.tasks.models import export_status
from studio.ml.text.lm import LanguageModel, load_language_model
from studio.ml.train.lora import LoRAConfig, adapter_low_rank, apply_adapter, save_adapter, with_lora
from tests.ml.tiny_gguf import tiny_model, write_tiny_gguf

ADAPTER = "tiny-voice"
ATOL = 1e-4


def _adapter(base: LanguageModel, path: Path, seed: int = 5) -> Path:
    """A rank-4 adapter on every projection whose B is random (a fresh one adds nothing)."""
    config = LoRAConfig(rank=4, alpha=8.0)
    model = with_lora(base.model, config)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, value in model.named_parameters():
            if name.endswith("lora_B"):
                value.normal_(0.0, 0.05)
    return save_adapter(path, model, config, {"name": ADAPTER, "base_model": BASE_LANGUAGE_MODEL,
                                              "base_sha256": base.sha256})


@pytest.fixture
def home(studio_home: Path) -> Path:
    """A user store with a tiny Q4_1 base model under the default base's name and an adapter trained on it."""
    models = paths.user_models_dir()
    gguf = write_tiny_gguf(models / "lm" / "Tiny.gguf", tiny_model(seed=3, max_seq_len=4096, dim=64),
                           layer_type=GGMLQuantizationType.Q4_1)
    base = load_language_model(gguf, "cpu", "fp32", name=BASE_LANGUAGE_MODEL)  # writes the sidecar: listed
    _adapter(base, models / "copy" / f"{ADAPTER}.safetensors")
    return models


def _rounded_to_8_bits(lm: LanguageModel) -> LanguageModel:
    """``lm`` with every layer matrix in 8-bit blocks of 32, as the graph holds an adapted model."""
    with torch.no_grad():
        for module in lm.model.layers.modules():
            if isinstance(module, nn.Linear):
                blocks = requantise(module.weight.detach().numpy(), 8)
                module.weight.copy_(torch.from_numpy(blocks.dequantised()))
    return lm


def test_merging_rounds_each_weight_by_under_half_an_8_bit_step() -> None:
    weight = torch.randn(6, 4 * BLOCK).numpy()
    blocks = requantise(weight, 8)
    step = abs(weight).reshape(6, 4, BLOCK).max(-1) / 127
    error = abs(blocks.dequantised() - weight).reshape(6, 4, BLOCK).max(-1)
    assert blocks.bits == 8 and blocks.offset is None and (error <= step / 2 + 1e-7).all()


def test_the_graph_with_an_adapter_equals_torch_with_it_merged(home: Path, tmp_path: Path) -> None:
    gguf = home / "lm" / "Tiny.gguf"
    base = load_language_model(gguf, "cpu", "fp32", name=BASE_LANGUAGE_MODEL)
    path = home / "copy" / f"{ADAPTER}.safetensors"
    exact = apply_adapter(base, path, ADAPTER)
    merged = _rounded_to_8_bits(apply_adapter(base, path, ADAPTER))
    low_rank = adapter_low_rank(path)
    build_graph(gguf, tmp_path / "lora.onnx", 0, low_rank)
    config, tokenizer, _ = read_gguf_header(gguf)
    fused = GqaLanguageModel(open_session(tmp_path / "lora.onnx", "cpu", 1), config, tokenizer)
    prompt = base.tokenizer.encode_chat([{"role": "user", "content": "Write a headline"}])
    want, cache = merged.prefill(prompt, 4)
    got, fused_cache = fused.prefill(prompt, 4)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)
    assert float((want - base.prefill(prompt, 4)[0]).abs().max()) > 100 * ATOL  # the adapter does change them
    torch.testing.assert_close(got, exact.prefill(prompt, 4)[0], atol=0.05, rtol=0.01)  # rounding moves little
    for token in (5, 17, 40):
        want, cache = merged.decode_step([token], cache)
        got, fused_cache = fused.decode_step([token], fused_cache)
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-3)


def _resources(runtime: str) -> Resources:
    return Resources(device="cpu", runtime=runtime, store=ModelStore(), cache=ModelCache(), cpu_threads=1)


def test_an_adapter_exports_against_its_base_and_copy_runs_it_on_onnxruntime(home: Path) -> None:
    resources = _resources("onnxruntime")
    status = export_status(JobSpec("models.export_status", params={"name": ADAPTER}),
                           type("Ctx", (), {"resources": resources, "device": "cpu"})())
    assert status["needed"] is True  # the app makes it after its window opens
    with pytest.raises(BadInputError, match="int4 graph only"):
        export_model(ADAPTER, "fp32")
    record = export_model(ADAPTER, "int4")
    assert record.arch == "llama-lora" and record.extra["base_model"] == BASE_LANGUAGE_MODEL
    assert record.extra["quality"]["perplexity_ratio"] < 1.05
    lm = load_copy_model(resources, ADAPTER)
    assert isinstance(lm, GqaLanguageModel) and lm.name == ADAPTER and lm.sha256 == record.source_sha256
    on_torch = load_copy_model(_resources("torch"), ADAPTER)
    assert isinstance(on_torch, LanguageModel) and on_torch.name == ADAPTER
    prompt = on_torch.tokenizer.encode_chat([{"role": "user", "content": "Sell a lamp"}])
    torch.testing.assert_close(lm.prefill(prompt, 2)[0], on_torch.prefill(prompt, 2)[0], atol=0.2, rtol=0.05)
    auto = load_copy_model(_resources("auto"), ADAPTER)  # measured: either runtime, named as the adapter
    assert auto.name == ADAPTER


def test_an_export_made_on_other_base_weights_is_refused(home: Path) -> None:
    record = export_model(ADAPTER, "int4")
    write_record(record.__class__(**{**record.__dict__, "extra": {**record.extra, "base_sha256": "0" * 64}}))
    assert read_record(record.folder).extra["base_sha256"] == "0" * 64
    with pytest.raises(ModelFileError, match="other weights"):
        load_copy_model(_resources("onnxruntime"), ADAPTER)


def test_smoothing_moves_range_into_the_weights_and_leaves_the_products_as_they_were() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    x[:, 3] *= 60  # an outlier channel, as RMSNorm outputs have
    norm, weight = rng.uniform(0.5, 2, 64).astype(np.float32), rng.standard_normal((8, 64)).astype(np.float32)
    divisor = smoothing(np.abs(x * norm).max(0), weight)
    np.testing.assert_allclose((x * (norm / divisor)) @ (weight * divisor).T, (x * norm) @ weight.T, rtol=1e-4,
                               atol=1e-3)
    smoothed = np.abs(x * norm / divisor).max(0)
    assert smoothed.max() / np.median(smoothed) < np.abs(x * norm).max(0).max() / np.median(np.abs(x * norm).max(0))


@pytest.mark.parametrize("signed", [True, False])
def test_the_per_tensor_graph_follows_torch_with_the_adapter_merged(home: Path, tmp_path: Path, signed: bool) -> None:
    gguf = home / "lm" / "Tiny.gguf"
    path = home / "copy" / f"{ADAPTER}.safetensors"
    exact = apply_adapter(load_language_model(gguf, "cpu", "fp32", name=BASE_LANGUAGE_MODEL), path, ADAPTER)
    prompts = calibration_prompts(exact)
    assert len(prompts) == 2 * len(list((paths.resources_dir() / "briefs" / "dev").glob("*.json")))
    calibration = measure(exact, prompts[:6], "six dev prompts")
    assert len(calibration.qkv) == len(exact.model.layers) and (calibration.gate_up[0] > 0).all()
    with pytest.raises(ValueError, match="adapter"):
        build_graph(gguf, tmp_path / "no.onnx", calibration=calibration)
    build_graph(gguf, tmp_path / "lora.onnx", low_rank=adapter_low_rank(path), calibration=calibration,
                signed_weights=signed)
    graph = onnx.load(str(tmp_path / "lora.onnx")).graph
    ops = [n.op_type for n in graph.node]
    layers = len(exact.model.layers)
    assert ops.count("DynamicQuantizeMatMul") == 3 * layers and ops.count("MatMulNBits") == layers + 1  # down, head
    weights = {t.name: t.data_type for t in graph.initializer}
    assert weights["layers.0.qkv.q"] == (onnx.TensorProto.INT8 if signed else onnx.TensorProto.UINT8)
    assert ("layers.0.qkv.zero_points" in weights) is not signed
    config, tokenizer, _ = read_gguf_header(gguf)
    fused = GqaLanguageModel(open_session(tmp_path / "lora.onnx", "cpu", 1), config, tokenizer)
    prompt = exact.tokenizer.encode_chat([{"role": "user", "content": "Write a headline"}])
    want, cache = exact.prefill(prompt, 8)
    got, fused_cache = fused.prefill(prompt, 8)
    torch.testing.assert_close(got, want, atol=0.1, rtol=0.05)
    for _ in range(6):  # the same greedy tokens, step by step
        token = int(want[0].argmax())
        assert int(got[0].argmax()) == token
        want, cache = exact.decode_step([token], cache)
        got, fused_cache = fused.decode_step([token], fused_cache)
    torch.testing.assert_close(got, want, atol=0.1, rtol=0.05)


def test_signed_weights_are_made_only_where_the_int8_products_cannot_saturate(home: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert signed_int8_weights(frozenset({"avx2", "avx512_vnni"}), "x86_64")
    assert signed_int8_weights(frozenset({"avx2", "amx_int8"}), "x86_64")
    assert not signed_int8_weights(frozenset({"avx2", "avx512bw"}), "x86_64")  # vpmaddubsw saturates
    assert not signed_int8_weights(frozenset(), "x86_64")  # unknown: unsigned, exact anywhere
    assert signed_int8_weights(frozenset(), "aarch64")
    record = export_model(ADAPTER, "int4")
    expected = "signed" if signed_int8_weights() else "unsigned"
    assert record.extra[exports.PRODUCTS] == exports.PER_TENSOR and record.extra[exports.SIGNED_WEIGHTS] == expected
    assert "SmoothQuant" in record.extra["smoothing"] and stale_reason(record) is None
    signed = record.__class__(**{**record.__dict__, "extra": {**record.extra, exports.SIGNED_WEIGHTS: "signed"}})
    monkeypatch.setattr(exports, "signed_int8_weights", lambda: False)
    assert "saturate" in (stale_reason(signed) or "")
    write_record(signed)
    assert _export_needed()  # made again, with unsigned weights


def test_an_adapters_export_decodes_a_single_row_in_blocks_at_several_threads(home: Path) -> None:
    record = export_model(ADAPTER, "int4")
    assert set(record.graphs) == {exports.FUSED_GRAPH, exports.FUSED_ONE_ROW_GRAPH}
    assert all(info["max_rel_error"] < 0.05 for info in record.graphs.values())
    assert record.extra["one_row_quality"]["perplexity_ratio"] < 1.05
    graph = onnx.load(str(record.graph_path(exports.FUSED_ONE_ROW_GRAPH))).graph
    ops = [n.op_type for n in graph.node]
    assert "DynamicQuantizeMatMul" not in ops and ops.count("MatMulNBits") == 4 * 2 + 1  # 2 layers' four, head
    assert not cpu.one_row_graph(1) and cpu.one_row_graph(2)
    gguf = home / "lm" / "Tiny.gguf"
    assert load_gqa_language_model(record, gguf, threads=1).one_row is None
    lm = load_gqa_language_model(record, gguf, threads=2)
    per_tensor, blocks = lm.on_graph(exports.FUSED_GRAPH), lm.on_graph(exports.FUSED_ONE_ROW_GRAPH)
    assert blocks.session is lm.one_row and per_tensor.one_row is None
    prompt = lm.tokenizer.encode_chat([{"role": "user", "content": "Sell a lamp"}])
    logits, cache = lm.prefill(prompt, 4)
    want, want_cache = per_tensor.prefill(prompt, 4)
    assert torch.equal(logits, want)  # a prompt runs on the per-tensor products
    token = [int(logits[0].argmax())]
    assert torch.equal(lm.decode_step(token, cache)[0], blocks.decode_step(token, want_cache)[0])  # one row: blocks
    logits, shared = lm.prefill(prompt, 4, copies=3)
    want, want_shared = per_tensor.prefill(prompt, 4, copies=3)
    assert torch.equal(lm.decode_step(token * 3, shared)[0], per_tensor.decode_step(token * 3, want_shared)[0])
    assert not torch.equal(blocks.prefill(prompt, 4)[0], want[:1])  # the two graphs do differ


def test_an_adapters_export_of_the_previous_format_is_made_again(home: Path) -> None:
    record = export_model(ADAPTER, "int4")
    write_record(record.__class__(**{**record.__dict__, "extra": {**record.extra, "format": 5}}))
    assert "older version" in (stale_reason(read_record(record.folder)) or "") and _export_needed()


def _export_needed() -> bool:
    status = export_status(JobSpec("models.export_status", params={"name": ADAPTER}),
                           type("Ctx", (), {"resources": _resources("onnxruntime"), "device": "cpu"})())
    return bool(status["needed"])


def test_the_bench_measures_an_adapter_on_its_base_model(home: Path, tmp_path: Path) -> None:
    record = export_model(ADAPTER, "int4")
    out = tmp_path / "bench.json"
    assert main(["bench", "copy", "--model", ADAPTER, "--dtypes", "fp32", "--new-tokens", "4", "--repeats", "1",
                 "--batches", "8", "--threads", "2", "--rounds", "1", "--no-references", "--json", str(out),
                 "--md", str(tmp_path / "bench.md")]) == 0
    report = json.loads(out.read_text())["copy"]
    assert report["adapter"] == f"{ADAPTER}.safetensors" and report["file"] == "Tiny.gguf"
    rows = {(r["runtime"], r["precision"]): r for r in report["rows"]}
    assert set(rows) == {("torch eager", "fp32"), ("onnxruntime", "int4")}  # an adapter exports as int4 only
    assert rows[("onnxruntime", "int4")]["status"] == "ok"
    assert rows[("onnxruntime", "int4")]["perplexity_ratio"] == record.extra["quality"]["perplexity_ratio"]
    assert "the LoRA adapter tiny-voice.safetensors on Tiny.gguf" in (tmp_path / "bench.md").read_text()
    torch_row = load_bench_torch(home / "lm" / "Tiny.gguf", "cpu", "fp32", home / "copy" / f"{ADAPTER}.safetensors")
    assert torch_row.sha256 == record.source_sha256  # the torch rows run the adapter merged, not the base alone
