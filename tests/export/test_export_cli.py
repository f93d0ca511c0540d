"""``studio export onnx --if-missing`` (what set-up runs every time): an export of the current weights is kept, a
missing variant is made."""

from __future__ import annotations

from pathlib import Path

from studio.cli import main
from studio.ml.runtime.exports import default_export_dir
from tests.export.conftest import LM


def test_if_missing_keeps_an_existing_export_and_makes_a_missing_one(exported_home: Path, capsys) -> None:
    int4 = default_export_dir(LM, "int4") / "export.json"
    before = int4.stat().st_mtime_ns
    assert main(["export", "onnx", LM, "--int4", "--if-missing"]) == 0
    assert "already exported" in capsys.readouterr().out
    assert int4.stat().st_mtime_ns == before

    int8 = default_export_dir(LM, "int8") / "export.json"
    assert not int8.exists()
    assert main(["export", "onnx", LM, "--int8", "--if-missing"]) == 0
    assert int8.exists() and "held-out perplexity" in capsys.readouterr().out
