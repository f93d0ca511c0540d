"""Faults for the robustness tests: a full disk injected where bytes reach a file, a real small tmpfs, a read-only
folder, and the shapes of what a failed write must leave behind.

- :func:`inject_full_disk` makes every write through :mod:`studio.core.safe_write` fail with ENOSPC after a few
  bytes (a partial temporary file exists when the error comes), and safetensors' own writer fail the way it does
  on a full disk (``SafetensorError: ... No space left on device (os error 28)``).
- :class:`SmallDisk` (fixture ``small_disk``) mounts a tmpfs of a given size; tests that use it are skipped where
  mounting is not permitted (not root, no CAP_SYS_ADMIN).
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core import safe_write

FULL_TEXT = "Error while serializing: I/O error: No space left on device (os error 28)"


def inject_full_disk(monkeypatch: pytest.MonkeyPatch, after_bytes: int = 16, under: Path | None = None) -> None:
    """From now on (within ``monkeypatch``) every file write fails with ENOSPC after ``after_bytes`` bytes; only
    writes into folder ``under`` when it is given (the disk that holds it is full, the others are not)."""
    real_chunk = safe_write._write_chunk

    def hit(filename: str | os.PathLike) -> bool:
        return under is None or Path(filename).resolve().is_relative_to(Path(under).resolve())

    def full(fh, chunk) -> None:
        if not hit(fh.name):
            return real_chunk(fh, chunk)
        fh.write(bytes(chunk[:after_bytes]))
        fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safe_write, "_write_chunk", full)
    try:
        from safetensors import SafetensorError

        import studio.ml.checkpoint as model_files
        import studio.ml.text.lm as lm
    except ImportError:  # the core-only tests run without torch
        return
    real_save = model_files.save_file

    def save_file(tensors, filename, metadata=None) -> None:
        if not hit(filename):
            return real_save(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(b"\0" * after_bytes)
        raise SafetensorError(FULL_TEXT)

    monkeypatch.setattr(model_files, "save_file", save_file)
    monkeypatch.setattr(lm, "save_file", save_file)


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write may have left in ``folder`` (recursively): must be none after any failure."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*")
                  if safe_write.TEMP_MARK in p.name or safe_write.OLD_MARK in p.name
                  or p.name.endswith((".part", ".tmp")))


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


class SmallDisk:
    """A tmpfs mounted at ``path``; :meth:`fill` leaves only so many bytes free."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._filler = path / "filler.bin"

    def fill(self, leave_free: int) -> None:
        """Fill the disk until at most ``leave_free`` bytes are free (tmpfs counts whole 4 KB pages)."""
        self._filler.unlink(missing_ok=True)
        free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
        self._filler.write_bytes(b"\0" * max(0, free - leave_free))

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def read_only(self) -> None:
        assert _mount("-o", "remount,ro", str(self.path)), "could not remount read-only"

    def writable(self) -> None:
        assert _mount("-o", "remount,rw", str(self.path))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 4 MB tmpfs at tmp_path/disk (skipped where mounting is not permitted)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    size = 4 << 20
    if os.name != "posix" or not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)):
        pytest.skip("mounting a tmpfs is not permitted here (needs root); the injected ENOSPC tests still run")
    try:
        yield SmallDisk(mount_point, size)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)
