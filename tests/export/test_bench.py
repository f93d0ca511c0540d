"""The benchmark plumbing (no timed assertions): statistics, ratios against targets, rows for missing runtimes and
exports, and the language-model measurement running on both runtimes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from studio.core.errors import BadInputError
from studio.ml.bench import copy as copy_bench
from studio.ml.bench.timing import machine_description, machine_line, measure, summarise
from studio.ml.export.records import read_record
from studio.ml.runtime.ort_lm import load_ort_language_model
from studio.ml.text.lm import load_language_model
from tests.export.conftest import LM


def test_median_and_interquartile_range() -> None:
    timing = summarise([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (timing.median_s, timing.iqr_s, timing.runs) == (3.0, 2.0, 5)
    assert summarise([0.5]).iqr_s == 0.0
    calls: list[int] = []
    assert measure(lambda: calls.append(1), repeats=3, warmup=2).runs == 3 and len(calls) == 5
    with pytest.raises(ValueError):
        summarise([])


def test_machine_description_names_what_the_numbers_depend_on() -> None:
    info = machine_description("cpu", 2)
    assert {"cpu", "cores", "threads", "torch", "onnxruntime", "date", "load_average"} <= info.keys()
    assert "2 threads" in machine_line(info) and info["onnxruntime"] in machine_line(info)


def test_ratios_against_the_targets() -> None:
    rows = [
        {"runtime": "torch eager", "precision": "fp32", "status": "ok", "decode_tok_s": 10.0},
        {"runtime": "torch eager", "precision": "int8", "status": "ok", "decode_tok_s": 12.0, "ttft_ms": 300.0,
         "decode_tok_s_k8": 40.0},
        {"runtime": "onnxruntime", "precision": "fp32", "status": "ok", "decode_tok_s": 15.0},
        {"runtime": "onnxruntime", "precision": "int4", "status": "ok", "decode_tok_s": 30.0, "ttft_ms": 200.0,
         "decode_tok_s_k8": 60.0},
        {"runtime": "onnxruntime", "precision": "fp16", "status": "failed: no kernel"},
        {"runtime": "llama.cpp", "precision": "gguf", "status": "not installed"},
    ]
    ratios = copy_bench.ratios(rows)
    assert ratios["onnxruntime_int4_vs_torch_fp32"] == {"ratio": 3.0, "target": 2.0, "met": True}
    assert ratios["onnxruntime_best_vs_torch_best"] == {"ratio": 2.5, "target": 2.0, "met": True}
    assert ratios["studio_best_vs_llama_cpp"]["met"] is None  # not measured, not a pass
    assert ratios["studio_8_candidates_vs_single_stream"] == {"ratio": 2.0, "target": 3.0, "met": False}
    assert ratios["studio_best"] == "onnxruntime int4"
    rows[-1] = {"runtime": "llama.cpp", "precision": "gguf", "status": "ok", "decode_tok_s": 25.0, "ttft_ms": 250.0}
    ratios = copy_bench.ratios(rows)
    assert ratios["studio_best_vs_llama_cpp"] == {"ratio": 1.2, "target": 1.0, "met": True}
    assert ratios["llama_cpp_ttft_over_studio_best"] == {"ratio": 1.25, "target": 1.0, "met": True}
    text = "\n".join(copy_bench.markdown({"model": "m", "file": "m.gguf", "prompt_tokens": 9, "new_tokens": 8,
                                          "repeats": 3, "batches": [1, 8], "threads": 2, "rows": rows,
                                          "threads_note": "3 threads asked but this machine has 2 cores: using 2",
                                          "ratios": ratios}))
    assert "| k=8 tok/s |" in text and "| 60.0 |" in text and "| 3.00x | 2.0x | yes |" in text
    assert "| 2.00x | 3.0x | NO |" in text and "Note: 3 threads asked" in text


def test_thread_counts_are_clamped_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.cli.copy_lm import thread_counts
    from studio.ml.runtime import cpu

    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 2)
    assert cpu.clamp_threads(0) == (1, "0 threads cannot run a model: using 1")
    assert cpu.clamp_threads(8) == (2, "8 threads asked but this machine has 2 cores: using 2")
    assert cpu.clamp_threads(2) == (2, "")
    assert thread_counts("2,app,2") == [2, 1]  # the app leaves one of two cores to the desktop
    with pytest.raises(BadInputError, match="'many'"):
        thread_counts("2,many")


def test_a_cpu_without_the_int8_instructions_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.ml.runtime.cpu import int4_kernel_note

    assert int4_kernel_note(frozenset({"avx2", "avx512_vnni"})) == ""
    assert "AVX2 int8 path" in int4_kernel_note(frozenset({"sse4_2", "avx2"}))
    assert "float32 arithmetic" in int4_kernel_note(frozenset({"sse4_2"}))


def test_missing_references_and_exports_become_rows(exported_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as when it is not installed
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    assert copy_bench.llama_cpp_row(gguf, [1, 2], 4, 1, 1)["status"].startswith("not installed")
    rows = {r["precision"]: r for r in copy_bench.ort_rows(LM, gguf, [5, 6, 7], "cpu", 1, 4, 1, (2,))}
    assert rows["int8"]["status"].startswith("not exported") and "--int8" in rows["int8"]["status"]
    assert rows["fp32"]["status"] == "ok" and rows["fp32"]["decode_tok_s"] > 0
    assert rows["int4"]["perplexity_ratio"] is not None


def test_the_speed_measurement_runs_on_both_runtimes(exported_home: Path) -> None:
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    record = read_record(exported_home / "onnx" / LM / "int4")
    for lm in (load_language_model(gguf), load_ort_language_model(record, gguf, "cpu", 1)):
        result = copy_bench.lm_speed(lm, lm.tokenizer.encode("the cat"), 5, 2, (3,), "cpu")
        wanted = {"ttft_ms", "ttft_new_brief_ms", "ttft_repeat_ms", "decode_tok_s", "decode_tok_s_k3"}
        assert wanted <= result.keys()
        assert result["decode_tok_s"] > 0 and result["decode_tok_s_k3"] > 0
