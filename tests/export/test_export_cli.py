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


def test_set_up_replaces_an_older_int4_export_with_the_fused_graph(exported_home: Path, capsys, caplog) -> None:
    import logging

    from studio.ml.export.llama_graph import FORMAT, GRAPH
    from studio.ml.export.records import write_record
    from studio.ml.runtime.exports import read_record

    folder = default_export_dir(LM, "int4")
    current = read_record(folder)
    write_record(current.__class__(**{**current.__dict__, "extra": {}}))  # as an older version wrote it
    with caplog.at_level(logging.WARNING):
        assert main(["export", "onnx", LM, "--int4", "--if-missing"]) == 0  # what packaging/setup.sh runs
    assert "already exported" not in capsys.readouterr().out and "older version" in caplog.text
    remade = read_record(folder)
    assert GRAPH in remade.graphs and remade.extra["format"] == FORMAT
