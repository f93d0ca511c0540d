"""A full disk at each write site the probe listed (issue 14): a clear message, never a traceback, the previous
file kept and nothing half-written left. Each test runs twice: on a real 4 MB tmpfs filled up (skipped where
mounting is not permitted) and with ENOSPC injected into every write under the output folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.core import paths
from studio.core.errors import DiskWriteError
from studio.ml.model_import import import_file
from studio.ml.store import ModelStore
from tests.faults import inject_full_disk, leftovers, small_disk  # noqa: F401 (fixture)
from tests.ml.sprite_helpers import make_dataset, save_tiny_model
from tests.ml.sprite_samples import blob, save_rgba
from tests.ml.test_model_files import write_probe

pytestmark = pytest.mark.usefixtures("one_thread")


class FullDisk:
    """An output folder and a way to make its disk full (really, or by injection)."""

    def __init__(self, folder: Path, fill: Callable[[int], None], real: bool) -> None:
        self.folder, self._fill, self.real = folder, fill, real

    def fill(self, leave_free: int = 4 << 10) -> None:
        self._fill(leave_free)


@pytest.fixture(params=["tmpfs", "injected"])
def disk(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FullDisk:
    if request.param == "tmpfs":
        small = request.getfixturevalue("small_disk")
        return FullDisk(small.path, small.fill, True)
    folder = tmp_path / "out"
    folder.mkdir()
    return FullDisk(folder, lambda _: inject_full_disk(monkeypatch, under=folder), False)


def said_disk_full(capsys: pytest.CaptureFixture, disk: FullDisk) -> str:
    err = capsys.readouterr().err
    assert "studio: disk full: could not write" in err and "Traceback" not in err, err
    print(err.strip().splitlines()[-1])  # what the user reads (pytest -s)
    if disk.real:
        assert "it needs" in err and "free" in err, err
    return err


def test_generate_music_out_and_midi(disk: FullDisk, capsys) -> None:
    wav, mid = disk.folder / "clip.wav", disk.folder / "clip.mid"
    wav.write_bytes(b"the earlier clip")
    mid.write_bytes(b"the earlier notes")
    disk.fill()
    base = ["generate", "music", "--style", "calm", "--bars", "2", "--seed", "3", "--model", "rules", "--quiet"]
    assert main([*base, "--out", str(wav), "--midi", str(mid)]) == 1
    said_disk_full(capsys, disk)
    if not disk.real:  # a MIDI file is small enough for the last 4 KB of a real disk
        assert main([*base, "--midi", str(mid)]) == 1
        said_disk_full(capsys, disk)
    assert wav.read_bytes() == b"the earlier clip" and mid.read_bytes() == b"the earlier notes"
    assert leftovers(disk.folder) == [] and not (disk.folder / "clip.wav.json").exists()


def test_generate_copy_out(disk: FullDisk, capsys, monkeypatch, tmp_path: Path) -> None:
    from studio.cli import console

    ad = {"headline": [f"Fresh beans {i}" for i in range(15)], "description": ["Roasted the same day."] * 4,
          "path": ["coffee", "beans"]}
    monkeypatch.setattr(console, "run_in_console", lambda *a, **k: {"ads": [ad] * 3, "recipe": {"seed": 1}})
    brief = tmp_path / "brief.json"
    brief.write_text(json.dumps({"product": "Brewly"}))
    out = disk.folder / "ads.csv"
    out.write_bytes(b"the earlier ads")
    disk.fill(leave_free=0)
    assert main(["generate", "copy", "--brief", str(brief), "--format", "google-rsa", "--out", str(out)]) == 1
    said_disk_full(capsys, disk)
    assert out.read_bytes() == b"the earlier ads" and leftovers(disk.folder) == []


def test_train_sprite_out(disk: FullDisk, capsys, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "sprites", train=12, val=4)
    run = disk.folder / "run"
    disk.fill(leave_free=64 << 10)  # room for the run record, not for the first checkpoint
    code = main(["train", "sprite", "--model", "gan", "--data", str(data), "--preset", "quick", "--max-steps", "2",
                 "--batch-size", "4", "--checkpoint-every", "1", "--out", str(run), "--scratch"])
    assert code == 1
    said_disk_full(capsys, disk)
    assert leftovers(disk.folder) == []
    assert not list(paths.user_models_dir().glob("*.safetensors"))


def test_data_sprites_out(disk: FullDisk, capsys, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    sheet = np.concatenate([np.concatenate([blob(rng, 32, 32) for _ in range(8)], axis=1) for _ in range(8)])
    source = save_rgba(tmp_path / "heroes.png", sheet)
    disk.fill()
    assert main(["data", "sprites", "--from-sheet", str(source), "--grid", "32", "--out",
                 str(disk.folder / "set")]) == 1
    said_disk_full(capsys, disk)
    assert not (disk.folder / "set").exists() and leftovers(disk.folder) == []


def test_export_onnx_out(disk: FullDisk, capsys) -> None:
    save_tiny_model("gan", paths.user_models_dir(), "tiny-gan")
    disk.fill()
    assert main(["export", "onnx", "tiny-gan", "--out", str(disk.folder)]) == 1
    said_disk_full(capsys, disk)
    assert not (disk.folder / "tiny-gan").exists() and leftovers(disk.folder) == []


def test_model_import_into_a_full_folder_leaves_nothing_and_works_again(disk: FullDisk, tmp_path: Path,
                                                                       monkeypatch) -> None:
    store = ModelStore(bundled=tmp_path / "none", user=disk.folder, shared=tmp_path / "none")
    source = write_probe(tmp_path / "downloads" / "mine.safetensors")
    with monkeypatch.context() as full:
        if disk.real:
            disk.fill(leave_free=0)
        else:
            inject_full_disk(full, under=disk.folder)
        with pytest.raises(DiskWriteError, match="disk full: could not write the model mine"):
            import_file(source, "mine", store)
        assert sorted(p.name for p in disk.folder.iterdir() if p.name != "filler.bin") == []
    if disk.real:
        (disk.folder / "filler.bin").unlink()
    assert import_file(source, "mine", store) == "mine"  # not "already exists"
    assert store.find("mine").source == "user"


def test_an_import_an_earlier_version_left_half_done_can_be_repeated(tmp_path: Path) -> None:
    """Older versions could leave weights without their sidecar; such an orphan no longer blocks the import."""
    store = ModelStore(bundled=tmp_path / "none", user=tmp_path / "user", shared=tmp_path / "none")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "mine.safetensors").write_bytes(b"\0" * 100)  # a partial copy, no sidecar
    assert import_file(write_probe(tmp_path / "dl" / "mine.safetensors"), "mine", store) == "mine"
