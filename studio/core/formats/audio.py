"""Audio files through soundfile: WAV/FLAC/OGG in and out, with clear messages for non-audio input."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from studio.core.errors import BadInputError
from studio.core.formats.json_file import read_json
from studio.core.recipe import MAX_RECIPE_BYTES, MAX_RECIPE_DEPTH, check_recipe, parse_recipe
from studio.core.safe_write import write_group

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


def audio_bytes(samples: np.ndarray, rate: int, ext: str, recipe: dict[str, Any] | None = None,
                subtype: str | None = None) -> bytes:
    """WAV/FLAC/OGG (by ``ext``) in memory; the recipe goes into the file's comment tag (WAV: INFO ICMT)."""
    if ext not in FORMATS:
        raise BadInputError(f"cannot write {ext or 'files without extension'}: use .wav, .flac or .ogg")
    fmt, default_subtype = FORMATS[ext]
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, data.shape[1], subtype or default_subtype, format=fmt) as fh:
        if recipe:
            fh.comment = json.dumps(recipe, sort_keys=True)
            fh.software = "Studio"
        fh.write(np.clip(data, -1.0, 1.0))
    return buffer.getvalue()


def write_audio(
    path: Path, samples: np.ndarray, rate: int, recipe: dict[str, Any] | None = None, subtype: str | None = None
) -> Path:
    """Write WAV/FLAC/OGG by extension, crash-safely; the recipe goes into the file's comment tag and a JSON
    sidecar (``NAME.wav.json``), both written before either is renamed into place."""
    path = Path(path)
    files: list[tuple[Path, bytes | str]] = [(path, audio_bytes(samples, rate, path.suffix.lower(), recipe, subtype))]
    if recipe:
        files.append((sidecar_path(path), json.dumps(recipe, indent=2)))
    write_group(files, f"the audio file {path.name}")
    return path


def sidecar_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".json")


def read_audio_recipe(path: Path) -> dict[str, Any] | None:
    """The recipe in the file's own comment tag (it cannot disagree with the audio), else in its JSON sidecar;
    None when there is neither; BadInputError when what is there is not a recipe."""
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as fh:
            comment = fh.comment
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as exc:
        raise BadInputError(f"{path.name} is not a readable audio file ({exc})") from None
    problem = None
    if comment and comment.lstrip().startswith("{"):
        try:
            return parse_recipe(comment, path.name)
        except BadInputError as exc:
            problem = exc
    side = sidecar_path(path)
    if side.exists():
        return check_recipe(read_json(side, max_bytes=MAX_RECIPE_BYTES, max_depth=MAX_RECIPE_DEPTH), side.name)
    if problem is not None:
        raise problem
    return None
