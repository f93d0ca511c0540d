"""Alternating rounds: turns alternate in order, every ratio is taken within a round, and the bench holds its
targets against those ratios (no timed assertions: the contenders here report made-up seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.ml.bench import copy as copy_bench
from studio.ml.bench.side_by_side import Contender, alternate, round_ratio
from tests.export.conftest import LM


def _turns(seconds: dict[str, list[float]], order: list[str]) -> list[Contender]:
    """Contenders that log their turns and take the given seconds, one value a turn (the first: the warm-up)."""

    def run(name: str) -> float:
        order.append(name)
        return seconds[name].pop(0)

    return [Contender(name, 10, lambda name=name: run(name)) for name in seconds]


def test_turns_alternate_and_ratios_are_taken_within_each_round() -> None:
    order: list[str] = []
    # per round, ours over theirs: 2, 1, 1 (median 1); the medians of the rates would say 10 over 5 (2)
    seconds = {"ours": [9.0, 1.0, 1.0, 2.0], "theirs": [9.0, 2.0, 1.0, 2.0]}
    rates = alternate(_turns(seconds, order), rounds=3)
    assert order == ["ours", "theirs", "ours", "theirs", "theirs", "ours", "ours", "theirs"]  # warm-up, then turns
    assert rates == {"ours": [10.0, 10.0, 5.0], "theirs": [5.0, 10.0, 5.0]}
    assert round_ratio(rates, "ours", "theirs", 1.0) == {"ratio": 1.0, "low": 1.0, "high": 2.0, "rounds": 3,
                                                         "target": 1.0, "met": True}
    assert round_ratio(rates, "theirs", "ours", 1.5)["met"] is False
    assert round_ratio(rates, "ours", "llama.cpp", 1.0) == {"ratio": None, "target": 1.0, "met": None}
    with pytest.raises(ValueError, match="share a name"):
        alternate([Contender("ours", 1, lambda: 1.0), Contender("ours", 1, lambda: 1.0)], rounds=1)
    with pytest.raises(ValueError, match="at least one round"):
        alternate([Contender("ours", 1, lambda: 1.0)], rounds=0)


def test_the_bench_holds_its_targets_against_the_alternating_rounds(exported_home: Path) -> None:
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    prompt = [5, 6, 7]
    rows = copy_bench.ort_rows(LM, gguf, prompt, "cpu", 1, 4, 1, (2,), variants=("int4",))
    rows.append({"runtime": "llama.cpp", "precision": "gguf", "status": "not installed"})
    export = exported_home / "onnx" / LM / "int4"
    given = [export, exported_home / "no-such-export", export]  # the same export twice gets two names
    side = copy_bench.alternating_rounds(LM, gguf, prompt, "cpu", 1, 4, 2, rows, given)
    assert side is not None and side["rounds"] == 2
    default = "default: onnxruntime int4 fused graph"
    assert set(side["rates"]) == {default, f"{default}, 8 candidates", f"{LM} int4 (given)",
                                  f"{LM} int4 (given), 8 candidates", f"{LM} int4 (given) #2",
                                  f"{LM} int4 (given) #2, 8 candidates"}  # the missing export is left out
    batch = side["targets"]["default_8_candidates_vs_its_single_stream"]
    assert batch == round_ratio(side["rates"], f"{default}, 8 candidates", default, 3.0)  # the default's own rows
    assert side["others"][f"{LM} int4 (given) #2: 8 candidates vs its single stream"] == round_ratio(
        side["rates"], f"{LM} int4 (given) #2, 8 candidates", f"{LM} int4 (given) #2", 3.0)
    assert side["targets"]["default_vs_llama_cpp"]["met"] is None  # llama.cpp absent: not measured, not a pass
    ratios = copy_bench.ratios(rows, side)
    assert ratios["default_8_candidates_vs_its_single_stream"] == batch
    text = "\n".join(copy_bench.side_by_side_markdown(side, 4))
    assert "Alternating rounds (2)" in text and f"| {default}, 8 candidates |" in text
    assert f"| {LM} int4 (given): 8 candidates vs its single stream |" in text
    assert copy_bench.alternating_rounds(LM, gguf, prompt, "cpu", 1, 4, 0, rows) is None


def test_failed_rounds_are_said_and_the_tables_still_stand(exported_home: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(*args: object) -> None:
        raise MemoryError("out of memory loading the default runtime again")

    monkeypatch.setattr(copy_bench, "_open_row", no_memory)
    gguf = exported_home / "lm" / "Tiny-LM.gguf"
    report = copy_bench.bench_copy(LM, gguf, threads=1, new_tokens=4, repeats=1, batches=(8,), dtypes=("fp32",),
                                   references=(), quality=False, variants=("int4",), rounds=2)
    assert report["side_by_side"] == {"failed": "out of memory loading the default runtime again"}
    assert report["ratios"]["default_8_candidates_vs_its_single_stream"]["ratio"] is not None  # sequential tables
    assert "Alternating rounds: failed (out of memory" in "\n".join(copy_bench.markdown(report))
