"""Standard MIDI files through ``mido``: type 1 with a conductor track (tempo, meter, key) and one track per part.

Notes are the job payload's dicts ``{"part", "pitch", "start", "duration", "velocity"}`` with times in beats
(quarter note = 1). The part named ``drums`` goes to channel 10 (index 9) with General MIDI drum pitches; every other
part gets its own channel and a GM program. The reader accepts type 0 and type 1 files (for "continue" input) and
refuses anything else with a message a person can act on.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido

from studio.core.errors import BadInputError
from studio.core.music_theory import Key, Meter, key_from_midi, parse_meter
from studio.core.safe_write import write_atomic

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9
DRUM_PART = "drums"
MAX_FILE_BYTES = 16 << 20
DEFAULT_PROGRAMS = {"melody": 80, "chords": 81, "bass": 38, "lead": 80, "pad": 89}  # GM: square, saw, synth bass


@dataclass
class MidiClip:
    """What a MIDI file holds, in the payload's terms."""

    notes: list[dict[str, Any]]
    bpm: float
    meter: Meter
    key: Key | None
    length_beats: float
    programs: dict[str, int] = field(default_factory=dict)

    @property
    def parts(self) -> list[str]:
        return list(dict.fromkeys(n["part"] for n in self.notes))


def _part_order(notes: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(n["part"]) for n in notes))


def _channels(parts: list[str]) -> dict[str, int]:
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    channels: dict[str, int] = {}
    for part in parts:
        if part == DRUM_PART:
            channels[part] = DRUM_CHANNEL
        elif not free:
            raise BadInputError(f"too many parts for one MIDI file ({len(parts)}): at most 15 plus drums")
        else:
            channels[part] = free.pop(0)
    return channels


def _note_events(notes: list[Mapping[str, Any]], channel: int, tpb: int) -> list[tuple[int, int, mido.Message]]:
    """(tick, order, message); note-offs sort before note-ons at the same tick.

    A note that starts before the previous note of the same pitch has ended cuts that one short (otherwise
    the earlier note-off would silence the new note); a duplicate start of the same pitch is dropped.
    """
    by_pitch: dict[int, list[tuple[int, int, int]]] = {}
    for n in notes:
        pitch = int(n["pitch"])
        if not 0 <= pitch <= 127:
            raise BadInputError(f"MIDI pitch {pitch} is out of range 0-127")
        start = max(0, round(float(n["start"]) * tpb))
        end = start + max(1, round(float(n["duration"]) * tpb))
        by_pitch.setdefault(pitch, []).append((start, end, min(127, max(1, int(n["velocity"])))))
    events: list[tuple[int, int, mido.Message]] = []
    for pitch, spans in by_pitch.items():
        spans.sort()
        for i, (start, end, velocity) in enumerate(spans):
            if i + 1 < len(spans):
                if spans[i + 1][0] == start:
                    continue
                end = min(end, spans[i + 1][0])
            events.append((start, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
            events.append((end, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    return events


def build_midi(
    notes: Iterable[Mapping[str, Any]],
    bpm: float,
    meter: Meter,
    key: Key | None = None,
    programs: Mapping[str, int] | None = None,
    length_beats: float | None = None,
    title: str = "Studio clip",
) -> mido.MidiFile:
    """A type-1 MidiFile: track 0 = tempo, time signature, key signature; then one track per part."""
    notes = list(notes)
    tpb = TICKS_PER_BEAT
    programs = {**DEFAULT_PROGRAMS, **(programs or {})}
    end_tick = round((length_beats or 0.0) * tpb)
    for n in notes:
        end_tick = max(end_tick, round((float(n["start"]) + float(n["duration"])) * tpb))
    midi = mido.MidiFile(type=1, ticks_per_beat=tpb)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("track_name", name=title, time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=meter.numerator,
                                      denominator=meter.denominator, time=0))
    if key is not None:
        conductor.append(mido.MetaMessage("key_signature", key=key.midi_name, time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    conductor.append(mido.MetaMessage("end_of_track", time=end_tick))
    midi.tracks.append(conductor)
    parts = _part_order(notes)
    channels = _channels(parts)
    for part in parts:
        channel = channels[part]
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=part, time=0))
        if channel != DRUM_CHANNEL:
            track.append(mido.Message("program_change", channel=channel, program=int(programs.get(part, 0)),
                                      time=0))
        events = _note_events([n for n in notes if n["part"] == part], channel, tpb)
        now = 0
        for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1], e[2].note)):
            track.append(msg.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
        midi.tracks.append(track)
    return midi


def write_midi(path: Path, notes: Iterable[Mapping[str, Any]], bpm: float, meter: Meter,
               key: Key | None = None, programs: Mapping[str, int] | None = None,
               length_beats: float | None = None) -> Path:
    path = Path(path)
    return write_atomic(path, midi_bytes(notes, bpm, meter, key, programs, length_beats), f"the MIDI file {path.name}")


def midi_bytes(notes: Iterable[Mapping[str, Any]], bpm: float, meter: Meter, key: Key | None = None,
               programs: Mapping[str, int] | None = None, length_beats: float | None = None) -> bytes:
    buffer = io.BytesIO()
    build_midi(notes, bpm, meter, key, programs, length_beats).save(file=buffer)
    return buffer.getvalue()


def _open(path: Path) -> mido.MidiFile:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise BadInputError(f"{path.name} is empty")
    if size > MAX_FILE_BYTES:
        raise BadInputError(f"{path.name} is larger than {MAX_FILE_BYTES >> 20} MB: not a clip Studio can continue")
    try:
        midi = mido.MidiFile(str(path), clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise BadInputError(f"{path.name} is not a readable MIDI file ({exc})") from None
    if midi.type == 2:
        raise BadInputError(f"{path.name} is a type-2 MIDI file (independent patterns): save it as type 0 or 1")
    return midi


def read_midi(path: Path) -> MidiClip:
    """Notes (in beats), tempo, meter, key and programs of a type-0/1 MIDI file."""
    midi = _open(path)
    tpb = midi.ticks_per_beat
    if tpb <= 0:
        raise BadInputError(f"{Path(path).name} uses SMPTE time, not beats: export it with a tempo-based division")
    tempo, meter_text, key_name = None, None, None
    notes: list[dict[str, Any]] = []
    programs: dict[str, int] = {}
    end_tick = 0
    for index, track in enumerate(midi.tracks):
        name = ""
        tick = 0
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        track_notes: list[tuple[int, int, int, int, int]] = []  # channel, pitch, start, end, velocity
        track_programs: dict[int, int] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "track_name" and not name:
                name = msg.name.strip()
            elif msg.type == "set_tempo" and tempo is None:
                tempo = msg.tempo
            elif msg.type == "time_signature" and meter_text is None:
                meter_text = f"{msg.numerator}/{msg.denominator}"
            elif msg.type == "key_signature" and key_name is None:
                key_name = msg.key
            elif msg.type == "program_change":
                track_programs.setdefault(msg.channel, msg.program)
            elif msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                started = open_notes.get((msg.channel, msg.note))
                if started:
                    start, velocity = started.pop(0)
                    track_notes.append((msg.channel, msg.note, start, tick, velocity))
        for (channel, pitch), pending in open_notes.items():  # never released: end them with the track
            track_notes.extend((channel, pitch, start, tick, velocity) for start, velocity in pending)
        end_tick = max(end_tick, tick)
        channels = sorted({c for c, *_ in track_notes})
        for channel, pitch, start, end, velocity in track_notes:
            part = _part_name(name, index, channel, len(channels) > 1)
            notes.append({"part": part, "pitch": pitch, "start": start / tpb,
                          "duration": max(1, end - start) / tpb, "velocity": velocity})
        for channel in channels:
            if channel in track_programs and channel != DRUM_CHANNEL:
                programs[_part_name(name, index, channel, len(channels) > 1)] = track_programs[channel]
    if not notes:
        raise BadInputError(f"{Path(path).name} contains no notes")
    notes.sort(key=lambda n: (n["start"], n["part"], n["pitch"]))
    try:
        key = key_from_midi(key_name) if key_name else None
    except BadInputError:
        key = None
    bpm = round(mido.tempo2bpm(tempo if tempo is not None else 500_000), 3)
    return MidiClip(notes, bpm, parse_meter(meter_text or "4/4"), key, end_tick / tpb, programs)


def _part_name(track_name: str, index: int, channel: int, several_channels: bool) -> str:
    if channel == DRUM_CHANNEL and (several_channels or not track_name):
        return DRUM_PART
    base = track_name or f"track {index}"
    return f"{base} ch{channel + 1}" if several_channels else base
