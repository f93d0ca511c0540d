"""The Train workspace's buttons and messages through a run's life, with a scripted child in place of a trainer."""

from __future__ import annotations

import sys

import pytest

from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui.workspaces.train import TrainWorkspace

#: A child that speaks the trainer's event protocol: a fresh run trains until SIGTERM (pause, exit 75); a resumed
#: run finishes at once. The paused message is the real trainer's.
CHILD = r"""
import json, signal, sys, time
def out(event):
    print(json.dumps(event), flush=True)
if "--resume" in sys.argv:
    out({"event": "progress", "step": 4, "total": 4, "loss": {"d": 0.5}})
    out({"event": "finished", "model": "my-slimes", "metrics": {"train_d": 0.6}})
    sys.exit(0)
def pause(*_):
    out({"event": "paused", "message": "checkpoint saved; run again with --resume to continue"})
    sys.exit(75)
signal.signal(signal.SIGTERM, pause)
out({"event": "progress", "step": 1, "total": 4, "loss": {"d": 0.7}})
while True:
    time.sleep(0.02)
"""


def first_step(event: object) -> bool:
    return getattr(event, "step", None) == 1


def no_models(spec: JobSpec, ctx: JobContext) -> list:
    return []


def fake_estimate(spec: JobSpec, ctx: JobContext) -> dict:
    return {"seconds": 60, "device": "CPU", "steps": 4, "step_ms": 15, "memory_mb": 100}


@pytest.fixture
def workspace(qtbot, tmp_path):
    engine = Engine(tasks={"models.list": no_models, "train.estimate": fake_estimate})
    ws = TrainWorkspace(engine, Settings())
    ws.process.program = (sys.executable, "-c", CHILD)
    qtbot.addWidget(ws)
    ws.data_path.setText(str(tmp_path))
    ws.name.setText("my-slimes")
    yield ws
    ws.shutdown()
    assert engine.shutdown()


def enabled(ws: TrainWorkspace) -> set[str]:
    buttons = {"start": ws.start_button, "pause": ws.pause_button, "resume": ws.resume_button,
               "cancel": ws.cancel_button, "export": ws.export_button, "use": ws.use_button}
    return {name for name, button in buttons.items() if button.isEnabled()}


def test_buttons_follow_the_run_running_paused_finished(qtbot, workspace):
    """Issue 13, bug 3: Resume stayed enabled after a finished run (it ran the evaluation again and hid Export and
    Use); while paused, Cancel was disabled and Start enabled."""
    ws = workspace
    with qtbot.waitSignals([ws.process.event], check_params_cbs=[first_step], timeout=30_000):
        ws.start()
    assert enabled(ws) == {"pause", "cancel"}
    with qtbot.waitSignals([ws.run_ended], check_params_cbs=[lambda state, _m: state == "paused"], timeout=30_000):
        ws.pause()
    assert enabled(ws) == {"resume", "cancel"}
    with qtbot.waitSignals([ws.run_ended], check_params_cbs=[lambda state, _m: state == "finished"],
                           timeout=30_000):
        ws.resume()
    assert enabled(ws) == {"start", "export", "use"}
    assert ws.finished_model == "my-slimes"


def test_cancelling_a_paused_run_closes_it(qtbot, workspace):
    ws = workspace
    with qtbot.waitSignals([ws.process.event], check_params_cbs=[first_step], timeout=30_000):
        ws.start()
    with qtbot.waitSignals([ws.run_ended], check_params_cbs=[lambda state, _m: state == "paused"], timeout=30_000):
        ws.pause()
    with qtbot.waitSignals([ws.status_message], timeout=5000):
        ws.cancel_button.click()
    assert "start" in enabled(ws) and "cancel" not in enabled(ws)


def test_the_status_bar_and_the_log_tell_the_truth_in_plain_words(qtbot, tmp_path):
    """The status bar said "Idle" during training; the log said "run again with --resume" in a GUI."""
    from studio.ui.main_window import MainWindow

    window = MainWindow(tasks={"models.list": no_models, "train.estimate": fake_estimate}, autosave=False)
    qtbot.addWidget(window)
    ws = window.workspace("Train")
    ws.process.program = (sys.executable, "-c", CHILD)
    ws.data_path.setText(str(tmp_path))
    ws.name.setText("my-slimes")
    qtbot.waitUntil(lambda: window.engine.queue_length == 0, timeout=30_000)  # every workspace has its model list
    with qtbot.waitSignals([ws.process.event], check_params_cbs=[first_step], timeout=30_000):
        ws.start()
    assert window.status.activity == "Training my-slimes: step 1 of 4"
    with qtbot.waitSignals([ws.run_ended], check_params_cbs=[lambda state, _m: state == "paused"], timeout=30_000):
        ws.pause()
    assert window.status.activity == "Training my-slimes: paused"
    log = ws.log_view.toPlainText()
    assert "checkpoint saved; press Resume to continue" in log and "--" not in log
    with qtbot.waitSignals([ws.run_ended], check_params_cbs=[lambda state, _m: state == "finished"],
                           timeout=30_000):
        ws.resume()
    qtbot.waitUntil(lambda: window.status.activity == "Idle", timeout=30_000)  # the model lists refresh first
    assert "train_d" not in ws.result.text() and "train_d" in ws.result.toolTip()
    ws.shutdown()
    window.close()


def test_inspection_reports_are_true_and_never_stale(qtbot, tmp_path):
    """A fully opaque 1x1 image was called "fully transparent"; after a failed inspection the previous inspection's
    rejected list stayed. Real data.inspect task."""
    from PIL import Image

    folder = tmp_path / "sprites" / "gems"
    folder.mkdir(parents=True)
    Image.new("RGBA", (1, 1), (200, 30, 30, 255)).save(folder / "dot.png")
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(folder / "empty.png")
    for i in range(3):
        image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
        image.paste((40 * i, 120, 200, 255), (8, 8, 24, 24))
        image.save(folder / f"gem-{i}.png")
    engine = Engine(Settings(device="cpu"))
    ws = TrainWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    ws.data_path.setText(str(tmp_path / "sprites"))
    inspected = [lambda e: e.kind == "data.inspect" and e.type.is_terminal]
    with qtbot.waitSignals([engine.event], check_params_cbs=inspected, timeout=120_000):
        ws.inspect()
    rejected = [ws.rejected.item(i).text() for i in range(ws.rejected.count())]
    assert not any(line.startswith("gems/dot.png") and "transparent" in line for line in rejected), rejected
    assert any(line.startswith("gems/empty.png: 32x32: fully transparent") for line in rejected)
    ws.data_path.setText(str(tmp_path / "no-such-folder"))
    with qtbot.waitSignals([engine.event], check_params_cbs=inspected, timeout=120_000):
        ws.inspect()
    assert ws.rejected.count() == 0  # nothing left over from the inspection before
    assert "no-such-folder" in ws.found.text()
    assert engine.shutdown()
