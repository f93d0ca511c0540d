"""Every registered architecture's tiny config exports to ONNX and matches torch at another batch size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.ml import registry
from studio.ml.export.onnx_export import ExportDriftError, compare_outputs, export_architecture

EXPORTABLE = [a.name for a in registry.all_architectures() if a.onnx]


@pytest.mark.parametrize("arch_name", EXPORTABLE)
def test_tiny_model_exports_with_parity(arch_name: str, tmp_path: Path) -> None:
    arch = registry.get(arch_name)
    config = arch.tiny_config()
    torch.manual_seed(0)
    module = arch.build(config).eval()
    results = export_architecture(arch, module, config, tmp_path)
    assert {r.graph for r in results} == {g.name for g in arch.onnx}
    for result in results:
        assert result.path.exists() and result.opset >= 18
        graph = next(g for g in arch.onnx if g.name == result.graph)
        assert result.max_abs_error <= graph.atol or result.max_rel_error <= graph.rtol


def test_drift_is_detected() -> None:
    import numpy as np

    with pytest.raises(ExportDriftError, match="shape"):
        compare_outputs([np.zeros((2, 3))], [np.zeros((3, 3))])
    max_abs, _ = compare_outputs([np.zeros(4)], [np.full(4, 0.5)])
    assert max_abs == 0.5
