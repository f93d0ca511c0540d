"""A whole tiny training run driven from the Train workspace: inspect, start, pause, resume, finish, use; cancel;
and a crashing child process that leaves the app running and the run resumable."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core import paths
from studio.core.jobs import EventType, JobSpec
from studio.core.plain_words import metric_name
from studio.core.settings import Settings
from studio.core.training_events import TrainingProgress
from studio.engine.client import Engine
from studio.ui.workspaces.train import TrainWorkspace

TRAIN_TIMEOUT_MS = 240_000


@pytest.fixture
def sprite_folder(tmp_path: Path) -> Path:
    """Eight small sprites in two categories (sub-folders), plus one file that must be rejected."""
    rng = np.random.default_rng(0)
    for category in ("slimes", "gems"):
        folder = tmp_path / "my-sprites" / category
        folder.mkdir(parents=True)
        for i in range(4):
            rgba = np.zeros((32, 32, 4), np.uint8)
            size = int(rng.integers(8, 20))
            rgba[16 - size // 2 : 16 + size // 2, 16 - size // 2 : 16 + size // 2] = (*rng.integers(0, 255, 3), 255)
            Image.fromarray(rgba).save(folder / f"{category}-{i}.png")
    (tmp_path / "my-sprites" / "readme.txt").write_text("not a sprite")
    return tmp_path / "my-sprites"


@pytest.fixture
def workspace(qtbot, sprite_folder):
    engine = Engine()
    ws = TrainWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    ws.resize(1200, 800)
    ws.data_path.setText(str(sprite_folder))
    ws.name.setText("my-slimes")
    ws.max_steps.setValue(6)
    yield ws
    ws.shutdown()
    engine.shutdown()


def progressed(ws, at_least: int):
    return dict(signal=ws.process.event, timeout=TRAIN_TIMEOUT_MS,
                check_params_cb=lambda e: isinstance(e, TrainingProgress) and e.step >= at_least)


def ended(ws, state: str):
    return dict(signal=ws.run_ended, timeout=TRAIN_TIMEOUT_MS, check_params_cb=lambda s, _m: s == state)


def test_inspect_reports_usable_and_rejected(qtbot, workspace):
    with qtbot.waitSignal(workspace.engine.event, timeout=60_000,
                          check_params_cb=lambda e: e.kind == "data.inspect" and e.type.is_terminal):
        workspace.inspect()
    assert "Found 8 usable" in workspace.found.text()
    assert workspace.rejected.count() == 1 and "readme.txt" in workspace.rejected.item(0).text()


def test_sprites_fine_tune_the_bundled_model_of_the_family_unless_told_otherwise(qtbot, workspace):
    ws = workspace
    qtbot.waitUntil(lambda: ws.base.count() == 2, timeout=60_000)
    assert [ws.base.itemData(i) for i in range(2)] == ["sprite-gan", ""]
    args = ws.train_args()
    assert args[args.index("--init") + 1] == "sprite-gan"
    # The child trains with the app's thread policy (a core stays free for the UI and the worker).
    assert args[args.index("--threads") + 1] == str(ws.settings.model_threads)
    ws.family.setCurrentIndex(ws.family.findData("diffusion"))
    qtbot.waitUntil(lambda: ws.base.currentData() == "sprite-diffusion", timeout=60_000)
    qtbot.waitUntil(lambda: "fine-tuning sprite-diffusion" in ws.estimate_label.text(), timeout=60_000)
    ws.base.setCurrentIndex(ws.base.findData(""))
    assert "--scratch" in ws.train_args() and "--init" not in ws.train_args()
    qtbot.waitUntil(lambda: "a new diffusion" in ws.estimate_label.text(), timeout=60_000)


def test_pause_resume_finish_and_use_the_model(qtbot, workspace, save_screenshot):
    with qtbot.waitSignal(**progressed(workspace, 2)):
        workspace.start()
    with qtbot.waitSignal(**ended(workspace, "paused")):
        workspace.pause()
    run_dir = paths.data_dir() / "runs" / "my-slimes"
    assert list((run_dir / "checkpoints").glob("*.safetensors")), "pausing must leave a checkpoint"
    paused_at = int(workspace.progress.value())
    assert 2 <= paused_at < 6

    first_resumed = []
    workspace.process.event.connect(lambda e: first_resumed.append(e.step) if getattr(e, "step", 0) else None)
    with qtbot.waitSignal(**ended(workspace, "finished")):
        workspace.resume()
    assert first_resumed[0] == paused_at + 1, "resume continues after the checkpoint, not from scratch"
    steps, values = workspace.plot.series(metric_name("d"))
    assert steps[-1] == 6 and all(np.isfinite(values))
    save_screenshot(workspace, "train_workspace_finished")

    weights = paths.user_models_dir() / "my-slimes.safetensors"
    card = weights.with_suffix(".md")
    assert weights.exists() and card.exists()
    assert "my-slimes" in card.read_text() and "gems" in card.read_text()
    assert "fine-tuned from `sprite-gan`" in card.read_text(), "your sprites start from the bundled GAN"
    assert "<!-- studio-eval:sprite -->" in card.read_text(), "the finished model is evaluated into its card"
    assert "Against your sprites: difference" in workspace.result.text()
    assert "FID" in workspace.result.toolTip()
    assert workspace.use_button.isEnabled()
    with qtbot.waitSignal(workspace.use_model) as used:
        workspace.use_button.click()
    assert used.args == ["sprite", "my-slimes"]

    spec = JobSpec("sprite.generate", {"category": "gems", "count": 2, "palette": "none"}, seed=3, model="my-slimes")
    with qtbot.waitSignal(workspace.engine.event, timeout=60_000,
                          check_params_cb=lambda e: e.job_id == spec.job_id and e.type.is_terminal) as done:
        workspace.engine.submit(spec)
    assert done.args[0].type is EventType.FINISHED, done.args[0].message
    assert [s["rgba"].shape for s in done.args[0].payload] == [(32, 32, 4)] * 2


def test_cancel_stops_the_child_quickly(qtbot, workspace, save_screenshot):
    workspace.max_steps.setValue(100_000)
    with qtbot.waitSignal(**progressed(workspace, 4)):
        workspace.start()
    assert workspace.pause_button.isEnabled() and not workspace.start_button.isEnabled()
    save_screenshot(workspace, "train_workspace_mid_run")
    requested = time.perf_counter()
    with qtbot.waitSignal(**ended(workspace, "cancelled")):
        workspace.cancel()
    latency = time.perf_counter() - requested
    print(f"training cancel latency: {latency * 1000:.0f} ms")
    assert not workspace.process.running
    assert workspace.start_button.isEnabled()


def test_crashing_child_leaves_the_app_running_and_the_run_resumable(qtbot, workspace):
    with qtbot.waitSignal(**progressed(workspace, 2)):
        workspace.start()
    with qtbot.waitSignal(**ended(workspace, "failed")) as blocker:
        os.kill(workspace.process.pid, signal.SIGSEGV)  # what a native crash looks like from outside
    assert "crashed" in blocker.args[1]
    assert workspace.resume_button.isEnabled()
    with qtbot.waitSignal(**ended(workspace, "finished")):
        workspace.resume()
    assert (paths.user_models_dir() / "my-slimes.safetensors").exists()
