"""``studio bench copy`` on a tiny GGUF: it runs end to end and writes the JSON and Markdown it promises."""

from __future__ import annotations

import json
from pathlib import Path

from studio.cli import main
from tests.ml.tiny_gguf import tiny_model, write_tiny_gguf


def test_bench_copy_writes_json_and_markdown(tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf", tiny_model(max_seq_len=1024))  # the brief is long in bytes
    out_json, out_md = tmp_path / "bench" / "copy.json", tmp_path / "bench" / "copy.md"
    code = main(["bench", "copy", "--gguf", str(gguf), "--dtypes", "fp32,fp16", "--new-tokens", "4",
                 "--repeats", "1", "--batches", "2", "--threads", "1", "--no-references", "--json", str(out_json),
                 "--md", str(out_md)])
    assert code == 0
    report = json.loads(out_json.read_text())["copy"]
    torch_rows = [row for row in report["rows"] if row["runtime"] == "torch eager"]
    assert [row["precision"] for row in torch_rows] == ["fp32", "fp16"]
    for row in torch_rows:
        assert row["ttft_ms"] > 0 and row["decode_tok_s"] > 0 and row["decode_tok_s_k2"] > 0
    assert report["prompt_tokens"] > 100
    assert "| torch eager | fp32 |" in out_md.read_text() and "TTFT ms repeat" in out_md.read_text()


def test_bench_copy_refuses_fewer_than_two_new_tokens(tmp_path: Path, capsys) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf", tiny_model(max_seq_len=1024))
    assert main(["bench", "copy", "--gguf", str(gguf), "--new-tokens", "1", "--no-references"]) != 0
    assert "at least 2 tokens" in capsys.readouterr().err
