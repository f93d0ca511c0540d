"""Reading user text files whose encoding is unknown: UTF-8 (with or without BOM), UTF-16, then refuse."""

from __future__ import annotations

from pathlib import Path

from studio.core.errors import BadInputError

MAX_TEXT_BYTES = 200 << 20


def read_text(path: Path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise BadInputError(f"{path.name} is {size >> 20} MB; the limit is {max_bytes >> 20} MB")
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig",)
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise BadInputError(
        f"{path.name} is not UTF-8 or UTF-16 text (binary file or unknown encoding); save it as UTF-8 and retry"
    )
