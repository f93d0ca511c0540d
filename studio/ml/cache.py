"""The worker's cache of loaded models, keyed by name, evicted least-recently-used under a memory budget."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def module_bytes(obj: Any) -> int:
    if isinstance(obj, nn.Module):
        return sum(t.numel() * t.element_size() for t in [*obj.parameters(), *obj.buffers()])
    return int(getattr(obj, "nbytes", 0))


class ModelCache:
    def __init__(self, budget_bytes: int = 4 << 30) -> None:
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key][0]
        value = load()
        size = module_bytes(value)
        self._items[key] = (value, size)
        self._evict(keep=key)
        return value

    def _evict(self, keep: str) -> None:
        while self.total_bytes > self.budget_bytes and len(self._items) > 1:
            oldest = next(iter(self._items))
            if oldest == keep:
                break
            del self._items[oldest]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
