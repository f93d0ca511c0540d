"""The interface a task sees while it runs: progress, partial results and cancellation.

The engine implements it with Qt signals, the CLI with a terminal progress bar; tasks do not know which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from studio.core.cancel import CancelToken
from studio.core.jobs import EventType, JobEvent, JobSpec

EventSink = Callable[[JobEvent], None]


class JobContext:
    """Passed to every task. ``step()`` is the cancel point; ``progress()``/``partial()`` report to the sink."""

    def __init__(
        self,
        spec: JobSpec,
        sink: EventSink,
        cancel: CancelToken | None = None,
        device: str = "cpu",
        resources: Any = None,
    ) -> None:
        self.spec = spec
        self.cancel = cancel or CancelToken()
        self.device = device
        self.resources = resources  # the model cache and runtime settings owned by the worker
        self._sink = sink
        self._started = time.monotonic()
        self._last_fraction = 0.0
        self.batch_scale = 1.0  # lowered by the runner after a CUDA out-of-memory error

    def check_cancel(self) -> None:
        self.cancel.check()

    def eta(self, fraction: float) -> float | None:
        if fraction <= 0.0:
            return None
        elapsed = time.monotonic() - self._started
        return max(0.0, elapsed * (1.0 - fraction) / fraction)

    def progress(self, fraction: float, message: str = "", preview: Any = None) -> None:
        """Report progress in [0, 1]; also a cancel point."""
        self.cancel.check()
        fraction = min(1.0, max(0.0, fraction))
        self._last_fraction = fraction
        self._emit(EventType.PROGRESS, fraction=fraction, message=message, preview=preview)

    def note(self, message: str) -> None:
        """Tell the user something without changing progress (e.g. 'retrying on CPU')."""
        self._emit(EventType.PROGRESS, fraction=self._last_fraction, message=message)

    def partial(self, payload: Any, message: str = "") -> None:
        """Hand over one finished piece (a sprite, a token, a line) before the job ends."""
        self.cancel.check()
        self._emit(EventType.PARTIAL, fraction=self._last_fraction, message=message, payload=payload)

    def _emit(self, type_: EventType, **fields: Any) -> None:
        fraction = fields.get("fraction", self._last_fraction)
        self._sink(JobEvent(self.spec.job_id, self.spec.kind, type_, eta_s=self.eta(fraction), **fields))
