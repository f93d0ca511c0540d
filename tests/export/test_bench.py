"""The benchmark plumbing (no timed assertions): statistics, ratios against targets, rows for missing runtimes and
exports, and the language-model measurement running on both runtimes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from studio.ml.bench import copy as copy_bench
from studio.ml.bench.timing import machine_description, machine_line, measure, summarise
from studio.ml.runtime.exports import read_record
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
        {"runtime": "torch eager", "precision": "bf16", "status": "ok", "decode_tok_s": 12.0},
        {"runtime": "onnxruntime", "precision": "fp32", "status": "ok", "decode_tok_s": 15.0},
        {"runtime": "onnxruntime", "precision": "int4", "status": "ok", "decode_tok_s": 30.0},
        {"runtime": "onnxruntime", "precision": "fp16", "status": "failed: no kernel"},
        {"runtime": "llama.cpp", "precision": "gguf", "status": "not installed"},
    ]
    ratios = copy_bench.ratios(rows)
    assert ratios["onnxruntime_int4_vs_torch_fp32"] == {"ratio": 3.0, "target": 2.0, "met": True}
    assert ratios["onnxruntime_best_vs_torch_best"] == {"ratio": 2.5, "target": 2.0, "met": True}
    assert ratios["onnxruntime_best_vs_llama_cpp"]["met"] is None  # not measured, not a pass
    text = "\n".join(copy_bench.markdown({"model": "m", "file": "m.gguf", "prompt_tokens": 9, "new_tokens": 8,
                                          "repeats": 3, "variants": 3, "threads": 2, "rows": rows,
                                          "ratios": ratios}))
    assert "not installed" in text and "| 3.00x | 2.0x | yes |" in text and "not measured" in text


def test_missing_references_and_exports_become_rows(exported_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as when it is not installed
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    assert copy_bench.llama_cpp_row(gguf, [1, 2], 4, 1, 1)["status"].startswith("not installed")
    rows = {r["precision"]: r for r in copy_bench.ort_rows(LM, gguf, [5, 6, 7], "cpu", 1, 4, 1, 2)}
    assert rows["int8"]["status"].startswith("not exported") and "--int8" in rows["int8"]["status"]
    assert rows["fp32"]["status"] == "ok" and rows["fp32"]["decode_tok_s"] > 0
    assert rows["int4"]["perplexity_ratio"] is not None


def test_the_speed_measurement_runs_on_both_runtimes(exported_home: Path) -> None:
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    record = read_record(exported_home / "onnx" / LM / "int4")
    for lm in (load_language_model(gguf), load_ort_language_model(record, gguf, "cpu", 1)):
        result = copy_bench.lm_speed(lm, lm.tokenizer.encode("the cat"), 5, 2, 3, "cpu")
        wanted = {"ttft_ms", "ttft_new_brief_ms", "ttft_repeat_ms", "decode_tok_s", "decode_tok_s_batch3"}
        assert wanted <= result.keys()
        assert result["decode_tok_s"] > 0 and result["decode_tok_s_batch3"] > 0
