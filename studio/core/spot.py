"""The ad spot in plain Python: its typed request (a copy variant's words, their voice-over, a music bed), the
loudness presets, how the music is fitted to the spot in whole bars, where the voice goes, and the project file
that reopens a spot.

A spot is exactly 15 s or 30 s. The music bed ends on a bar line as the spot ends: its bars are the whole number
nearest the spot's length at the style's tempo, and the tempo is nudged (a few percent) so they fill it exactly. The
voice starts after a short lead-in and must end at least :data:`TAIL_S` before the spot does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from studio.core.errors import BadInputError
from studio.core.formats.audio import audio_bytes, sidecar_path
from studio.core.formats.json_file import expect_object, read_json
from studio.core.music_request import MusicRequest
from studio.core.requests import Request, choice, number
from studio.core.safe_write import write_group
from studio.core.voice import LineTiming, VoiceRequest

LOUDNESS_PRESETS = {"online": -16.0, "broadcast": -23.0}  # LUFS: streaming/social; EBU R128 broadcast
TRUE_PEAK_DBTP = -1.0
SPOT_LENGTHS = (15, 30)
TAIL_S = 1.0  # music alone after the last word, fading out
PROJECT_SUFFIX = ".spot"
PROJECT_FORMAT = "studio-spot"
PROJECT_VERSION = 1


@dataclass(frozen=True)
class SpotRequest(Request):
    """``voice.text`` is the copy the spot speaks. ``music`` is generated and fitted to the spot; ``music_file``
    (a clip exported from the Music workspace) is used instead when given."""

    kind: ClassVar[str] = "spot.render"
    voice: VoiceRequest = field(default_factory=VoiceRequest)
    voice_model: str = ""  # "" for the default voice
    music: MusicRequest = field(default_factory=lambda: MusicRequest(style="upbeat-jingle"))
    music_model: str = ""  # "" for the default music model (the rules when none is installed)
    music_file: str = ""
    loop_music: bool = False  # a clip shorter than the spot repeats (seamlessly: a loop is whole bars)
    length: int = number(30, 15, 30)
    loudness: str = choice("online", tuple(LOUDNESS_PRESETS))
    duck_db: float = number(-14.0, -30.0, -6.0)  # how far the music goes down while the voice speaks
    lead_in: float = number(0.5, 0.0, 3.0)  # music alone before the first word
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.length not in SPOT_LENGTHS:
            raise BadInputError(f"a spot is {' or '.join(map(str, SPOT_LENGTHS))} seconds long, not {self.length}")

    @property
    def target_lufs(self) -> float:
        return LOUDNESS_PRESETS[self.loudness]


@dataclass(frozen=True)
class SpotResult:
    """A rendered spot: stereo float32 audio, its stems, where each line is heard, the copy and the recipe."""

    rate: int
    mix: np.ndarray = field(repr=False)
    stems: dict[str, np.ndarray] = field(repr=False)
    lines: tuple[LineTiming, ...]
    copy: str
    recipe: dict[str, Any]

    @property
    def duration(self) -> float:
        return len(self.mix) / self.rate


def fit_bars(length_s: float, bpm: float, beats_per_bar: float) -> tuple[int, float]:
    """(bars, tempo) of a bed that fills ``length_s`` exactly with whole bars, at the tempo nearest ``bpm``."""
    bar_s = beats_per_bar * 60.0 / bpm
    bars = max(1, round(length_s / bar_s))
    return bars, bars * beats_per_bar * 60.0 / length_s


def check_voice_fits(voice_s: float, request: SpotRequest) -> None:
    room = request.length - request.lead_in - TAIL_S
    if voice_s > room:
        raise BadInputError(
            f"the voice-over lasts {voice_s:.1f} s, but a {request.length} s spot has room for {room:.1f} s of it "
            f"(after a {request.lead_in:g} s lead-in, before a {TAIL_S:g} s tail): "
            + ("choose 30 s, " if request.length < max(SPOT_LENGTHS) else "")
            + "speak faster or shorten the copy")


def check_music_covers(music_s: float, voice_s: float, request: SpotRequest) -> None:
    if music_s + 1e-6 < request.length and not request.loop_music:
        raise BadInputError(
            f"the music lasts {music_s:.1f} s, shorter than the {request.length} s spot (the voice-over alone lasts "
            f"{voice_s:.1f} s): loop the music (it repeats in whole bars) or use a longer clip")


def project_data(result: SpotResult, request: SpotRequest, audio_name: str) -> dict[str, Any]:
    return {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "request": request.to_dict(),
            "audio": audio_name, "copy": result.copy, "recipe": result.recipe,
            "lines": [{"number": t.number, "text": t.text, "start": round(t.start, 3), "end": round(t.end, 3)}
                      for t in result.lines]}


@dataclass(frozen=True)
class SpotProject:
    """A spot read back from its project file: the request that renders it again, and the audio it points to."""

    request: SpotRequest
    audio: Path | None  # None when the rendered audio is not beside the project any more
    copy: str
    lines: tuple[LineTiming, ...]
    recipe: dict[str, Any]  # what rendering it measured (loudness, balance) and used


def read_project(path: Path) -> SpotProject:
    path = Path(path)
    data = expect_object(read_json(path, path.name), path.name)
    if data.get("format") != PROJECT_FORMAT or not isinstance(data.get("version"), int):
        raise BadInputError(f"{path.name} is not a Studio spot project")
    if data["version"] > PROJECT_VERSION:
        raise BadInputError(f"{path.name} was written by a newer Studio (spot project version {data['version']})")
    request = SpotRequest.from_dict(data.get("request"))
    audio_name = data.get("audio")
    audio = path.parent / audio_name if isinstance(audio_name, str) and Path(audio_name).name == audio_name else None
    lines = []
    for item in data.get("lines") or []:
        try:
            lines.append(LineTiming(int(item["number"]), str(item["text"]), float(item["start"]), float(item["end"])))
        except (KeyError, TypeError, ValueError):
            raise BadInputError(f"{path.name}: a line's timing is damaged") from None
    recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
    return SpotProject(request, audio if audio is not None and audio.exists() else None,
                       str(data.get("copy") or request.voice.text), tuple(lines), recipe)


def project_json(result: SpotResult, request: SpotRequest, audio_name: str) -> str:
    return json.dumps(project_data(result, request, audio_name), indent=2, ensure_ascii=False) + "\n"


def export_spot(audio_path: Path, result: SpotResult, request: SpotRequest, write_metadata: bool = True
                ) -> list[Path]:
    """The spot's audio (WAV/FLAC/OGG by suffix, the recipe inside unless metadata is off), its project file
    (``NAME.spot``, which reopens it) and the copy as text (``NAME.txt``), written as one crash-safe group."""
    audio_path = Path(audio_path)
    recipe = result.recipe if write_metadata else None
    files: list[tuple[Path, bytes | str]] = [
        (audio_path.with_suffix(".txt"), result.copy.rstrip() + "\n"),
        (audio_path, audio_bytes(result.mix, result.rate, audio_path.suffix.lower(), recipe)),
    ]
    if recipe:
        files.append((sidecar_path(audio_path), json.dumps(recipe, indent=2)))
    files.append((audio_path.with_suffix(PROJECT_SUFFIX), project_json(result, request, audio_path.name)))
    return write_group(files, f"the spot {audio_path.stem}")
