"""The layering rules of studio/ARCHITECTURE.md, checked on the source (AST, every import including those inside
functions), so a violation fails CI: the rooms' forbidden imports, no import circle anywhere in ``studio``, the
order of the layers inside ``studio.ml``, and the modality registry naming parts in the layers that own them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from studio.core.modalities import all_modalities

PACKAGE = Path(__file__).resolve().parents[2] / "studio"

FORBIDDEN = {
    "core": ("PySide6", "torch", "torchaudio", "onnxruntime", "onnx", "studio.ml", "studio.engine", "studio.ui"),
    "ml": ("PySide6", "studio.engine", "studio.ui"),
    "ui": ("torch", "torchaudio", "onnxruntime", "onnx", "studio.ml"),
    "engine": ("studio.ui",),
}
#: Inside ``studio.ml``, lowest first: a layer imports only the layers below it (and what is outside the list).
ML_LAYERS = ("studio.ml.models", "studio.ml.runtime", "studio.ml.export", "studio.ml.eval")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path, package: Path = PACKAGE) -> str:
    return ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of the package it imports (``from a import b`` counts as ``a.b`` when b is one)."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int | None:
    return next((i for i, layer in enumerate(ML_LAYERS) if module == layer or module.startswith(layer + ".")), None)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        here = layer_of(module)
        for target in targets:
            there = layer_of(target)
            if here is not None and there is not None and there > here:
                bad.append(f"{module} imports {target} (a higher layer)")
    return sorted(bad)


def violations(layer: str) -> list[str]:
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in imported_modules(path):
            for prefix in FORBIDDEN[layer]:
                if module == prefix or module.startswith(prefix + "."):
                    bad.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    return sorted(set(bad))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_respects_import_rules(layer: str) -> None:
    assert (PACKAGE / layer).is_dir()
    assert violations(layer) == []


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


def test_ml_layers_import_only_downwards() -> None:
    assert upward_imports(import_graph()) == []


def test_registered_parts_live_in_the_layers_that_use_them() -> None:
    for modality in all_modalities():
        assert modality.workspace.module.startswith("studio.ui.")
        assert all(ref.module.startswith("studio.ml.tasks.") for ref in modality.tasks)
        assert all(ref.module.startswith("studio.cli.") for ref in modality.cli)
        assert all(ref.module.startswith("studio.ml.runtime.") for ref in modality.runtimes.values())
        assert all(ref.module.startswith("studio.ml.runtime.") for ref in modality.step_adapters.values())
        if modality.training is not None:
            parts = (modality.training.inspector, modality.training.estimator, modality.training.preview)
            assert all(ref.module.startswith("studio.ml.") for ref in parts if ref is not None)


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import torch\nfrom PySide6.QtCore import QObject\n")
    assert imported_modules(sample) == {"torch", "PySide6.QtCore", "PySide6.QtCore.QObject"}


def test_checker_finds_a_circle_hidden_inside_a_function_and_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "studio"
    (package / "ml" / "runtime").mkdir(parents=True)
    (package / "ml" / "export").mkdir(parents=True)
    (package / "ml" / "runtime" / "select.py").write_text(
        "def pick():\n    from studio.ml.export.pipeline import export_model\n")
    (package / "ml" / "export" / "pipeline.py").write_text("from studio.ml.runtime.select import pick\n")
    graph = import_graph(package)
    assert circles(graph) == [["studio.ml.export.pipeline", "studio.ml.runtime.select"]]
    assert upward_imports(graph) == ["studio.ml.runtime.select imports studio.ml.export.pipeline (a higher layer)"]
