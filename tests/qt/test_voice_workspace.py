"""The Voice workspace: voices with their licence (and the warning for uncertain commercial use), what is said when
no voice is installed, a line sent from the copy editor spoken with a timing per line, export with the recipe, and a
spot rendered, exported and reopened from its project file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from studio.core.context import JobContext
from studio.core.formats.audio import read_audio, read_audio_recipe
from studio.core.jobs import JobSpec
from studio.core.settings import Settings
from studio.core.voice import VoiceRequest
from studio.engine.client import Engine
from studio.ml.tasks import spot as spot_task
from studio.ml.voice.speak import speak
from studio.ui.app import apply_theme
from studio.ui.widgets.player import warm_up as warm_up_audio
from studio.ui.workspaces.voice import VoiceWorkspace
from tests.ml.voice_fixtures import ToneVoice

VOICES = [
    {"name": "piper-joe", "modality": "voice", "speaker": "joe (male, US English)", "commercial_use": "uncertain",
     "licence": "MIT (packaging), CC0 (data)", "licence_note": "Commercial use uncertain: fine-tuned from lessac."},
    {"name": "flite-slt", "modality": "voice", "speaker": "slt (female)", "commercial_use": "yes",
     "licence": "CMU Flite licence"},
]


def fake_speak(spec: JobSpec, ctx: JobContext):
    return speak(ToneVoice(), VoiceRequest.from_spec(spec), ctx.progress, ctx.check_cancel)


def fake_spot(spec: JobSpec, ctx: JobContext):
    spot_task.load_voice = lambda ctx, name: ToneVoice()  # the engine runs this in its own thread
    return spot_task.render_spot(spec, ctx)


def make_workspace(qtbot, models: list[dict]) -> VoiceWorkspace:
    warm_up_audio()
    engine = Engine(tasks={"models.list": lambda spec, ctx: models, "voice.speak": fake_speak,
                           "spot.render": fake_spot})
    ws = VoiceWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    apply_theme(ws)
    ws.resize(1200, 760)
    ws.show()
    qtbot.waitExposed(ws)
    if models:
        qtbot.waitUntil(lambda: ws.voice_combo.count() == len(models), timeout=10_000)
    else:
        qtbot.waitUntil(lambda: ws.missing.isVisibleTo(ws), timeout=10_000)
    return ws


@pytest.fixture
def workspace(qtbot):
    original = spot_task.load_voice
    ws = make_workspace(qtbot, VOICES)
    yield ws
    spot_task.load_voice = original
    ws.player.stop()
    assert ws.engine.shutdown()


def test_voices_show_their_licence_and_the_uncertain_one_warns(workspace) -> None:
    label = workspace.voice_combo.itemText(0)
    assert label.startswith("⚠ piper-joe") and label.endswith("commercial use uncertain")
    assert workspace.voice_combo.itemText(1) == "flite-slt (slt (female))"
    assert "Commercial use uncertain" in workspace.licence.text() and "⚠" in workspace.licence.text()
    workspace.voice_combo.setCurrentIndex(1)
    assert workspace.licence.text() == "Licence: CMU Flite licence."


def test_no_voice_installed_is_said_plainly(qtbot) -> None:
    ws = make_workspace(qtbot, [])
    assert ws.missing.isVisibleTo(ws) and "run set-up" in ws.missing.text()
    assert not ws.speak_button.isEnabled() and not ws.spot_button.isEnabled()
    assert ws.engine.shutdown()


def test_a_line_from_the_copy_editor_is_spoken_and_timed(qtbot, workspace, tmp_path: Path,
                                                         save_screenshot) -> None:
    workspace.receive_text("Fresh coffee every week.\nTry Brewly today!")
    with qtbot.waitSignal(workspace.status_message, timeout=20_000,
                          check_params_cb=lambda text: "line(s)" in text):
        workspace.generate()
    speech = workspace.speech
    assert speech is not None and workspace.waveform.has_audio
    assert workspace.lines.count() == 2 and workspace.lines.item(1).text().endswith("line 2: Try Brewly today!")
    assert [t.number for t in workspace.timeline.timings] == [1, 2]
    workspace._select_line(1)
    assert workspace.waveform.selection() == pytest.approx((speech.lines[1].start, speech.lines[1].end))
    save_screenshot(workspace, "voice_workspace_spoken")
    for suffix in (".wav", ".flac", ".ogg"):
        written = workspace.export_audio(tmp_path / f"voice{suffix}")
        audio, rate = read_audio(written)
        assert rate == speech.rate and abs(len(audio) - len(speech.audio)) < rate * 0.05
        assert read_audio_recipe(written)["params"]["text"] == "Fresh coffee every week.\nTry Brewly today!"


def test_a_spot_is_rendered_exported_and_reopened(qtbot, workspace, tmp_path: Path, save_screenshot) -> None:
    workspace.receive_text("Fresh coffee every week.\nTry Brewly today!")
    workspace.length.setCurrentIndex(workspace.length.findData(15))
    workspace.loudness.setCurrentIndex(workspace.loudness.findData("broadcast"))
    monkey_rules(workspace)
    with qtbot.waitSignal(workspace.status_message, timeout=60_000,
                          check_params_cb=lambda text: "spot rendered" in text):
        workspace.render_spot()
    assert workspace.spot is not None, workspace.summary.text()
    assert workspace.spot.duration == pytest.approx(15.0)
    assert abs(workspace.spot.recipe["lufs"] + 23.0) <= 0.5 and "LUFS" in workspace.summary.text()
    save_screenshot(workspace, "voice_workspace_spot")
    written = workspace.export_spot_to(tmp_path / "brewly.wav")
    assert {p.name for p in written} == {"brewly.wav", "brewly.wav.json", "brewly.spot", "brewly.txt"}
    workspace.close_document()
    assert not workspace.waveform.has_audio and workspace.script.toPlainText() == ""
    workspace.open_path(tmp_path / "brewly.spot")
    assert workspace.script.toPlainText() == "Fresh coffee every week.\nTry Brewly today!"
    assert workspace.length.currentData() == 15 and workspace.loudness.currentData() == "broadcast"
    assert workspace.waveform.has_audio and workspace.lines.count() == 2
    assert np.isclose(workspace.spot.duration, 15.0, atol=0.01)


def monkey_rules(workspace: VoiceWorkspace) -> None:
    """The spot's melody from the rules (no music model in the test's model folder)."""
    original = workspace.spot_request_now

    def with_rules():
        from dataclasses import replace

        return replace(original(), music_model="rules")

    workspace.spot_request_now = with_rules


@pytest.mark.parametrize(("script", "message"), [
    ("Launch day 🚀 is here", r"cannot say 1 character.*line 1, column 12"),
    ("  \n ", "the script is empty"),
])
def test_a_script_the_voice_cannot_speak_is_named_and_nothing_is_lost(qtbot, workspace, script: str,
                                                                       message: str) -> None:
    workspace.receive_text("Fresh coffee every week.")
    with qtbot.waitSignal(workspace.status_message, timeout=20_000,
                          check_params_cb=lambda text: "line(s)" in text):
        workspace.generate()
    spoken = workspace.speech
    workspace.script.setPlainText(script)
    with qtbot.waitSignal(workspace.status_message, timeout=20_000,
                          check_params_cb=lambda text: text.startswith("Voice: ")) as said:
        workspace.generate()
    assert re.search(message, said.args[0]), said.args[0]
    assert workspace.script.toPlainText() == script  # the script as typed, to correct it
    assert workspace.speech is spoken and workspace.waveform.has_audio  # the last voice-over stays
    assert workspace.speak_button.isEnabled() and workspace.active_job is None
