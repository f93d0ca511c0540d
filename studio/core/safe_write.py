"""Every file Studio writes goes through here, so that a kill, a power cut or a full disk never costs a saved file.

A write puts its bytes into a temporary file in the target's own folder (``.NAME.PID-TOKEN.studio-part``), fsyncs
it, renames it over the target and fsyncs the folder: a reader sees the old file or the new one, never a mix or a
stub, and a power cut after the call returns keeps the new one. A failure removes the temporary file and raises
:class:`DiskWriteError` saying what happened, how much space the write needed and what to do; the previous file is
left exactly as it was.

- :func:`write_atomic` / :func:`write_group`: bytes, text, or a function that streams into a file object.
- :func:`staged_file`: a temporary path for a library that writes files itself (safetensors, onnxruntime); its own
  error types on a full disk (``SafetensorError``, onnxruntime's ``Fail``, ``LibsndfileError``) become
  DiskWriteError too.
- :func:`staged_folder`: a folder that is one unit (a data set, an ONNX export) is built beside its target and
  swapped in at once.
- :func:`remove_stale_temps`: what killed processes left behind, removed at start-up (see
  :mod:`studio.core.housekeeping`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from studio.core.errors import DiskWriteError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)
TEMP_MARK = ".studio-part"
OLD_MARK = ".studio-old"
CHUNK = 8 << 20

Content = bytes | bytearray | memoryview | str | Callable[[BinaryIO], None]

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}(?P<kind>\.studio-part|\.studio-old)(\.\w+)?$")
_SCRATCH = re.compile(r"tmp[a-z0-9_]{8}")  # tempfile.mkdtemp's names
# exactly the temporary names earlier versions used ("a.png.part", "m.json.tmp", "clip.part.wav", "train.tmp.npz"),
# so that no file a person named is ever matched (a model "my.part" is "my.part.safetensors")
_LEGACY_TEMP = re.compile(r"^[^.].*\.(?:part|tmp|part\.(?:wav|flac|ogg|mid|midi)|tmp\.npz)$")
_ERRNO_IN_TEXT = re.compile(r"(?:\bcode|\berrno|\bos error)\W{0,3}(\d{1,3})\b")  # safetensors: "(os error 28)"
_ERRNO_WORDS = (("no space left", errno.ENOSPC), ("disk quota", errno.EDQUOT), ("file too large", errno.EFBIG),
                ("read-only file system", errno.EROFS), ("permission denied", errno.EACCES))


# --- messages -----------------------------------------------------------------------------------------------------


def _size(count: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def free_bytes(folder: Path) -> int | None:
    """Free space where ``folder`` is (or would be created), None when it cannot be known."""
    folder = Path(folder)
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _errno_of(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    text = str(exc).lower()
    match = _ERRNO_IN_TEXT.search(text)
    if match and int(match.group(1)) in (*FULL, *REFUSED):
        return int(match.group(1))
    return next((code for words, code in _ERRNO_WORDS if words in text), None)


def shown_folder(folder: Path) -> Path:
    """The folder a person chose, for messages: a staging folder is named as the folder it becomes, and the
    scratch folders made inside it (tempfile's ``tmpXXXXXXXX``) are left out."""
    parts: list[str] = []
    staged = False
    for part in Path(folder).parts:
        match = _TEMP_NAME.match(part)
        if staged and _SCRATCH.fullmatch(part):
            break
        staged = staged or match is not None
        parts.append(match["name"] if match else part)
    return Path(*parts)


def describe_write_error(what: str, path: Path, exc: BaseException, needed: int | None = None,
                         retry: str = "try again") -> str:
    """A sentence for a failed write of ``what`` (e.g. "the checkpoint step-00000004") to ``path``."""
    path = shown_folder(Path(path).parent) / Path(path).name
    code = _errno_of(exc)
    reason = os.strerror(code) if code else (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
    if code in FULL:
        free = free_bytes(path.parent)
        space = f"; it needs {_size(needed)}" if needed else ""
        space += f", {_size(free)} free" if free is not None else ""
        return (f"disk full: could not write {what} to {path.parent} ({reason}{space}). Free some space and {retry}; "
                "any earlier version is intact and nothing half-written was left")
    if code in REFUSED:
        return f"could not write {what} to {path.parent} ({reason}): choose a folder you may write to and {retry}"
    return f"could not write {what} to {path.parent} ({reason}); any earlier version is intact, {retry} when fixed"


def as_write_error(exc: BaseException, what: str, path: Path, needed: int | None = None,
                   retry: str = "try again") -> DiskWriteError | None:
    """``exc`` as a DiskWriteError when it is a failed write: any OSError, or a library's own error type that names
    an errno, or one raised while the folder has less free space than the write needed (libsndfile says only
    "System error."). None for everything else (a bug, bad data), which must propagate as it is."""
    if isinstance(exc, DiskWriteError):
        return exc
    if not isinstance(exc, OSError) and _errno_of(exc) is None:
        free = free_bytes(Path(path).parent)
        if not (needed and free is not None and free < needed):
            return None
        exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return DiskWriteError(describe_write_error(what, path, exc, needed, retry))


@contextmanager
def guarded_write(what: str, path: Path, *temporaries: Path, needed: int | None = None,
                  retry: str = "try again") -> Iterator[None]:
    """Run the writes of ``what``; on a failed write remove ``temporaries`` and raise :class:`DiskWriteError`."""
    try:
        yield
    except BaseException as exc:
        for temporary in temporaries:
            _remove(Path(temporary))
        error = as_write_error(exc, what, path, needed, retry) if isinstance(exc, Exception) else None
        if error is None or error is exc:
            raise
        raise error from exc


# --- files --------------------------------------------------------------------------------------------------------


def temp_path(path: Path, suffix: str = "", mark: str = TEMP_MARK) -> Path:
    """A fresh temporary name beside ``path``, recognisable by :func:`remove_stale_temps` (``suffix``: for libraries
    that choose a format by extension)."""
    path = Path(path)
    return path.with_name(f".{path.name[:150]}.{os.getpid()}-{secrets.token_hex(4)}{mark}{suffix}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; elsewhere the rename is as durable as the OS makes it)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot sync a folder; the data itself was synced
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _write_chunk(fh: BinaryIO, chunk: memoryview) -> None:
    """The one place bytes reach a file (tests inject a full disk here)."""
    fh.write(chunk)


class _Sink:
    """The file object handed to streaming writers: every write goes through :func:`_write_chunk`."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), CHUNK):
            _write_chunk(self._fh, view[start : start + CHUNK])
        return len(view)

    def flush(self) -> None:
        self._fh.flush()


def _as_bytes(content: Content) -> bytes | bytearray | memoryview | None:
    if isinstance(content, str):
        return content.encode("utf-8")
    return content if isinstance(content, bytes | bytearray | memoryview) else None


def _fill(tmp: Path, content: Content, keep_mode_of: Path) -> None:
    with open(tmp, "xb") as fh:  # "x": never follows a link planted under the temporary name
        data = _as_bytes(content)
        if data is None:
            content(_Sink(fh))  # type: ignore[operator]
        else:
            _Sink(fh).write(data)
        fh.flush()
        os.fsync(fh.fileno())
    with suppress(OSError):
        os.chmod(tmp, stat.S_IMODE(os.stat(keep_mode_of).st_mode))


def _remove(path: Path) -> None:
    with suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_group(items: Sequence[tuple[Path, Content]], what: str, retry: str = "try again") -> list[Path]:
    """Write several files that belong together: every temporary file is complete and synced before the first
    rename, and the renames go in the order given (put the file that makes the set visible last)."""
    staged: list[tuple[Path, Path]] = []
    known = [_as_bytes(content) for _, content in items]
    needed = sum(len(b) for b in known if b is not None) or None
    target = Path(items[0][0]) if items else Path(".")
    try:
        for path, content in items:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.append((temp_path(target), target))
            _fill(staged[-1][0], content, target)
        for tmp, path in staged:
            os.replace(tmp, path)
        for folder in dict.fromkeys(path.parent for _, path in staged):
            fsync_dir(folder)
    except BaseException as exc:
        for tmp, _ in staged:
            _remove(tmp)
        error = as_write_error(exc, what, target, needed, retry) if isinstance(exc, Exception) else None
        if error is None or error is exc:
            raise
        raise error from exc
    return [path for _, path in staged]


def write_atomic(path: Path, content: Content, what: str, retry: str = "try again") -> Path:
    """Write ``content`` (bytes, text as UTF-8, or ``fn(file)``) to ``path`` crash-safely; see the module doc."""
    return write_group([(Path(path), content)], what, retry)[0]


def copy_of(source: Path) -> Callable[[BinaryIO], None]:
    """Content for :func:`write_atomic` that streams the file ``source`` (a copy that is crash-safe too)."""

    def copy(out: BinaryIO) -> None:
        with open(source, "rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)

    return copy


@contextmanager
def staged_file(path: Path, what: str, suffix: str = "", needed: int | None = None,
                retry: str = "try again") -> Iterator[Path]:
    """A temporary path for a library to write ``path`` into; on success it is synced and renamed into place."""
    path = Path(path)
    tmp = temp_path(path, suffix)
    with guarded_write(what, path, tmp, needed=needed, retry=retry):
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)


# --- folders ------------------------------------------------------------------------------------------------------


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
    elif _exchange(staging, target):  # staging now holds the previous folder
        _remove(staging)
    else:  # two renames; a kill between them is undone at start-up (remove_stale_temps puts the old one back)
        old = temp_path(target, mark=OLD_MARK)
        os.replace(target, old)
        os.replace(staging, target)
        _remove(old)
    fsync_dir(target.parent)


@contextmanager
def staged_folder(target: Path, what: str, retry: str = "try again") -> Iterator[Path]:
    """Build a folder that is one unit (a data set, an export) in a hidden sibling; on success it replaces
    ``target`` at once, on failure it is removed and ``target`` stays as it was."""
    target = Path(target)
    staging = temp_path(target)
    with guarded_write(what, target / "(files)", staging, retry=retry):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        yield staging
        fsync_dir(staging)
        _swap_in(staging, target)


# --- start-up -----------------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # no cheap, safe liveness test: leave it (remove_stale_temps also goes by age there)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temps(folders: Iterable[Path], legacy: bool = False) -> list[Path]:
    """Remove temporary files and folders whose writer is gone (killed mid-write); a folder that was moved aside
    for a swap and never replaced is put back. ``legacy``: also ``*.part``/``*.tmp`` names of earlier versions
    (only for Studio's own folders, never the user's). Returns what was removed or restored."""
    done: list[Path] = []
    for root in folders:
        if not Path(root).is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                path = Path(dirpath) / name
                match = _TEMP_NAME.match(name)
                if match and not _alive(int(match["pid"])):
                    original = Path(dirpath) / match["name"]
                    if match["kind"] == OLD_MARK and not original.exists():
                        with suppress(OSError):
                            os.replace(path, original)
                            done.append(original)
                        continue
                elif not (legacy and name in filenames and _LEGACY_TEMP.match(name)):
                    continue
                _remove(path)
                done.append(path)
            dirnames[:] = [d for d in dirnames if (Path(dirpath) / d) not in done]
    return done
