"""The model worker: progress, cancellation within 250 ms, failures, a queue of three, shutdown, UI stalls."""

from __future__ import annotations

import time

import pytest

from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.jobs import EventType, JobSpec
from studio.engine.client import Engine
from studio.engine.stall_probe import StallProbe


def slow_steps(spec: JobSpec, ctx: JobContext) -> int:
    steps = int(spec.params.get("steps", 5))
    for i in range(steps):
        time.sleep(float(spec.params.get("sleep", 0.01)))
        ctx.progress((i + 1) / steps, f"step {i + 1}")
    return steps


def failing(spec: JobSpec, ctx: JobContext) -> None:
    raise BadInputError("that sprite sheet is 33 px wide, not a multiple of 32")


def crashing(spec: JobSpec, ctx: JobContext) -> None:
    raise ZeroDivisionError("division by zero")


TASKS = {"test.steps": slow_steps, "test.fail": failing, "test.crash": crashing}


@pytest.fixture
def engine(qtbot):
    eng = Engine(tasks=TASKS)
    yield eng
    assert eng.shutdown()


class Recorder:
    def __init__(self, engine: Engine) -> None:
        self.events = []
        engine.event.connect(self.events.append)

    def of(self, job_id: int):
        return [e.type for e in self.events if e.job_id == job_id]

    def terminal(self, job_id: int):
        return next((e for e in self.events if e.job_id == job_id and e.type.is_terminal), None)


def test_job_reports_progress_and_result(qtbot, engine):
    rec = Recorder(engine)
    spec = JobSpec("test.steps", {"steps": 4})
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.type is EventType.FINISHED, timeout=5000):
        engine.submit(spec)
    types = rec.of(spec.job_id)
    assert types[:2] == [EventType.QUEUED, EventType.STARTED]
    assert types.count(EventType.PROGRESS) == 4
    progress = [e for e in rec.events if e.type is EventType.PROGRESS]
    assert [round(e.fraction, 2) for e in progress] == [0.25, 0.5, 0.75, 1.0]
    assert progress[-1].eta_s == pytest.approx(0.0, abs=1e-6)
    assert rec.terminal(spec.job_id).payload == 4


def test_cancel_running_job_within_250ms(qtbot, engine):
    rec = Recorder(engine)
    spec = JobSpec("test.steps", {"steps": 1000, "sleep": 0.005})
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.type is EventType.PROGRESS, timeout=5000):
        engine.submit(spec)
    requested = time.perf_counter()
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.type is EventType.CANCELLED, timeout=2000):
        engine.cancel(spec.job_id)
    latency = time.perf_counter() - requested
    assert latency < 0.25, f"cancel took {latency * 1000:.0f} ms"
    assert rec.of(spec.job_id)[-1] is EventType.CANCELLED
    assert engine.queue_length == 0


def test_failing_job_gives_readable_message_and_worker_survives(qtbot, engine):
    rec = Recorder(engine)
    bad, crash, good = JobSpec("test.fail"), JobSpec("test.crash"), JobSpec("test.steps", {"steps": 1})
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.job_id == good.job_id and e.type.is_terminal,
                          timeout=5000):
        engine.submit(bad)
        engine.submit(crash)
        engine.submit(good)
    assert rec.terminal(bad.job_id).type is EventType.FAILED
    assert rec.terminal(bad.job_id).message == "that sprite sheet is 33 px wide, not a multiple of 32"
    assert "ZeroDivisionError" in rec.terminal(crash.job_id).message
    assert rec.terminal(good.job_id).type is EventType.FINISHED


def test_queue_of_three_runs_in_order_and_queued_job_can_be_cancelled(qtbot, engine):
    rec = Recorder(engine)
    specs = [JobSpec("test.steps", {"steps": 3, "sleep": 0.02}) for _ in range(3)]
    lengths = []
    engine.queue_changed.connect(lengths.append)
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.job_id == specs[2].job_id and e.type.is_terminal,
                          timeout=5000):
        for spec in specs:
            engine.submit(spec)
        engine.cancel(specs[1].job_id)
    assert lengths[:3] == [1, 2, 3]
    assert lengths[-1] == 0
    finished = [e.job_id for e in rec.events if e.type is EventType.FINISHED]
    assert finished == [specs[0].job_id, specs[2].job_id]
    assert rec.terminal(specs[1].job_id).type is EventType.CANCELLED
    started = [e.job_id for e in rec.events if e.type is EventType.STARTED]
    assert started == [specs[0].job_id, specs[2].job_id]


def test_unknown_kind_fails_cleanly(qtbot, engine):
    spec = JobSpec("nope.nothing")
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.type is EventType.FAILED, timeout=5000) as blocker:
        engine.submit(spec)
    assert "Unknown job kind" in blocker.args[0].message


def test_shutdown_while_busy_stops_the_thread(qtbot):
    eng = Engine(tasks=TASKS)
    spec = JobSpec("test.steps", {"steps": 100_000, "sleep": 0.001})
    with qtbot.waitSignal(eng.event, check_params_cb=lambda e: e.type is EventType.PROGRESS, timeout=5000):
        eng.submit(spec)
    start = time.perf_counter()
    assert eng.shutdown()
    assert time.perf_counter() - start < 1.0


def test_ui_thread_never_stalls_over_50ms_during_cpu_heavy_job(qtbot):
    """A real torch workload (the device self-test, at least 1.5 s) on the worker while a 5 ms timer probes the UI."""
    eng = Engine()  # the real task table
    with qtbot.waitSignal(eng.ready, timeout=30_000):
        pass
    probe = StallProbe(interval_ms=5)
    spec = JobSpec("system.selftest", {"size": 384, "steps": 60, "min_seconds": 1.5})
    probe.start()
    with qtbot.waitSignal(eng.event, check_params_cb=lambda e: e.type.is_terminal, timeout=60_000) as blocker:
        eng.submit(spec)
    probe.stop()
    result = blocker.args[0]
    assert result.type is EventType.FINISHED, result.message
    assert result.payload["gflops"] > 0
    assert result.payload["seconds"] >= 1.5
    # The probe kept ticking for the whole job: at least one tick per 20 ms on average (it aims for one per 5 ms).
    assert probe.ticks >= result.payload["seconds"] * 1000 / 20, probe.ticks
    assert probe.longest_stall_ms < 50, f"UI thread stalled {probe.longest_stall_ms:.1f} ms"
    assert eng.shutdown()
