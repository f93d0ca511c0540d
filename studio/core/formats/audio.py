"""Audio files through soundfile: WAV/FLAC/OGG in and out, with clear messages for non-audio input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from studio.core.errors import BadInputError

FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
MAX_SECONDS = 60 * 60


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """(frames x channels float32 in [-1, 1], sample rate)."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path.name}: no such file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise BadInputError(f"{path.name} is not a readable audio file ({exc})") from None
    if info.frames == 0:
        raise BadInputError(f"{path.name} contains no audio")
    if info.frames > MAX_SECONDS * info.samplerate:
        raise BadInputError(f"{path.name} is longer than an hour; open a shorter excerpt")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise BadInputError(f"{path.name} could not be decoded ({exc})") from None
    return data, rate


def write_audio(
    path: Path, samples: np.ndarray, rate: int, recipe: dict[str, Any] | None = None, subtype: str | None = None
) -> Path:
    """Write WAV/FLAC/OGG by extension; the recipe goes into a JSON sidecar and the file's comment tag."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise BadInputError(f"cannot write {ext or 'files without extension'}: use .wav, .flac or .ogg")
    fmt, default_subtype = FORMATS[ext]
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part" + ext)
    with sf.SoundFile(str(tmp), "w", rate, data.shape[1], subtype or default_subtype, format=fmt) as fh:
        if recipe:
            fh.comment = json.dumps(recipe, sort_keys=True)
            fh.software = "Studio"
        fh.write(np.clip(data, -1.0, 1.0))
    tmp.replace(path)
    if recipe:
        path.with_name(path.name + ".json").write_text(json.dumps(recipe, indent=2), encoding="utf-8")
    return path


def read_audio_recipe(path: Path) -> dict[str, Any] | None:
    path = Path(path)
    side = path.with_name(path.name + ".json")
    try:
        if side.exists():
            return json.loads(side.read_text(encoding="utf-8"))
        comment = sf.SoundFile(str(path)).comment
        return json.loads(comment) if comment else None
    except (ValueError, RuntimeError, sf.LibsndfileError):
        return None
