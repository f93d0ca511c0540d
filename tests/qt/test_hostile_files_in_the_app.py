"""The app with hostile files and a full disk (issue 14): a message in the status line, never a traceback, and the
work on screen kept. The workspaces come from their own test modules' fixtures (fake engines, no models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image, PngImagePlugin

from studio.core import safe_write
from studio.core.formats import png_meta
from studio.core.settings import load_settings, save_settings
from studio.ui.settings_dialog import SettingsDialog
from tests.faults import inject_full_disk, leftovers, small_disk  # noqa: F401 (fixture)
from tests.qt.test_music_workspace import generate, messages, wav
from tests.qt.test_music_workspace import workspace as music  # noqa: F401 (fixture)
from tests.qt.test_sprite_workspace import make_workspace, workspace  # noqa: F401 (fixtures)

_ = wav  # a fixture


def png_with_recipe(path: Path, chunk: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text(png_meta.JSON_KEY, chunk)
    Image.new("RGBA", (32, 32), (200, 40, 40, 255)).save(path, pnginfo=info)
    return path


@pytest.mark.parametrize(("chunk", "said"), [
    ("[" * 5000, "nested too deeply"),
    ('{"seed": 5, "params": "category: walls"}', "'params' must be an object"),
    ('{"seed": 5, "params": ["walls", 20]}', "'params' must be an object"),
])
def test_a_png_with_a_hostile_recipe_opens_without_it(tmp_path, workspace, chunk, said) -> None:  # noqa: F811
    workspace.open_path(png_with_recipe(tmp_path / "hostile.png", chunk))
    assert workspace.canvas.image.shape == (32, 32, 4)  # the image itself is fine and opens
    assert "Opened hostile.png" in workspace.status.text()
    assert "recipe was not restored" in workspace.status.text() and said in workspace.status.text()


def test_numbers_out_of_range_are_clamped_and_a_foreign_palette_is_not_followed(tmp_path, workspace) -> None:  # noqa: F811
    workspace.select_model("sprite-diffusion")
    recipe = {"model": "sprite-diffusion", "seed": 99999999999, "params": {
        "category": "walls", "steps": 99999999999, "guidance": 1e300, "palette": "/etc/passwd.hex"}}
    workspace.open_path(png_with_recipe(tmp_path / "big.png", json.dumps(recipe)))
    panel = workspace.panel
    assert (panel.steps.value(), panel.guidance.value()) == (panel.steps.maximum(), panel.guidance.maximum())
    assert panel.seed.value() == panel.seed.maximum()
    assert panel.palette_combo.findData("/etc/passwd.hex") < 0 and panel.palette_combo.currentData() != \
        "/etc/passwd.hex"
    assert "outside Studio's folders" in workspace.status.text()


@pytest.mark.parametrize(("sidecar", "comment"), [('[{"seed": 1}]', None), (None, '{"params": ["bpm", 120]}')])
def test_a_wav_with_a_hostile_recipe_opens_without_it(tmp_path, music, sidecar, comment) -> None:  # noqa: F811
    path = tmp_path / "hostile.wav"
    with sf.SoundFile(str(path), "w", 22050, 1, "PCM_16", format="WAV") as fh:
        if comment:
            fh.comment = comment
        fh.write(np.zeros(22050, np.float32))
    if sidecar:
        path.with_name("hostile.wav.json").write_text(sidecar)
    found = messages(music)
    music.open_path(path)
    assert music.clip is not None and music.clip.recipe == {} and music.path == path
    assert "Opened hostile.wav" in found[-1] and "recipe was not restored" in found[-1]


def test_music_save_and_export_on_a_full_disk_say_so_and_keep_the_old_files(qtbot, tmp_path, music) -> None:  # noqa: F811
    generate(qtbot, music)
    for name in ("clip.wav", "notes.mid"):
        (tmp_path / name).write_bytes(b"the earlier file")
    found = messages(music)
    with pytest.MonkeyPatch.context() as full:
        inject_full_disk(full)
        music.save_to(tmp_path / "clip.wav")
        assert found[-1].startswith("Could not save: disk full")
        music.export_to(tmp_path / "notes.mid")
        assert found[-1].startswith("Could not export: disk full")
    for name in ("clip.wav", "notes.mid"):
        assert (tmp_path / name).read_bytes() == b"the earlier file"
    assert leftovers(tmp_path) == [] and not (tmp_path / "clip.wav.json").exists()


def test_music_save_on_a_real_full_disk(qtbot, small_disk, music) -> None:  # noqa: F811
    generate(qtbot, music)
    small_disk.fill(leave_free=4 << 10)
    found = messages(music)
    music.save_to(small_disk.path / "clip.wav")  # libsndfile would say only "System error."
    assert found[-1].startswith("Could not save: disk full") and "it needs" in found[-1]
    assert leftovers(small_disk.path) == [] and not (small_disk.path / "clip.wav").exists()


def test_the_settings_dialog_on_a_full_disk_says_so_and_stays_open(qtbot, monkeypatch, studio_home) -> None:
    from studio.core.settings import Settings

    settings = Settings(output_dir="/before")
    save_settings(settings)
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.output_dir.setText("/after")
    monkeypatch.setattr(safe_write, "_write_chunk", _enospc)
    dialog.accept()
    assert dialog.isVisible() and not dialog.error.isHidden()
    assert "The settings were not saved: disk full" in dialog.error.text()
    assert settings.output_dir == "/before" and load_settings().output_dir == "/before"
    monkeypatch.undo()
    dialog.accept()
    assert not dialog.isVisible() and load_settings().output_dir == "/after"


def _enospc(fh, chunk) -> None:
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")
