"""The one crash-safe writer: temp file beside the target, fsync, rename, fsync of the folder; failures keep the old
file, leave nothing half-written and say how much space was needed; start-up removes what killed writers left."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core import safe_write
from studio.core.errors import DiskWriteError
from studio.core.safe_write import (
    as_write_error,
    remove_stale_temps,
    staged_file,
    staged_folder,
    temp_path,
    write_atomic,
    write_group,
)
from tests.faults import inject_full_disk, leftovers, small_disk  # noqa: F401 (fixture)


def test_write_syncs_the_file_and_its_folder_before_returning(tmp_path: Path, monkeypatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append("folder" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real(fd)

    monkeypatch.setattr(safe_write.os, "fsync", fsync)
    write_atomic(tmp_path / "a.txt", "hello", "a note")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert synced == ["file", "folder"]  # data first, then the rename


def test_replacing_keeps_the_old_files_permissions(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_text("{}")
    path.chmod(0o600)
    write_atomic(path, "{\"a\": 1}", "the settings")
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_full_disk_keeps_the_old_file_and_leaves_no_partial_one(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(b"old")
    inject_full_disk(monkeypatch)
    with pytest.raises(DiskWriteError, match=r"^disk full: could not write the clip to .* it needs 4.0 KB"):
        write_atomic(path, b"x" * 4096, "the clip")
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_group_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    first, second = tmp_path / "sheet.png", tmp_path / "sheet.json"
    first.write_bytes(b"old png")
    calls = {"n": 0}
    real = safe_write._write_chunk

    def second_file_fails(fh, chunk) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fh, chunk)

    monkeypatch.setattr(safe_write, "_write_chunk", second_file_fails)
    with pytest.raises(DiskWriteError):
        write_group([(first, b"new png"), (second, "{}")], "the sheet")
    assert first.read_bytes() == b"old png" and not second.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("error", "expected"), [
    (OSError(errno.ENOSPC, "No space left on device"), "disk full"),
    (OSError(errno.EROFS, "Read-only file system"), "choose a folder you may write to"),
    (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), "disk full"),
    (RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Permission denied"), "choose a folder you may write to"),
])
def test_library_errors_of_failed_writes_become_disk_write_errors(tmp_path: Path, error, expected) -> None:
    mapped = as_write_error(error, "the model", tmp_path / "m.safetensors", 1 << 20)
    assert isinstance(mapped, DiskWriteError) and expected in str(mapped)


def test_a_silent_library_error_is_a_full_disk_only_when_space_ran_out(tmp_path: Path, monkeypatch) -> None:
    """libsndfile says only "System error."; it is a full disk when there was less space than the write needed."""
    silent = RuntimeError("System error.")
    assert as_write_error(silent, "the clip", tmp_path / "a.wav", 1 << 20) is None
    monkeypatch.setattr(safe_write, "free_bytes", lambda folder: 100)
    mapped = as_write_error(silent, "the clip", tmp_path / "a.wav", 1 << 20)
    assert mapped is not None and "it needs 1.0 MB, 100 bytes free" in str(mapped)
    assert as_write_error(ValueError("a bug"), "the clip", tmp_path / "a.wav", 10) is None  # bugs propagate


def test_a_staged_file_is_renamed_only_after_the_library_finished(tmp_path: Path) -> None:
    path = tmp_path / "graph.onnx"
    path.write_bytes(b"old graph")
    with pytest.raises(RuntimeError), staged_file(path, "the graph", suffix=".onnx") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the exporter crashed")
    assert path.read_bytes() == b"old graph" and leftovers(tmp_path) == []
    with staged_file(path, "the graph", suffix=".onnx") as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".onnx"
        tmp.write_bytes(b"new graph")
    assert path.read_bytes() == b"new graph" and leftovers(tmp_path) == []


def test_a_staged_folder_replaces_the_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "export"
    target.mkdir()
    (target / "generator.onnx").write_bytes(b"old")
    with pytest.raises(DiskWriteError), staged_folder(target, "the export") as staging:
        (staging / "generator.onnx").write_bytes(b"ne")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert (target / "generator.onnx").read_bytes() == b"old" and leftovers(tmp_path) == []
    with staged_folder(target, "the export") as staging:
        (staging / "generator.onnx").write_bytes(b"new")
        (staging / "export.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["export.json", "generator.onnx"]
    assert (target / "generator.onnx").read_bytes() == b"new" and leftovers(tmp_path) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_start_up_removes_what_killed_writers_left_and_nothing_else(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    own, theirs = tmp_path / "data", tmp_path / "outputs"
    (own / "models").mkdir(parents=True)
    theirs.mkdir()
    stale = own / "models" / f".m.safetensors.{dead}-0123abcd.studio-part"
    running = own / "models" / f".n.safetensors.{alive}-0123abcd.studio-part"
    legacy = own / "models" / "m.json.tmp"
    legacy_audio = own / "cache" / "clip.part.wav"
    model_named_part = own / "models" / "my.part.safetensors"  # a model named "my.part": not a temporary file
    users_own = theirs / "notes.tmp"  # a file of the user's in the output folder: never touched
    stale_out = theirs / f".clip.wav.{dead}-89abcdef.studio-part"
    (own / "cache").mkdir()
    for path in (stale, running, legacy, legacy_audio, model_named_part, users_own, stale_out):
        path.write_bytes(b"x")
    removed = remove_stale_temps([own], legacy=True) + remove_stale_temps([theirs])
    assert sorted(removed) == sorted([stale, legacy, legacy_audio, stale_out])
    assert running.exists() and users_own.exists() and model_named_part.exists()


def test_start_up_puts_back_a_folder_moved_aside_by_an_interrupted_swap(tmp_path: Path) -> None:
    moved = tmp_path / f".fp32.{_dead_pid()}-0123abcd.studio-old"
    moved.mkdir()
    (moved / "generator.onnx").write_bytes(b"graph")
    assert remove_stale_temps([tmp_path]) == [tmp_path / "fp32"]
    assert (tmp_path / "fp32" / "generator.onnx").read_bytes() == b"graph"


def test_temporary_names_are_hidden_and_recognisable(tmp_path: Path) -> None:
    tmp = temp_path(tmp_path / "a.safetensors")
    assert tmp.name.startswith(".a.safetensors.") and tmp.name.endswith(".studio-part")
    assert not tmp.name.endswith(".safetensors")  # never listed as a model by a *.safetensors glob


def test_real_full_disk_and_read_only_folder(small_disk) -> None:  # noqa: F811
    path = small_disk.path / "ads.csv"
    write_atomic(path, b"old ads", "the ads")
    small_disk.fill(leave_free=8 << 10)
    with pytest.raises(DiskWriteError, match=r"disk full: .*it needs 1.0 MB, \d+.\d KB free"):
        write_atomic(path, b"x" * (1 << 20), "the ads")
    assert path.read_bytes() == b"old ads" and leftovers(small_disk.path) == []
    small_disk.free()
    small_disk.read_only()
    try:
        with pytest.raises(DiskWriteError, match=r"Read-only file system.*choose a folder you may write to"):
            write_atomic(path, b"new ads", "the ads")
    finally:
        small_disk.writable()
    assert path.read_bytes() == b"old ads"
