"""Qt test safety net: an engine left running by a failing test is stopped, so the run reports the failure.

Without it, Python destroys the still-running QThread at exit and Qt aborts the whole process (exit 134).
"""

from __future__ import annotations

import contextlib

import pytest

from studio.engine.client import Engine


@pytest.fixture(autouse=True)
def stop_engines_left_running(monkeypatch: pytest.MonkeyPatch):
    engines: list[Engine] = []
    original_init = Engine.__init__

    def tracking_init(self: Engine, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        engines.append(self)

    monkeypatch.setattr(Engine, "__init__", tracking_init)
    yield
    for engine in engines:
        with contextlib.suppress(RuntimeError):  # its Qt object is already gone, and its thread with it
            engine.shutdown()
