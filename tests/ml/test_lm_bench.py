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
                 "--repeats", "1", "--variants", "2", "--json", str(out_json), "--md", str(out_md)])
    assert code == 0
    report = json.loads(out_json.read_text())
    assert [run["dtype"] for run in report["runs"]] == ["fp32", "fp16"]
    for run in report["runs"]:
        assert run["prompt_tokens"] > 100 and run["new_tokens"] == 4
        assert run["ttft_ms"] > 0 and run["decode_tok_s"] > 0 and run["decode_tok_s_batch2"] > 0
    assert report["machine"]["cores"] >= 1
    markdown = out_md.read_text()
    assert "| fp32 |" in markdown and "ttft_ms" in markdown
