"""GraphRunner: call a graph with numpy/torch inputs, get torch tensors back, whichever runtime runs it.

On CUDA, onnxruntime uses IO binding so inputs and outputs stay on the GPU (no host round-trips).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from studio.ml.registry import OnnxGraph


class GraphRunner(Protocol):
    runtime: str
    device: str  # where its outputs live ("cuda" only when the graph really runs there)

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]: ...


def _flatten(outputs: Any) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat: list[torch.Tensor] = []
    for item in outputs:
        flat.extend(_flatten(item))
    return flat


class TorchGraphRunner:
    runtime = "torch"

    def __init__(self, module: nn.Module, graph: OnnxGraph, device: str) -> None:
        self.module = graph.wrap(module).to(device).eval()
        self.device = device

    @torch.inference_mode()
    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        return _flatten(self.module(*(t.to(self.device) for t in inputs)))


_NP_TO_TORCH = {
    "tensor(float)": torch.float32,
    "tensor(float16)": torch.float16,
    "tensor(int64)": torch.int64,
    "tensor(int32)": torch.int32,
    "tensor(bool)": torch.bool,
}


class OrtGraphRunner:
    runtime = "onnxruntime"

    def __init__(self, session: Any, input_names: Sequence[str], device: str) -> None:
        self.session = session
        self.input_names = list(input_names)
        self.output_names = [o.name for o in session.get_outputs()]
        self.on_cuda = device == "cuda" and "CUDAExecutionProvider" in session.get_providers()
        self.device = "cuda" if self.on_cuda else "cpu"

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if self.on_cuda:
            return self._run_bound(inputs)
        feed = {name: t.detach().cpu().numpy() for name, t in zip(self.input_names, inputs, strict=True)}
        return [torch.from_numpy(np.asarray(o)) for o in self.session.run(self.output_names, feed)]

    def _run_bound(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        binding = self.session.io_binding()
        keep = []
        for name, tensor in zip(self.input_names, inputs, strict=True):
            tensor = tensor.to("cuda").contiguous()
            keep.append(tensor)
            binding.bind_input(name, "cuda", 0, _ort_type(tensor.dtype), tuple(tensor.shape), tensor.data_ptr())
        for name in self.output_names:
            binding.bind_output(name, "cuda")
        self.session.run_with_iobinding(binding)
        return [torch.from_dlpack(o.to_dlpack()) if hasattr(o, "to_dlpack") else torch.from_numpy(o.numpy())
                for o in binding.get_outputs()]


def _ort_type(dtype: torch.dtype) -> type:
    return {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64,
            torch.int32: np.int32, torch.bool: np.bool_}[dtype]
