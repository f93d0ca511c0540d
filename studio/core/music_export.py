"""Saving a ``music.*`` job's payload: audio (WAV/FLAC/OGG with the recipe), stems, and a type-1 MIDI file.

Shared by the CLI and the app (plain data in, files out; no torch), so both write the same files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studio.core.errors import BadInputError
from studio.core.formats.audio import write_audio
from studio.core.formats.midi import write_midi
from studio.core.music_styles import find_style
from studio.core.music_theory import parse_key, parse_meter


def gm_programs(style_name: str) -> dict[str, int]:
    """General MIDI program per part of a style (unknown style: the MIDI writer's defaults)."""
    try:
        style = find_style(style_name)
    except BadInputError:
        return {}
    return {part: inst.gm_program for part, inst in style.instruments.items()}


def export_audio(path: Path, payload: Mapping[str, Any], write_metadata: bool = True) -> Path:
    return write_audio(Path(path), payload["mix"], payload["rate"], payload["recipe"] if write_metadata else None)


def export_stems(folder: Path, payload: Mapping[str, Any], write_metadata: bool = True,
                 extension: str = ".wav") -> list[Path]:
    recipe = payload["recipe"] if write_metadata else None
    return [write_audio(Path(folder) / f"{part}{extension}", stem, payload["rate"], recipe)
            for part, stem in payload["stems"].items()]


def export_midi(path: Path, payload: Mapping[str, Any]) -> Path:
    """Type-1 MIDI: tempo, meter and key events, one track per part, the style's GM programs."""
    meter = parse_meter(payload["meter"])
    return write_midi(Path(path), payload["notes"], payload["bpm"], meter, parse_key(payload["key"]),
                      gm_programs(payload["recipe"].get("style", "")), payload["bars"] * meter.beats_per_bar)
