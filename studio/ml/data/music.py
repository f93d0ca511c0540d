"""The music training set: tune records -> arrays on disk, training windows with key augmentation, user clips.

A data folder holds ``train.npz``, ``val.npz`` (events and per-tune conditioning, no pickles) and
``manifest.json`` (sources, licences, counts, split, vocabulary version). Windows start at a tune's first full bar or
at a 4-bar phrase boundary after it: a pickup bar (an anacrusis, stored right-aligned in bar 1) is never a window's
first bar, because the clips Studio writes are loops that start on the downbeat. Transposition over all twelve
keys is done when a window is drawn (a uniform shift of -6..+5 semitones that keeps every pitch in range), so the
stored set stays in the tunes' written keys and validation is measured on them untransposed.

User files (for "continue" and for fine-tuning): MIDI through :mod:`studio.core.formats.midi` (mido), ABC through
music21 when it is installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import BadInputError
from studio.core.formats.json_file import expect_object, read_json
from studio.core.formats.midi import read_midi
from studio.core.safe_write import write_atomic
from studio.ml.music import tokens
from studio.ml.music.keys import estimate_key

DATASET_VERSION = 1
VAL_PER_MILLE = 50  # 5 % of tunes (a tune's parts and meter stretches stay together)
MIN_NOTES = 4
TRANSPOSE_RANGE = range(-6, 6)
MUSIC_SUFFIXES = (".mid", ".midi", ".abc")
TEMPO_BPM = {"slow": 70, "moderate": 96, "fast": 126, "very_fast": 160}
SPLITS = ("train", "val")


def tune_group(record_id: str) -> str:
    """The tune a record belongs to: its id without part (':bass') and meter-stretch ('#1') suffixes."""
    return record_id.split(":")[0].split("#")[0]


def split_of(record_id: str) -> str:
    digest = int(hashlib.sha1(tune_group(record_id).encode()).hexdigest()[:8], 16)
    return "val" if digest % 1000 < VAL_PER_MILLE else "train"


def usable(record: Mapping[str, Any]) -> bool:
    return (
        record.get("meter") in tokens.METERS
        and record.get("part") in tokens.PARTS
        and record.get("bars", 0) >= 2
        and len(record.get("events", ())) >= MIN_NOTES
    )


def write_split(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Records -> one npz: events (N, 4) int16, per-tune offsets and conditioning, ids and sources."""
    starts = np.zeros(len(records) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([len(r["events"]) for r in records])
    events = np.array([e for r in records for e in r["events"]], dtype=np.int16).reshape(-1, 4)
    conditioning = np.array(
        [
            [r["tonic"], list(tokens.MODES).index(r["mode"]), tokens.METERS.index(r["meter"]),
             tokens.TEMPOS.index(r["tempo"]), tokens.PARTS.index(r["part"]), r["bars"]]
            for r in records
        ],
        dtype=np.int16,
    ).reshape(-1, 6)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        events=events,
        starts=starts,
        conditioning=conditioning,
        ids=np.array([r["id"] for r in records], dtype=str),
        sources=np.array([r["source"] for r in records], dtype=str),
    )
    write_atomic(path, buffer.getbuffer(), f"the music data {path.name}")


@dataclass
class BuildReport:
    items: int = 0
    failed: int = 0
    from_cache: int = 0
    per_source: dict[str, Counter] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # the user's files left out, with the reason


def read_user_tunes(files: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(usable training records of the user's tune files, the files left out as {"file", "reason"}).

    The one judgement of a user's tunes: what the Train workspace's inspection reports is what training uses."""
    records: list[dict[str, Any]] = []
    rejected: list[dict[str, str]] = []
    for path in map(Path, files):
        if path.suffix.lower() not in MUSIC_SUFFIXES:
            rejected.append({"file": path.name, "reason": "not a MIDI or ABC file"})
            continue
        try:
            found = [dict(r, source="user") for r in read_user_records(path)]
        except BadInputError as exc:
            rejected.append({"file": path.name, "reason": str(exc)})
            continue
        kept = [r for r in found if usable(r)]
        if not kept:
            rejected.append({"file": path.name, "reason": f"fewer than 2 bars or {MIN_NOTES} notes in a meter the "
                             f"music model supports ({', '.join(tokens.METERS)})"})
        records += kept
    return records, rejected


def build_dataset(
    out_dir: Path,
    corpus_sources: Sequence[str] | None = None,
    extra_files: Sequence[Path] = (),
    cache_path: Path | None = None,
    workers: int = 2,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Build ``out_dir`` from the music21 corpora (``corpus_sources``; none: user files only) and user files."""
    from studio.ml.data import music_corpus

    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    report = BuildReport()
    if corpus_sources:
        from studio.core.paths import cache_dir

        items = music_corpus.corpus_items(tuple(corpus_sources))
        cache = music_corpus.RecordCache(cache_path or cache_dir() / "music-corpus" / "records.jsonl")
        report.items = len(items)
        for result in music_corpus.parse_corpus(items, cache, workers, on_progress):
            source = result["id"].split("/")[0]
            counts = report.per_source.setdefault(source, Counter())
            counts["items"] += 1
            if "error" in result:
                counts["failed"] += 1
                report.failed += 1
                if len(report.errors) < 20:
                    report.errors.append(f"{result['id']}: {result['error']}")
            records += result["records"]
    if extra_files:
        user, report.skipped = read_user_tunes(extra_files)
        report.per_source.setdefault("user", Counter())["items"] += len(extra_files) - len(report.skipped)
        records += user
    kept = [r for r in records if usable(r)]
    if not kept:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in report.skipped[:3])
        raise BadInputError("no usable tunes were found: nothing to build a music training set from"
                            + (f" ({reasons})" if reasons else ""))
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for record in sorted(kept, key=lambda r: r["id"]):
        by_split[split_of(record["id"])].append(record)
    if not by_split["val"]:  # tiny user-only sets: keep at least one tune for validation
        by_split["val"].append(by_split["train"].pop())
    for split, chosen in by_split.items():
        write_split(chosen, out_dir / f"{split}.npz")
    manifest = _manifest(by_split, report, corpus_sources or (), time.monotonic() - started)
    write_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n", "the music data manifest")
    return manifest


def _manifest(
    by_split: Mapping[str, list[dict[str, Any]]], report: BuildReport, sources: Sequence[str], seconds: float
) -> dict[str, Any]:
    from studio.ml.data.music_corpus import SOURCES

    def summary(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "sequences": len(chosen),
            "tunes": len({tune_group(r["id"]) for r in chosen}),
            "bars": sum(r["bars"] for r in chosen),
            "notes": sum(len(r["events"]) for r in chosen),
            "by_source": dict(Counter(r["source"] for r in chosen)),
            "by_part": dict(Counter(r["part"] for r in chosen)),
            "by_meter": dict(Counter(r["meter"] for r in chosen).most_common()),
            "by_mode": dict(Counter(r["mode"] for r in chosen).most_common()),
            "by_tempo": dict(Counter(r["tempo"] for r in chosen).most_common()),
        }

    return {
        "version": DATASET_VERSION,
        "vocab": tokens.VOCAB_VERSION,
        "grid": f"{tokens.TICKS_PER_BEAT} ticks per quarter note",
        "augmentation": "transposition to all 12 keys (-6..+5 semitones) when training windows are drawn",
        "split": f"by tune, sha1 of the tune id, {VAL_PER_MILLE / 10:g} % validation",
        "sources": {s: SOURCES[s] for s in sources} | ({"user": "your own files"} if "user" in report.per_source
                                                         else {}),
        "excluded": "Essen folksongs (non-commercial licence)",
        "music21": _music21_version() if sources else None,
        "parsed": {s: dict(c) for s, c in report.per_source.items()},
        "failed_examples": report.errors,
        "skipped_files": report.skipped,
        "splits": {split: summary(chosen) for split, chosen in by_split.items()},
        "build_seconds": round(seconds, 1),
    }


def _music21_version() -> str:
    from studio.ml.data.music_corpus import require_music21

    return str(require_music21().__version__)


def read_manifest(folder: Path) -> dict[str, Any]:
    """A data folder's ``manifest.json`` ({} when there is none; BadInputError when it is damaged)."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        return {}
    return expect_object(read_json(path, f"{Path(folder).name}/manifest.json"), f"{path}")


@dataclass(frozen=True)
class Tune:
    header: tokens.Header
    events: np.ndarray  # (n, 4) int16: bar, pos, pitch, dur
    id: str
    source: str

    def notes(self) -> list[dict[str, Any]]:
        return tokens.events_to_notes(
            (tokens.Event(*map(int, e)) for e in self.events), self.header.meter, self.header.part
        )


class MusicData:
    """One split, with bar-indexed token bodies for fast window sampling."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if not path.exists():
            raise BadInputError(f"{path} does not exist: build the set with `studio data music --out DIR`")
        with np.load(path, allow_pickle=False) as data:
            self.events = data["events"]
            self.starts = data["starts"]
            self.conditioning = data["conditioning"]
            self.ids = data["ids"]
            self.sources = data["sources"]
        self.bodies: list[np.ndarray] = []
        self.bar_offsets: list[np.ndarray] = []
        self.phrase_starts: list[np.ndarray] = []
        for i in range(len(self)):
            self._index(i)

    @classmethod
    def load(cls, folder: Path, split: str) -> MusicData:
        folder = Path(folder)
        manifest = read_manifest(folder)
        if manifest:
            vocab = manifest.get("vocab")
            if vocab != tokens.VOCAB_VERSION:
                raise BadInputError(f"{folder} was built for vocabulary {vocab!r}; rebuild it with this version")
        return cls(folder / f"{split}.npz")

    def __len__(self) -> int:
        return len(self.conditioning)

    def header(self, i: int, bars: int | None = None) -> tokens.Header:
        tonic, mode, meter, tempo, part, n_bars = (int(x) for x in self.conditioning[i])
        return tokens.Header(
            tonic, list(tokens.MODES)[mode], tokens.METERS[meter], tokens.TEMPOS[tempo], bars or n_bars,
            tokens.PARTS[part],
        )

    def tune(self, i: int) -> Tune:
        return Tune(self.header(i), self.events[self.starts[i] : self.starts[i + 1]], str(self.ids[i]),
                    str(self.sources[i]))

    def _index(self, i: int) -> None:
        ev = self.events[self.starts[i] : self.starts[i + 1]].astype(np.int64)
        n_bars = int(self.conditioning[i, 5])
        per_bar = np.bincount(ev[:, 0], minlength=n_bars)[:n_bars]
        offsets = np.zeros(n_bars + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(1 + 3 * per_bar)
        body = np.empty(offsets[-1], dtype=np.int16)
        body[offsets[:-1]] = tokens.BAR
        first_in_bar = np.concatenate([[0], np.cumsum(per_bar)])[ev[:, 0]]
        note_at = offsets[ev[:, 0]] + 1 + 3 * (np.arange(len(ev)) - first_in_bar)
        body[note_at] = tokens.POS_BASE + ev[:, 1]
        body[note_at + 1] = tokens.PITCH_BASE + ev[:, 2] - tokens.PITCH_LOW
        body[note_at + 2] = tokens.DUR_BASE + ev[:, 3] - 1
        self.bodies.append(body)
        self.bar_offsets.append(offsets)
        bar_ticks = tokens.bar_ticks(tokens.METERS[int(self.conditioning[i, 2])])
        pickup = int(len(ev) > 0 and ev[0, 0] == 0 and ev[0, 1] * 2 >= bar_ticks)
        self.phrase_starts.append(np.arange(pickup, max(pickup + 1, n_bars - 1), 4))

    def sequence(self, i: int, first_bar: int, bars: int, shift: int = 0) -> np.ndarray:
        """Header + bars ``first_bar``..+``bars`` + EOS, transposed by ``shift`` semitones."""
        offsets = self.bar_offsets[i]
        body = self.bodies[i][offsets[first_bar] : offsets[first_bar + bars]].astype(np.int64)
        head = self.header(i, bars)
        if shift:
            body = body.copy()
            body[(body >= tokens.PITCH_BASE) & (body < tokens.DUR_BASE)] += shift
            head = tokens.Header((head.tonic + shift) % 12, head.mode, head.meter, head.tempo, bars, head.part)
        return np.concatenate([head.tokens(), body, [tokens.EOS]])

    def fitting_bars(self, i: int, first_bar: int, max_len: int) -> int:
        """How many bars from ``first_bar`` fit in ``max_len`` tokens with header and EOS (at least 1)."""
        offsets = self.bar_offsets[i]
        budget = max_len - tokens.HEADER_LEN - 1
        lengths = offsets[first_bar + 1 :] - offsets[first_bar]
        return max(1, int(np.searchsorted(lengths, budget, side="right")))

    def transpositions(self, i: int) -> list[int]:
        pitches = self.events[self.starts[i] : self.starts[i + 1], 2]
        low, high = int(pitches.min()), int(pitches.max())
        return [t for t in TRANSPOSE_RANGE if low + t >= tokens.PITCH_LOW and high + t <= tokens.PITCH_HIGH]

    def sample_window(self, rng: np.random.Generator, max_len: int, augment: bool = True) -> np.ndarray:
        """A training sequence: a random tune (by length), a phrase-aligned start, a clip length, a key."""
        weights = self.conditioning[:, 5].astype(np.float64)
        i = int(rng.choice(len(self), p=weights / weights.sum()))
        starts = self.phrase_starts[i]
        first = int(rng.choice(starts)) if rng.random() > 0.4 else int(starts[0])
        n_bars = int(self.conditioning[i, 5])
        fit = min(n_bars - first, self.fitting_bars(i, first, max_len))
        bars = fit if rng.random() < 0.5 else min(fit, int(rng.choice([2, 4, 8, 12, 16])))
        shift = int(rng.choice(self.transpositions(i))) if augment else 0
        return self.sequence(i, first, bars, shift)[:max_len]

    def validation_sequences(self, max_len: int) -> list[np.ndarray]:
        """Each tune from its first full bar, as many whole bars as fit, in its written key."""
        firsts = [int(starts[0]) for starts in self.phrase_starts]
        return [self.sequence(i, first, self.fitting_bars(i, first, max_len)) for i, first in enumerate(firsts)]


@dataclass
class UserClip:
    """A user's file read for "continue": melody notes in beats plus what the file says about itself."""

    notes: list[dict[str, Any]]
    other_parts: list[dict[str, Any]]
    bpm: float
    meter: str
    tonic: int
    mode: str


def _melody_and_rest(notes: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """The part named 'melody' if there is one; otherwise every pitched note (its top line becomes the melody)."""
    notes = [dict(n) for n in notes]
    if any(n["part"] == "melody" for n in notes):
        return [n for n in notes if n["part"] == "melody"], [n for n in notes if n["part"] != "melody"]
    pitched = [dict(n, part="melody") for n in notes if n["part"] != "drums"]
    return pitched, [n for n in notes if n["part"] == "drums"]


def read_user_clip(path: Path) -> UserClip:
    """A MIDI or ABC file -> UserClip; anything unreadable is a BadInputError saying why."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".mid", ".midi"):
        clip = read_midi(path)
        melody, rest = _melody_and_rest(clip.notes)
        if not melody:
            raise BadInputError(f"{path.name} has only drum notes: there is no melody to continue")
        meter = tokens.check_meter(clip.meter.label)
        tonic, mode = (clip.key.tonic, clip.key.mode) if clip.key else estimate_key(melody)
        return UserClip(melody, rest, float(clip.bpm), meter, tonic, mode)
    if suffix == ".abc":
        record = next((r for r in read_user_records(path) if r["part"] == "melody"), None)
        if record is None:
            raise BadInputError(f"{path.name} holds no melody in a meter the music model supports")
        events = (tokens.Event(*e) for e in record["events"])
        notes = tokens.events_to_notes(events, record["meter"])
        return UserClip(notes, [], float(TEMPO_BPM[record["tempo"]]), record["meter"], record["tonic"],
                        record["mode"])
    raise BadInputError(f"{path.name}: open a MIDI (.mid) or ABC (.abc) file to continue it")


def read_user_records(path: Path) -> list[dict[str, Any]]:
    """A user's MIDI or ABC file -> training records (for fine-tuning on your own tunes)."""
    path = Path(path)
    if path.suffix.lower() == ".abc":
        from studio.ml.data.music_corpus import read_abc

        return read_abc(path)
    clip = read_user_clip(path)
    events = tokens.quantise(clip.notes, clip.meter)
    return [{
        "id": f"user/{path.stem}", "source": "user", "title": path.stem, "tonic": clip.tonic, "mode": clip.mode,
        "meter": clip.meter, "tempo": tokens.tempo_class(clip.bpm), "part": "melody",
        "bars": tokens.bar_count(events), "events": [[e.bar, e.pos, e.pitch, e.dur] for e in events],
    }]
