"""JobCall, the one way a workspace follows its job: each callback hears only its own job, in order, and ``on_end``
comes once after whatever ended it."""

from __future__ import annotations

from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec
from studio.engine.client import Engine
from studio.ui.jobs import run_job


def steps(spec: JobSpec, ctx: JobContext) -> str:
    for i in range(2):
        ctx.progress(i / 2, f"step {i}")
        ctx.partial(i)
    if spec.params.get("fail"):
        raise BadInputError("no good")
    return "done"


def follow(engine: Engine, spec: JobSpec, heard: list) -> None:
    run_job(engine, spec, on_started=lambda: heard.append("started"),
            on_progress=lambda event: heard.append(event.message), on_partial=heard.append,
            on_done=lambda result: heard.append(f"result {result}"), on_fail=lambda m: heard.append(f"failed: {m}"),
            on_cancel=lambda: heard.append("cancelled"), on_end=lambda: heard.append("end"))


def test_a_call_hears_its_own_job_from_start_to_end(qtbot) -> None:
    engine = Engine(tasks={"steps": steps})
    good, bad = [], []
    follow(engine, JobSpec("steps"), good)
    follow(engine, JobSpec("steps", {"fail": True}), bad)
    qtbot.waitUntil(lambda: good[-1:] == ["end"] and bad[-1:] == ["end"], timeout=10_000)
    assert good == ["started", "step 0", 0, "step 1", 1, "result done", "end"]
    assert bad == ["started", "step 0", 0, "step 1", 1, "failed: no good", "end"]
    assert engine.shutdown()
