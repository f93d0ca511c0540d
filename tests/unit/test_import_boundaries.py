"""The layering rules of ARCHITECTURE.md, checked on the source (AST), so a violation fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "studio"

FORBIDDEN = {
    "core": ("PySide6", "torch", "torchaudio", "onnxruntime", "onnx", "studio.ml", "studio.engine", "studio.ui"),
    "ml": ("PySide6", "studio.engine", "studio.ui"),
    "ui": ("torch", "torchaudio", "onnxruntime", "onnx", "studio.ml"),
    "engine": ("studio.ui",),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def violations(layer: str) -> list[str]:
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in imported_modules(path):
            for prefix in FORBIDDEN[layer]:
                if module == prefix or module.startswith(prefix + "."):
                    bad.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_respects_import_rules(layer: str) -> None:
    assert (PACKAGE / layer).is_dir()
    assert violations(layer) == []


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import torch\nfrom PySide6.QtCore import QObject\n")
    assert imported_modules(sample) == {"torch", "PySide6.QtCore"}
