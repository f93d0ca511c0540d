"""A thread-safe cancellation token checked at every step of every loop."""

from __future__ import annotations

import threading


class JobCancelled(Exception):
    """Raised inside a job when its token was cancelled."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` if cancellation was requested."""
        if self._event.is_set():
            raise JobCancelled()
