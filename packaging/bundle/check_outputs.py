"""Check what the bundle generated in the smoke test (standard library only: it runs beside the bundle, not in it).

    python3 packaging/bundle/check_outputs.py sprites DIR COUNT
    python3 packaging/bundle/check_outputs.py copy FILE.csv
    python3 packaging/bundle/check_outputs.py music FILE.wav FILE.mid SECONDS

Prints one line saying what it found; exits 1 with the reason when something is wrong.
"""

from __future__ import annotations

import csv
import struct
import sys
import wave
import zlib
from pathlib import Path

HEADLINE_LIMIT = 30  # Google responsive search ads


def png_chunks(path: Path) -> dict[bytes, list[bytes]]:
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path.name} is not a PNG")
    chunks: dict[bytes, list[bytes]] = {}
    offset = 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0]:
            raise ValueError(f"{path.name}: damaged {kind.decode()} chunk")
        chunks.setdefault(kind, []).append(body)
        offset += 12 + length
    return chunks


def check_sprites(folder: Path, count: int) -> str:
    pngs = sorted(folder.glob("*.png"))
    if len(pngs) != count:
        raise ValueError(f"{len(pngs)} PNGs in {folder}, expected {count}")
    for png in pngs:
        chunks = png_chunks(png)
        width, height = struct.unpack(">II", chunks[b"IHDR"][0][:8])
        if (width, height) != (32, 32):
            raise ValueError(f"{png.name} is {width}x{height}, not 32x32")
        texts = [body for kind in (b"tEXt", b"iTXt", b"zTXt") for body in chunks.get(kind, [])]
        if not any(body.startswith(b"parameters\x00") for body in texts):
            raise ValueError(f"{png.name} carries no recipe (parameters text chunk)")
    return f"{count} sprites, 32x32 RGBA PNGs with their recipe"


def check_copy(path: Path) -> str:
    with open(path, newline="", encoding="utf-8-sig") as fh:  # spreadsheet tools want the BOM
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path.name} has no ads")
    headlines = [value for row in rows for key, value in row.items() if key.lower().startswith("headline") and value]
    if not headlines:
        raise ValueError(f"{path.name} has no headlines (columns: {', '.join(rows[0])})")
    too_long = [h for h in headlines if len(h) > HEADLINE_LIMIT]
    if too_long:
        raise ValueError(f"headlines over {HEADLINE_LIMIT} characters: {too_long}")
    return f"{len(rows)} ad(s), {len(headlines)} headlines within {HEADLINE_LIMIT} characters, e.g. {headlines[0]!r}"


def check_music(wav: Path, midi: Path, seconds: float) -> str:
    with wave.open(str(wav)) as fh:
        length = fh.getnframes() / fh.getframerate()
        channels, rate = fh.getnchannels(), fh.getframerate()
    if abs(length - seconds) > 0.01:
        raise ValueError(f"{wav.name} lasts {length:.3f} s, expected {seconds:.3f} s")
    if midi.read_bytes()[:4] != b"MThd":
        raise ValueError(f"{midi.name} is not a Standard MIDI File")
    return f"{length:.2f} s of {channels}-channel {rate} Hz audio, and a MIDI file"


def main() -> int:
    what, *args = sys.argv[1:]
    try:
        if what == "sprites":
            print(check_sprites(Path(args[0]), int(args[1])))
        elif what == "copy":
            print(check_copy(Path(args[0])))
        elif what == "music":
            print(check_music(Path(args[0]), Path(args[1]), float(args[2])))
        else:
            raise ValueError(f"unknown check {what!r}")
    except (OSError, ValueError, KeyError, struct.error, wave.Error) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
