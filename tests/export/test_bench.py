"""The benchmark plumbing (no timed assertions): statistics, ratios against targets, rows for missing runtimes and
exports, and the language-model measurement running on both runtimes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from studio.core.errors import BadInputError
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
        {"runtime": "torch eager", "precision": "int8", "status": "ok", "decode_tok_s": 12.0, "ttft_ms": 300.0,
         "decode_tok_s_k8": 40.0, "perplexity_ratio": 1.01, "auto_stream_ms": 80.0, "auto_batch_ms": 30.0},
        {"runtime": "onnxruntime", "precision": "fp32", "status": "ok", "decode_tok_s": 15.0, "export": "traced graph"},
        {"runtime": "onnxruntime", "precision": "int4", "status": "ok", "decode_tok_s": 30.0, "ttft_ms": 200.0,
         "decode_tok_s_k8": 60.0, "export": "fused graph", "perplexity_ratio": 1.03, "auto_stream_ms": 40.0,
         "auto_batch_ms": 20.0},
        {"runtime": "onnxruntime", "precision": "int4", "status": "ok", "decode_tok_s": 20.0,
         "export": "traced graph from an older Studio (given)"},
        {"runtime": "onnxruntime", "precision": "fp16", "status": "failed: no kernel"},
        {"runtime": "llama.cpp", "precision": "gguf", "status": "not installed"},
    ]
    ratios = copy_bench.ratios(rows)
    assert ratios["default"] == "onnxruntime int4 fused graph"  # auto's quickest at 8 candidates
    assert ratios["onnxruntime_int4_vs_torch_fp32"] == {"ratio": 3.0, "target": 2.0, "met": True}
    assert ratios["onnxruntime_best_vs_torch_best"] == {"ratio": 2.5, "target": 2.0, "met": True}
    assert ratios["fused_vs_older_export"] == {"ratio": 1.5, "target": 1.0, "met": True}
    assert ratios["default_vs_llama_cpp"]["met"] is None  # not measured, not a pass
    assert ratios["default_8_candidates_vs_its_single_stream"] == {"ratio": 2.0, "target": 3.0, "met": False}
    assert ratios["default_perplexity_vs_fp32"]["met"] is False  # x1.03 is not within 2 %
    assert ratios["auto_picks_fastest_single_stream"]["met"] is True
    assert ratios["auto_picks_fastest_8_candidates"]["met"] is True
    rows[-1] = {"runtime": "llama.cpp", "precision": "gguf", "status": "ok", "decode_tok_s": 25.0, "ttft_ms": 250.0}
    rows[3]["auto_batch_ms"] = 50.0  # auto's quick measurement now prefers torch, which this run measured slower
    ratios = copy_bench.ratios(rows)
    assert ratios["default"] == "torch eager int8"
    assert ratios["default_vs_llama_cpp"] == {"ratio": 0.48, "target": 1.0, "met": False}
    assert ratios["llama_cpp_ttft_over_default"] == {"ratio": 0.83, "target": 1.0, "met": False}
    assert ratios["default_perplexity_vs_fp32"]["met"] is True
    assert ratios["auto_picks_fastest_8_candidates"] == {"picked": "torch eager int8",
                                                         "fastest": "onnxruntime int4 fused graph", "met": False}
    report = {"model": "m", "file": "m.gguf", "prompt_tokens": 9, "new_tokens": 8, "repeats": 3, "batches": [1, 8],
              "threads": 2, "rows": rows, "threads_note": "3 threads asked but this machine has 2 cores: using 2",
              "load_average": {"start": [1.5, 1.0, 0.5], "end": [2.0, 1.0, 0.5]}, "ratios": ratios}
    text = "\n".join(copy_bench.markdown(report))
    assert "| k=8 tok/s |" in text and "| 60.0 |" in text and "| 3.00x | 2.0x | yes |" in text
    assert "| 0.48x | 1.0x | NO |" in text and "Note: 3 threads asked" in text and "[2.0, 1.0, 0.5]" in text
    assert "| x1.0100 |" in text and "| 80.0 / 30.0 |" in text and "| at most 1.02x | yes |" in text
    assert "| torch eager int8 | onnxruntime int4 fused graph | NO |" in text
    later = {**report, "threads": 1, "rows": [{**r} for r in rows]}
    del later["rows"][3]["perplexity_ratio"]
    copy_bench.carry_quality(report, later)
    assert later["rows"][3]["perplexity_ratio"] == 1.03
    table = "\n".join(copy_bench.summary([report, later]))
    assert "| 2 threads | 1 threads |" in table
    assert "| default vs llama cpp | 0.48x (NOT met) | 0.48x (NOT met) |" in table


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


def test_the_apps_thread_count_is_clamped_and_said(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    import logging

    import torch

    from studio.ml.device import configure_cpu_threads
    from studio.ml.runtime import cpu

    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING):
            assert configure_cpu_threads(64) == 2 and torch.get_num_threads() == 2  # settings from a bigger machine
        assert "64 threads asked but this machine has 2 cores" in caplog.text
    finally:
        torch.set_num_threads(before)


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


def test_given_export_folders_are_measured_as_they_are(exported_home: Path, tmp_path: Path) -> None:
    from studio.ml.export.records import write_record

    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    older = tmp_path / "older-int4"  # an older version's int4 export was a traced graph like the fp32 one
    shutil.copytree(exported_home / "onnx" / LM / "fp32", older)
    record = read_record(older)
    write_record(record.__class__(**{**record.__dict__, "variant": "int4"}))
    rows = copy_bench.given_export_rows([exported_home / "onnx" / LM / "int4", older, tmp_path / "none"], gguf,
                                        [5, 6, 7], "cpu", 1, 4, 1, (2,))
    assert [r["status"] for r in rows[:2]] == ["ok", "ok"] and rows[2]["status"].startswith("failed")
    assert rows[0]["export"] == "fused graph (given)" and "auto_batch_ms" not in rows[0]  # never auto's choice
    assert rows[1]["export"] == "traced graph from an older Studio (given)" and rows[1]["decode_tok_s_k2"] > 0


def test_the_speed_measurement_runs_on_both_runtimes(exported_home: Path) -> None:
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    record = read_record(exported_home / "onnx" / LM / "int4")
    for lm in (load_language_model(gguf), load_ort_language_model(record, gguf, "cpu", 1)):
        result = copy_bench.lm_speed(lm, lm.tokenizer.encode("the cat"), 5, 2, (3,), "cpu")
        wanted = {"ttft_ms", "ttft_new_brief_ms", "ttft_repeat_ms", "decode_tok_s", "decode_tok_s_k3"}
        assert wanted <= result.keys()
        assert result["decode_tok_s"] > 0 and result["decode_tok_s_k3"] > 0
