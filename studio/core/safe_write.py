"""Writing files so that a failed write (a full disk above all) leaves the previous file intact and says so plainly.

Writers put their bytes in temporary files and rename them over the real names (``os.replace``); wrapping that in
:func:`guarded_write` removes the temporaries when a write fails and turns the ``OSError`` into a
:class:`DiskWriteError` whose message tells a person what happened and what to do.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from studio.core.errors import DiskWriteError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)


def describe_write_error(what: str, path: Path, exc: OSError) -> str:
    """A sentence for a failed write of ``what`` (e.g. "the checkpoint step-00000004") to ``path``."""
    reason = exc.strerror or str(exc)
    if exc.errno in FULL:
        return (f"disk full: could not write {what} to {path.parent} ({reason}). Free some space and resume; "
                "the previous files are intact")
    if exc.errno in REFUSED:
        return f"could not write {what} to {path.parent} ({reason}): choose a folder you may write to and resume"
    return f"could not write {what} to {path.parent} ({reason}); the previous files are intact, resume when fixed"


@contextmanager
def guarded_write(what: str, path: Path, *temporaries: Path) -> Iterator[None]:
    """Run the writes of ``what``; on OSError remove ``temporaries`` and raise :class:`DiskWriteError`."""
    try:
        yield
    except OSError as exc:
        for temporary in temporaries:
            with suppress(OSError):
                Path(temporary).unlink(missing_ok=True)
        raise DiskWriteError(describe_write_error(what, Path(path), exc)) from exc


def write_text_atomic(path: Path, text: str, what: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file; a failure keeps the old file (DiskWriteError)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with guarded_write(what, path, tmp):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path
