"""Killing a saver mid-write, two ways, in a forked child (no imports to repeat, nothing cleaned up on the way out):

- :func:`crash_points` stops the child at each point where a file is opened for writing or renamed, in turn, so
  every crash point of a save is tried once (deterministic);
- :func:`random_kills` lets the child save in a loop and sends it SIGKILL after a random delay, many times.

After each crash the caller's ``check`` must find the previous (or the new) file intact and loadable.
"""

from __future__ import annotations

import builtins
import io
import os
import random
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from studio.core.safe_write import remove_stale_temps
from tests.faults import leftovers

DIED = 99  # the child's exit status when it stopped at the chosen point
NEEDS_FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="the crash tests fork (POSIX only)")


def _child(action: Callable[[], None], stop_at: int | None) -> None:
    """In the forked child: run ``action``, dying (os._exit: no cleanup at all) at event number ``stop_at``."""
    events = {"n": 0}
    real_open, real_replace = builtins.open, os.replace

    def event() -> None:
        if events["n"] == stop_at:
            os._exit(DIED)
        events["n"] += 1

    def opening(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if isinstance(file, str | os.PathLike) and any(c in mode for c in "wxa"):
            event()  # the file now exists (and was truncated): the state a kill right after open leaves
        return handle

    def replacing(src, dst, *args, **kwargs):
        event()  # a kill before the rename
        real_replace(src, dst, *args, **kwargs)

    builtins.open = io.open = opening
    os.replace = replacing
    code = 0
    try:
        action()
    except BaseException:  # the parent sees the exit status
        code = 1
    os._exit(code)


def _run_child(action: Callable[[], None], stop_at: int | None) -> int:
    pid = os.fork()
    if pid == 0:
        _child(action, stop_at)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def crash_at(action: Callable[[], None], point: int = 0) -> bool:
    """Run ``action`` in a child that dies at its file event number ``point``; True when it died there."""
    code = _run_child(action, point)
    assert code in (DIED, 0), f"the action failed with exit status {code}"
    return code == DIED


def crash_points(action: Callable[[], None], check: Callable[[], None], limit: int = 50) -> int:
    """Crash ``action`` at each of its file events in turn, calling ``check`` after each; returns how many crash
    points there were (the action then ran to its end)."""
    for point in range(limit):
        code = _run_child(action, point)
        check()
        if code != DIED:
            assert code == 0, f"the save failed with exit status {code} instead of finishing"
            return point
    raise AssertionError(f"more than {limit} file events in one save")


@dataclass
class KillReport:
    kills: int = 0
    intact: int = 0
    left_temporaries: int = 0
    cleaned: int = 0
    versions_seen: set[int] = field(default_factory=set)

    def line(self, what: str) -> str:
        return (f"{what}: {self.intact} of {self.kills} kill -9 left the file intact and loadable "
                f"({len(self.versions_seen)} different versions found); {self.left_temporaries} left temporary "
                f"files ({self.cleaned} in all), all removed by the start-up clean-up")


def random_kills(save: Callable[[int], None], check: Callable[[], int], folder: Path, kills: int = 50,
                 window: float = 0.05, seed: int = 14, first_version: int = 1) -> KillReport:
    """SIGKILL a child that calls ``save(version)`` in a loop (``first_version``, then up) after a random delay of up to
    ``window`` seconds, ``kills`` times; ``check()`` must return the version on disk (and raise when it is not
    intact). Temporary files left behind are counted, then removed as start-up would."""
    rng = random.Random(seed)
    report = KillReport()
    start = first_version
    for _ in range(kills):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                version = start
                while True:
                    save(version)
                    version += 1
            except BaseException:
                code = 1
                (folder.parent / "saver-error.txt").write_text(traceback.format_exc())
            os._exit(code)
        time.sleep(rng.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        error = folder.parent / "saver-error.txt"
        assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL, \
            f"the saver stopped on its own: {error.read_text() if error.exists() else 'no traceback'}"
        report.kills += 1
        version = check()
        report.intact += 1
        report.versions_seen.add(version)
        start = version + 1_000  # the next child writes versions never seen before
        if leftovers(folder):
            report.left_temporaries += 1
            report.cleaned += len(remove_stale_temps([folder]))
            assert leftovers(folder) == [], "start-up must remove every temporary file a kill left"
    return report
