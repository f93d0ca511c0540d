"""Which runtime runs a model: forced torch, forced onnxruntime, auto with a remembered or measured choice; and the
bad cases (CUDA provider missing, truncated file, inputs that differ from the registry's, sha256 mismatch)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from torch import nn

from studio.core import paths
from studio.core.errors import ModelFileError
from studio.core.settings import Settings
from studio.ml import registry
from studio.ml.checkpoint import sha256_file
from studio.ml.resources import Resources
from studio.ml.runtime import exports, ort_lm, ort_music, select
from studio.ml.runtime.exports import read_record
from studio.ml.runtime.gqa_lm import GqaLanguageModel
from studio.ml.runtime.loader import choice_key
from studio.ml.runtime.ort_lm import OrtLanguageModel, load_ort_language_model, quality_ok
from studio.ml.runtime.ort_music import OrtMusicModel
from studio.ml.runtime.ort_session import open_session, providers_for
from studio.ml.text.lm import LanguageModel, get_language_model, load_language_model
from tests.export.conftest import LM, MUSIC


def _resources(runtime: str) -> Resources:
    return Resources.from_settings(Settings(device="cpu", runtime=runtime, cpu_threads=1))


def _remember(key: str, runtime: str) -> None:
    (paths.cache_dir() / select.CHOICES_FILE).write_text(json.dumps({key: runtime}), encoding="utf-8")


def _no_measuring(*_: object) -> float:
    raise AssertionError("a remembered choice must not be measured again")


def test_forced_torch_and_forced_onnxruntime(exported_home: Path) -> None:
    torch_lm = get_language_model(_resources("torch"), LM)
    assert isinstance(torch_lm, LanguageModel)
    resources = _resources("onnxruntime")
    ort = get_language_model(resources, LM)
    assert isinstance(ort, OrtLanguageModel | GqaLanguageModel) and ort.sha256 == torch_lm.sha256
    int4 = read_record(exported_home / "onnx" / LM / "int4")
    quality = int4.extra["quality"]
    assert {"perplexity_fp32", "perplexity", "perplexity_ratio", "greedy_agreement", "text"} <= quality.keys()
    assert ort.variant == ("int4" if quality_ok(int4) else "fp32")  # a quantised export only within tolerance
    assert get_language_model(resources, LM) is ort  # kept in the worker's cache
    assert isinstance(get_language_model(resources, LM, runtime="torch"), LanguageModel)  # callers may insist
    assert isinstance(_resources("torch").runtimes.load(MUSIC, "cpu"), nn.Module)
    assert isinstance(resources.runtimes.load(MUSIC, "cpu"), OrtMusicModel)


def _usable(models: Path) -> list[str]:
    """The exported variants of the tiny language model that auto-selection may use, in its order."""
    return [v for v in ("int4", "int8", "fp32")
            if (models / "onnx" / LM / v).exists() and quality_ok(read_record(models / "onnx" / LM / v))]


def test_auto_uses_the_remembered_choice(exported_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_lm, "decode_seconds", _no_measuring)
    monkeypatch.setattr(ort_music, "decode_seconds", _no_measuring)
    resources = _resources("auto")
    lm_entry, music_entry = resources.store.find(LM), resources.store.find(MUSIC)
    records = [read_record(exported_home / "onnx" / LM / v) for v in _usable(exported_home)]
    key = choice_key(sha256_file(lm_entry.weights), "llama", "cpu", 1, records, "stream")
    _remember(key, "onnxruntime:fp32")
    lm = get_language_model(resources, LM)
    assert isinstance(lm, OrtLanguageModel) and lm.variant == "fp32"
    _remember(key, "torch")
    resources = _resources("auto")
    assert isinstance(get_language_model(resources, LM), LanguageModel)
    held = resources.cache.keys()
    assert not any(key.startswith("lm-ort") for key in held)  # the runtime not chosen is not held
    music_records = [read_record(exported_home / "onnx" / MUSIC / "fp32")]
    _remember(choice_key(sha256_file(music_entry.weights), "music-transformer", "cpu", 1, music_records, "stream"),
              "onnxruntime:fp32")
    assert isinstance(resources.runtimes.load(MUSIC, "cpu"), OrtMusicModel)


def test_auto_measures_every_runtime_once_and_keeps_the_fastest(
    exported_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_seconds(lm: object, steps: int = 0) -> float:
        variant = getattr(lm, "variant", "torch")
        calls.append(variant)
        return {"torch": 0.05, "fp32": 0.02}.get(variant, 0.03)

    monkeypatch.setattr(ort_lm, "decode_seconds", fake_seconds)
    resources = _resources("auto")
    lm = get_language_model(resources, LM)
    assert isinstance(lm, OrtLanguageModel) and lm.variant == "fp32"
    assert calls == ["torch", *_usable(exported_home)]
    choices = json.loads((paths.cache_dir() / select.CHOICES_FILE).read_text())
    assert list(choices.values()) == ["onnxruntime:fp32"]
    held = resources.cache.keys()
    assert [k for k in held if k.startswith("lm-ort")] == [f"lm-ort:{LM}:cpu:fp32"]  # only the chosen one is kept
    assert get_language_model(_resources("auto"), LM).variant == "fp32"
    assert len(calls) == 1 + len(_usable(exported_home))  # measured once per machine


def test_auto_without_an_export_stays_on_torch(studio_home: Path) -> None:
    from tests.ml.tiny_gguf import write_tiny_gguf

    write_tiny_gguf(paths.user_models_dir() / "lm" / "Plain-LM.gguf")
    load_language_model(paths.user_models_dir() / "lm" / "Plain-LM.gguf", name="plain-lm")
    resources = _resources("auto")
    assert isinstance(get_language_model(resources, "plain-lm"), LanguageModel)
    assert resources.cache.keys() == ["lm:plain-lm:cpu"]


def test_cuda_without_its_provider_falls_back_to_cpu(exported_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    providers, note = providers_for("cuda")
    if "CUDAExecutionProvider" in providers:
        pytest.skip("this onnxruntime has the CUDA provider")
    assert providers == ["CPUExecutionProvider"] and "no CUDA provider" in note
    record = read_record(exported_home / "onnx" / LM / "fp32")
    with caplog.at_level(logging.WARNING):
        lm = load_ort_language_model(record, exported_home / "lm" / "Tiny-LM.gguf", "cuda")
    assert "no CUDA provider" in caplog.text
    assert lm.device.type == "cpu" and lm.prefill([5, 6, 7])[0].shape == (1, lm.config.vocab_size)


def test_truncated_file_and_other_inputs_are_refused(exported_home: Path, tmp_path: Path) -> None:
    llama_graph = registry.get("llama").onnx[0]
    source = read_record(exported_home / "onnx" / LM / "fp32").graph_path("decoder_with_past")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        open_session(truncated, "cpu", graph=llama_graph)
    music_graph = read_record(exported_home / "onnx" / MUSIC / "fp32").graph_path("decoder_with_past")
    with pytest.raises(ModelFileError, match="expects"):
        open_session(music_graph, "cpu", graph=llama_graph)


def test_sha256_mismatch_is_refused_when_forced_and_skipped_in_auto(
    exported_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for variant in ("fp32", "int4"):
        record = read_record(exported_home / "onnx" / LM / variant)
        graph = record.graph_path(next(iter(record.graphs)))
        graph.write_bytes(graph.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="does not match its recorded sha256"):
        get_language_model(_resources("onnxruntime"), LM)
    with caplog.at_level(logging.WARNING):
        assert isinstance(get_language_model(_resources("auto"), LM), LanguageModel)
    assert "does not match its recorded sha256" in caplog.text


def test_graph_runners_of_both_runtimes_agree(exported_home: Path) -> None:
    import torch

    resources = _resources("auto")
    graph = registry.get("music-transformer").onnx[0]
    record = read_record(exported_home / "onnx" / MUSIC / "fp32")
    runners = {"torch": resources.runtimes.graph_runner(MUSIC, graph.name, "cpu", None),
               "onnxruntime": resources.runtimes.graph_runner(MUSIC, graph.name, "cpu", record)}
    assert {k: r.runtime for k, r in runners.items()} == {"torch": "torch", "onnxruntime": "onnxruntime"}
    _, config, _ = resources.runtimes.load_module(MUSIC, "cpu")
    inputs = graph.example_inputs(config, 2)
    want, got = runners["torch"](*inputs), runners["onnxruntime"](*inputs)
    for a, b in zip(want, got, strict=True):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-3)


def test_auto_really_measures_on_a_fresh_machine(exported_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first copy job on a new install measures torch and every export for real (no remembered choice): this
    once crashed on the prompt cache's weight stamp because the torch model was loaded in inference mode."""
    measured: list[object] = []
    real = ort_lm.decode_seconds

    def spy(lm: object, steps: int = ort_lm.MEASURE_STEPS) -> float:
        measured.append(lm)
        return real(lm, steps)

    monkeypatch.setattr(ort_lm, "decode_seconds", spy)
    get_language_model(_resources("torch"), LM)  # an earlier torch run leaves the weights' cache file behind
    resources = _resources("auto")
    lm = get_language_model(resources, LM)
    assert isinstance(measured[0], LanguageModel) and len(measured) == 1 + len(_usable(exported_home))
    choices = json.loads((paths.cache_dir() / select.CHOICES_FILE).read_text())
    chosen = list(choices.values())
    assert len(chosen) == 1 and chosen[0] in {"torch", *(f"onnxruntime:{v}" for v in _usable(exported_home))}
    logits, cache = lm.prefill(lm.tokenizer.encode("hello there"), 4)
    logits, cache = lm.decode_step([int(logits[0].argmax())], cache)
    assert logits.shape[0] == 1


def test_an_export_shipped_with_the_program_is_found_and_the_users_own_comes_first(
        exported_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundle ships the language model's int4 export in its read-only models/onnx: never made again."""
    bundled = tmp_path / "bundled"
    (bundled / "onnx").mkdir(parents=True)
    (exported_home / "onnx" / LM).rename(bundled / "onnx" / LM)
    monkeypatch.setenv("STUDIO_BUNDLED_MODELS", str(bundled))
    sha256 = sha256_file(Resources.from_settings(Settings()).store.find(LM).weights)
    assert exports.find_export(LM, ("int4",), sha256).folder == bundled / "onnx" / LM / "int4"
    assert exports.has_export(LM, "int4")
    (exported_home / "onnx" / LM).mkdir(parents=True)
    (bundled / "onnx" / LM / "fp32").rename(exported_home / "onnx" / LM / "fp32")
    assert exports.find_export(LM, ("fp32", "int4"), sha256).folder == exported_home / "onnx" / LM / "fp32"


def test_copy_batches_are_measured_apart_from_single_streams(exported_home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.ml.tasks.copy import load_copy_model

    def fake(fastest: str):
        return lambda lm, *_: 0.01 if getattr(lm, "variant", "torch") == fastest else 0.05

    monkeypatch.setattr(ort_lm, "decode_seconds", fake("torch"))
    monkeypatch.setattr(ort_lm, "batch_seconds", fake("int4"))
    resources = _resources("auto")
    assert isinstance(get_language_model(resources, LM), LanguageModel)
    copy_lm = load_copy_model(resources, LM)
    assert isinstance(copy_lm, GqaLanguageModel) and copy_lm.variant == "int4"
    choices = json.loads((paths.cache_dir() / select.CHOICES_FILE).read_text())
    assert sorted(choices.values()) == ["onnxruntime:int4", "torch"]
    assert any(":llama:cpu:batch:1t:" in key for key in choices)
    assert any(":llama:cpu:stream:1t:" in key for key in choices)


def test_the_batch_measurement_runs_on_both_runtimes(exported_home: Path) -> None:
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    record = read_record(exported_home / "onnx" / LM / "int4")
    for lm in (load_ort_language_model(record, gguf, "cpu", 1), load_language_model(gguf)):
        assert 0 < ort_lm.batch_seconds(lm, rows=3, steps=3) < 10
