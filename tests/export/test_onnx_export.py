"""Every registered architecture's tiny config exports to ONNX and matches torch at another batch size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.errors import ExportDriftError
from studio.ml import registry
from studio.ml.export.greedy import STEPS, greedy_agreement
from studio.ml.export.onnx_export import compare_outputs, export_architecture

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
        transformer = arch_name in ("llama", "music-transformer") and graph.name == "decoder_with_past"
        assert result.greedy_steps == (STEPS if transformer else None)  # greedy tokens equal to torch's


def test_drift_is_detected() -> None:
    import numpy as np

    with pytest.raises(ExportDriftError, match="shape"):
        compare_outputs([np.zeros((2, 3))], [np.zeros((3, 3))])
    max_abs, _ = compare_outputs([np.zeros(4)], [np.full(4, 0.5)])
    assert max_abs == 0.5


def test_greedy_agreement_counts_disagreements_but_not_ties() -> None:
    class Fixed:
        """Steps whose logits favour token ``best`` by ``margin`` over token 0 at every step."""

        def __init__(self, runner: tuple[int, float], config: object) -> None:
            self.best, self.margin = runner

        def __call__(self, ids: list[int]) -> torch.Tensor:
            logits = torch.zeros(4)
            logits[self.best] = self.margin
            return logits

    assert greedy_agreement(Fixed, (1, 1.0), (1, 1.0), None, [0], 5, tie=1e-4) == 5
    assert greedy_agreement(Fixed, (1, 1.0), (2, 1.0), None, [0], 5, tie=1e-4) == 0
    assert greedy_agreement(Fixed, (1, 1e-6), (0, 1.0), None, [0], 5, tie=1e-4) == 5  # torch itself is undecided
