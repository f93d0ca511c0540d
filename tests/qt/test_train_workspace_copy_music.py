"""Whole tiny COPY (LoRA brand voice) and MUSIC (fine-tune) runs driven from the Train workspace on the user's own
files: inspect, a measured estimate, start, progress, finish, the model registered with its card, "Use", and a
generation job through the engine that really runs the new model."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from studio.core import paths
from studio.core.jobs import EventType, JobSpec
from studio.core.plain_words import metric_name
from studio.core.settings import Settings
from studio.core.training_events import TrainingEvent, TrainingInfo, TrainingProgress
from studio.engine.client import Engine
from studio.ml.checkpoint import sha256_file
from studio.ml.text.lm import load_language_model
from studio.ui.workspaces.train import TrainWorkspace
from tests.ml.music_fixtures import write_midi
from tests.ml.tiny_gguf import tiny_model, write_tiny_gguf

TRAIN_TIMEOUT_MS = 240_000
JOB_TIMEOUT_MS = 120_000
AD_LINES = [
    "Fresh coffee at your door every week", "Roasted this week, brewed by you", "Small farms, big flavour",
    "Pause or cancel any time", "Ground the way you like it", "Wake up to something better",
    "Bold taste, quick delivery", "Join thousands of happy sippers", "Your morning cup, delivered",
    "Beans that keep up with you", "Try your first bag today", "Coffee without the queue",
]


@pytest.fixture
def tiny_base_lm(studio_home: Path) -> str:
    """A tiny random Llama GGUF installed as a language model in this test's own model store."""
    gguf = write_tiny_gguf(paths.user_models_dir() / "lm" / "Tiny-LM.gguf", tiny_model(seed=3, max_seq_len=4096))
    load_language_model(gguf, name="tiny-lm")  # writes the sidecar that lists it in the store
    return "tiny-lm"


@pytest.fixture
def ad_copy_csv(tmp_path: Path) -> Path:
    """The user's ad lines as a CSV export (a header with a "headline" column and an unrelated one)."""
    path = tmp_path / "our-ads.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["campaign", "headline"])
        writer.writerows([["spring", line] for line in AD_LINES])
    return path


@pytest.fixture
def midi_folder(tmp_path: Path) -> Path:
    """Two short tunes (4/4 in C major, 3/4 in A minor) and a file that is not music."""
    folder = tmp_path / "my-tunes"
    folder.mkdir()
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    write_midi(folder / "walk.mid", [(60 + scale[i % 8], i * 0.5, 0.5) for i in range(32)], key="C", meter=(4, 4))
    write_midi(folder / "waltz.mid", [(57 + scale[(3 * i) % 8], float(i), 1.0) for i in range(24)], key="Am",
               meter=(3, 4))
    (folder / "notes.txt").write_text("not a tune")
    return folder


@pytest.fixture
def workspace(qtbot):
    engine = Engine()
    ws = TrainWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    ws.resize(1200, 800)
    yield ws
    ws.shutdown()
    engine.shutdown()


def job_done(ws: TrainWorkspace, kind: str) -> dict:
    return dict(signal=ws.engine.event, timeout=JOB_TIMEOUT_MS,
                check_params_cb=lambda e: e.kind == kind and e.type.is_terminal)


def choose(ws: TrainWorkspace, modality: str) -> None:
    ws.modality.setCurrentIndex(ws.modality.findData(modality))


def inspect_and_estimate(qtbot, ws: TrainWorkspace) -> None:
    """Inspect the data; the workspace then measures the preset (train.estimate) and shows it."""
    with qtbot.waitSignal(**job_done(ws, "train.estimate")) as estimated:
        ws.inspect()
    assert estimated.args[0].type is EventType.FINISHED, estimated.args[0].message


def train_to_the_end(qtbot, ws: TrainWorkspace) -> list[TrainingEvent]:
    events: list[TrainingEvent] = []
    ws.process.event.connect(events.append)
    with qtbot.waitSignal(ws.run_ended, timeout=TRAIN_TIMEOUT_MS) as ended:
        ws.start()
    assert ended.args[0] == "finished", ended.args[1] + "\n" + ws.log_view.toPlainText()
    return events


def generate(qtbot, ws: TrainWorkspace, spec: JobSpec):
    with qtbot.waitSignal(ws.engine.event, timeout=JOB_TIMEOUT_MS,
                          check_params_cb=lambda e: e.job_id == spec.job_id and e.type.is_terminal) as done:
        ws.engine.submit(spec)
    assert done.args[0].type is EventType.FINISHED, done.args[0].message
    return done.args[0].payload


def test_copy_lora_run_from_the_workspace_registers_an_adapter_that_writes_copy(
        qtbot, workspace, tiny_base_lm, ad_copy_csv, save_screenshot) -> None:
    ws = workspace
    choose(ws, "copy")
    qtbot.waitUntil(lambda: ws.base.count() > 0, timeout=JOB_TIMEOUT_MS)
    assert ws.base.currentData() == tiny_base_lm and ws.base.isEnabled()
    ws.data_path.setText(str(ad_copy_csv))
    ws.name.setText("our-voice")
    ws.licence.setText("our own ads")
    ws.preset.setCurrentText("quick")

    inspect_and_estimate(qtbot, ws)
    assert "Found 12 usable" in ws.found.text()
    assert "steps of" in ws.estimate_label.text() and "LoRA rank 4 on tiny-lm" in ws.estimate_label.text()
    assert "--base" in ws.train_args() and tiny_base_lm in ws.train_args()

    events = train_to_the_end(qtbot, ws)
    progress = [e for e in events if isinstance(e, TrainingProgress)]
    assert progress and progress[-1].step == progress[-1].total >= 1
    assert ws.plot.series(metric_name("train"))[0] and ws.plot.series(metric_name("validation"))[0], \
        "loss curves of both kinds are drawn"
    save_screenshot(ws, "train_workspace_copy_finished")

    weights = paths.user_models_dir() / "our-voice.safetensors"
    card = weights.with_suffix(".md").read_text(encoding="utf-8")
    assert weights.exists() and "# our-voice" in card and "our own ads" in card and "`tiny-lm`" in card
    assert not ws.export_button.isEnabled(), "an adapter has no ONNX export of its own"
    with qtbot.waitSignal(ws.use_model) as used:
        ws.use_button.click()
    assert used.args == ["copy", "our-voice"]

    brief = {"product": "Brewly", "features": ["fresh coffee"], "audience": "busy people"}
    payload = generate(qtbot, ws, JobSpec("copy.generate", {"brief": brief, "format": "tagline"}, seed=1,
                                          model="our-voice"))
    assert payload["recipe"]["model"] == "our-voice"
    assert payload["recipe"]["model_sha256"] == sha256_file(weights), "the adapter itself wrote the copy"
    assert payload["ads"] and all(payload["ads"][0].values())


def test_music_fine_tune_from_the_workspace_registers_a_model_that_writes_melodies(
        qtbot, workspace, midi_folder, save_screenshot) -> None:
    ws = workspace
    choose(ws, "music")
    assert not ws.grid.isEnabled()
    qtbot.waitUntil(lambda: ws.base.count() == 2, timeout=JOB_TIMEOUT_MS)
    assert ws.base.currentData() == "music-transformer", "your tunes fine-tune the bundled model by default"
    assert ws.base.itemData(1) == "" and "--init" in ws.train_args()
    ws.data_path.setText(str(midi_folder))
    ws.name.setText("my-tunes")
    ws.preset.setCurrentText("quick")
    ws.max_steps.setValue(3)

    inspect_and_estimate(qtbot, ws)
    assert "Found 2 usable" in ws.found.text()
    assert ws.rejected.count() == 1 and "notes.txt" in ws.rejected.item(0).text()
    assert "(3 steps of" in ws.estimate_label.text() and "fine-tuning music-transformer" in ws.estimate_label.text()

    events = train_to_the_end(qtbot, ws)
    assert any("fine-tuning" in e.message for e in events if isinstance(e, TrainingInfo))
    assert [e.step for e in events if isinstance(e, TrainingProgress)] == [1, 2, 3]
    assert ws.progress.value() == 3 and ws.plot.series(metric_name("validation"))[0]
    save_screenshot(ws, "train_workspace_music_finished")

    weights = paths.user_models_dir() / "my-tunes.safetensors"
    assert weights.exists() and "# my-tunes" in weights.with_suffix(".md").read_text(encoding="utf-8")
    with qtbot.waitSignal(ws.use_model) as used:
        ws.use_button.click()
    assert used.args == ["music", "my-tunes"]

    params = {"style": "chiptune-adventure", "key": "A minor", "meter": "4/4", "bars": 2}
    payload = generate(qtbot, ws, JobSpec("music.generate", params, seed=1, model="my-tunes"))
    recipe = payload["recipe"]
    assert recipe["model"] == "my-tunes" and recipe["melody_source"] == "model my-tunes"
    assert recipe["model_sha256"] == sha256_file(weights)
    assert payload["notes"] and payload["bars"] == 2
