"""Reading tunes with music21: the public-domain corpora for training, and a user's ABC file.

music21 is a training-time dependency (the ``train`` extra); the app imports this module only to read an ABC file,
and says how to install music21 when it is missing.

Sources (all historical repertoire, public domain; the encodings ship with music21's corpus, BSD-distributed):

- ``oneills1850``: O'Neill's *Music of Ireland* (1903), 1,850 airs and dance tunes, ABC by Norbert Paap.
- ``ryansMammoth``: *Ryan's Mammoth Collection* (1883), 1,050 reels, jigs and hornpipes, ABC by John Chambers et al.
- ``bach``: J. S. Bach's four-part chorales (soprano as melody, bass as bass), MusicXML.

The Essen folksong collection is deliberately left out (its licence is non-commercial).

Each parsed tune becomes a record (plain JSON): ``{"id", "source", "title", "tonic", "mode", "meter", "tempo",
"part", "bars", "events": [[bar, pos, pitch, dur], ...]}`` on the grid of :mod:`studio.ml.music.tokens`.
Parsing the ~3,400 tunes takes minutes, so records are cached per item (keyed by the item's text) and parsed by at
most two worker processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import BadInputError
from studio.core.formats.json_file import parse_json
from studio.ml.music import tokens

log = logging.getLogger(__name__)

PARSER_VERSION = 1
SOURCES: dict[str, str] = {
    "oneills1850": "O'Neill's Music of Ireland (1903): public domain; ABC transcription by Norbert Paap",
    "ryansMammoth": "Ryan's Mammoth Collection (1883): public domain; ABC transcriptions by John Chambers et al.",
    "bach": "J. S. Bach, four-part chorales (18th century): public domain; MusicXML encodings from music21",
}
EXCLUDED = ("essenFolksong",)  # non-commercial licence
NOT_CHORALES = ("bwv846",)  # a keyboard prelude that sits in music21's bach folder

# Tempo words found in the tunes' N:/R:/T:/Q: lines, checked in this order (first hit wins).
TEMPO_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("slow", ("very slow", "slow", "tender", "feeling", "plaintive", "lament", "mournful", "air", "andante",
              "adagio", "expression")),
    ("very_fast", ("reel", "quick", "fast", "rapid", "presto")),
    ("fast", ("lively", "spirit", "gaily", "animated", "jig", "hornpipe", "clog", "polka", "strathspey",
              "fling", "slide", "allegro", "brisk", "cheerful")),
    ("moderate", ("moderate", "march", "waltz", "graceful", "chorale")),
)


@dataclass(frozen=True)
class CorpusItem:
    """One parse job: an ABC tune's text or a MusicXML file."""

    id: str
    source: str
    kind: str  # "abc" | "file"
    text: str = ""
    path: str = ""

    def cache_key(self) -> str:
        payload = self.text.encode() if self.kind == "abc" else Path(self.path).read_bytes()
        return hashlib.sha1(f"{PARSER_VERSION}|{self.id}|".encode() + payload).hexdigest()


def require_music21() -> Any:
    try:
        import music21
    except ImportError:
        raise BadInputError(
            "reading ABC files and building the music training set need music21, which is not installed: "
            "run `pip install 'studio[train]'` (or `pip install music21`)"
        ) from None
    return music21


def corpus_root() -> Path:
    return Path(require_music21().__file__).parent / "corpus"


def split_abc(text: str) -> list[str]:
    """An ABC file -> one text per tune (each starting at its ``X:`` line)."""
    starts = [m.start() for m in re.finditer(r"^X:", text, flags=re.MULTILINE)]
    ends = [*starts[1:], len(text)] if starts else []
    return [text[a:b].strip() + "\n" for a, b in zip(starts, ends, strict=True)]


def corpus_items(sources: tuple[str, ...] = tuple(SOURCES)) -> list[CorpusItem]:
    root = corpus_root()
    items: list[CorpusItem] = []
    for source in sources:
        if source not in SOURCES:
            raise BadInputError(f"unknown music source {source!r}: use {', '.join(SOURCES)}")
        folder = root / source
        if not folder.is_dir():
            raise BadInputError(f"music21's corpus has no {source} folder at {folder}: reinstall music21")
        if source == "bach":
            for path in sorted(folder.glob("bwv*.*xl")) + sorted(folder.glob("bwv*.xml")):
                if path.stem.split(".")[0] not in NOT_CHORALES and not path.stem.endswith("-sc"):
                    items.append(CorpusItem(f"bach/{path.stem}", source, "file", path=str(path)))
            continue
        for path in sorted(folder.glob("*.abc")):
            for index, tune in enumerate(split_abc(path.read_text(encoding="utf-8", errors="replace"))):
                items.append(CorpusItem(f"{source}/{path.stem}/{index}", source, "abc", text=tune))
    return items


def tempo_from_text(text: str, default: str = "moderate") -> str:
    """Tempo class from an ABC header: a Q: metronome mark, else tempo or dance words."""
    for line in text.splitlines():
        match = re.match(r"^Q:\s*(?:\d+/\d+\s*=\s*)?(\d+)", line)
        if match:
            return tokens.tempo_class(float(match.group(1)))
    header = " ".join(line[2:] for line in text.splitlines() if line[:2] in ("N:", "R:", "T:")).lower()
    for tempo, words in TEMPO_WORDS:
        if any(re.search(rf"\b{re.escape(w)}", header) for w in words):
            return tempo
    return default


def _key_of(score: Any, part: Any) -> tuple[int, str]:
    from music21 import key as m21key

    declared = next(iter(part.recurse().getElementsByClass(m21key.Key)), None)
    found = declared if declared is not None else score.analyze("key")
    mode = tokens.MODE_ALIASES.get(str(found.mode).lower(), "major")
    return found.tonic.pitchClass, mode


def _measures(part: Any) -> list[tuple[str, float, list[tuple[float, int, float, bool]]]]:
    """(meter, measure length in beats, [(offset, top pitch, length, tied-on)]) per written measure."""
    from music21 import meter as m21meter
    from music21 import stream

    out = []
    current = None
    for measure in part.getElementsByClass(stream.Measure):
        ts = measure.timeSignature or next(iter(measure.getElementsByClass(m21meter.TimeSignature)), None)
        if ts is not None:
            current = ts.ratioString
        if current is None:
            current = "4/4"
        notes = []
        for n in measure.flatten().notes:
            if n.duration.isGrace or n.quarterLength <= 0:
                continue
            pitch = max(p.midi for p in n.pitches)
            tied_on = n.tie is not None and n.tie.type in ("stop", "continue")
            notes.append((float(n.offset), pitch, float(n.quarterLength), tied_on))
        out.append((current, float(measure.duration.quarterLength), notes))
    return out


def _segments(part: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Note dicts (absolute beats, one bar per measure) per stretch of constant meter.

    A short first measure is a pickup and is right-aligned in its bar; two consecutive short measures that add up
    to a bar (a section's last bar and the next section's pickup) share one bar; notes overflowing a measure
    are dropped; same-pitch notes joined by a tie are merged; measures in unsupported meters are skipped.
    """
    segments: list[tuple[str, list[dict[str, Any]]]] = []
    meter, notes, bar = None, [], 0
    measures = _measures(part)
    i = 0
    while i < len(measures):
        m_meter, length, m_notes = measures[i]
        if m_meter not in tokens.METERS:  # odd meters (often parse artefacts of one measure) are skipped
            i += 1
            continue
        if m_meter != meter:
            if meter is not None and notes:
                segments.append((meter, notes))
            meter, notes, bar = m_meter, [], 0
        bar_beats = tokens.bar_ticks(m_meter) / tokens.TICKS_PER_BEAT
        placed = [(bar_beats - length if bar == 0 and length < bar_beats else 0.0, m_notes)]
        if bar > 0 and length < bar_beats and i + 1 < len(measures):
            n_meter, n_length, n_notes = measures[i + 1]
            if n_meter == m_meter and abs(length + n_length - bar_beats) < 1e-6:
                placed.append((length, n_notes))
                i += 1
        for shift, group in placed:
            for offset, pitch, dur, tied_on in group:
                start = shift + offset
                if start >= bar_beats - 1e-9:
                    continue
                dur = min(dur, bar_beats - start)
                absolute = bar * bar_beats + start
                last = notes[-1] if notes else None
                joins = last is not None and abs(last["start"] + last["duration"] - absolute) < 1e-6
                if tied_on and joins and last["pitch"] == pitch:
                    last["duration"] += dur
                else:
                    notes.append({"part": "melody", "pitch": pitch, "start": absolute, "duration": dur})
        bar += 1
        i += 1
    if meter is not None and notes:
        segments.append((meter, notes))
    return segments


def part_records(
    score: Any, part: Any, base: dict[str, Any], tempo: str, part_name: str, min_bars: int = 2
) -> list[dict[str, Any]]:
    tonic, mode = _key_of(score, part)
    records = []
    for index, (meter, notes) in enumerate(_segments(part)):
        events = tokens.quantise(notes, meter, part=None)
        bars = tokens.bar_count(events)
        if bars < min_bars:
            continue
        records.append({
            **base,
            "id": base["id"] + (f"#{index}" if index else "") + ("" if part_name == "melody" else f":{part_name}"),
            "tonic": tonic, "mode": mode, "meter": meter, "tempo": tempo, "part": part_name, "bars": bars,
            "events": [[e.bar, e.pos, e.pitch, e.dur] for e in events],
        })
    return records


def parse_item(item: CorpusItem) -> dict[str, Any]:
    """Parse one item into records; never raises (a bad tune is counted, not fatal)."""
    try:
        from music21 import converter

        # parseData: text is always data (converter.parse would open a path or fetch a URL the text names);
        # forceSource: music21 would otherwise load (and write) pickles in the shared $TMPDIR/music21, where anyone
        # could plant one that runs code when it is unpickled
        if item.kind == "abc":
            score = converter.parseData(item.text, format="abc")
            parts = list(score.parts) if score.hasPartLikeStreams() else [score]
            title = score.metadata.title if score.metadata else ""
            base = {"id": item.id, "source": item.source, "title": title or ""}
            records = part_records(score, parts[0], base, tempo_from_text(item.text), "melody")
        else:
            score = converter.parse(item.path, forceSource=True)
            parts = list(score.parts)
            if len(parts) < 4:
                return {"id": item.id, "records": [], "error": "not a four-part chorale"}
            title = score.metadata.title if score.metadata else ""
            base = {"id": item.id, "source": item.source, "title": title or Path(item.path).stem}
            records = part_records(score, parts[0], base, "slow", "melody")
            records += part_records(score, parts[-1], base, "slow", "bass")
        return {"id": item.id, "records": records}
    except Exception as exc:  # music21 raises many kinds of errors on odd transcriptions
        return {"id": item.id, "records": [], "error": f"{type(exc).__name__}: {exc}"[:200]}


class RecordCache:
    """Parsed records per item, in one JSON-lines file (appended as items finish)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = parse_json(line, path.name)
                except BadInputError:
                    continue  # a line cut short by an interrupted build
                if isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(
                        entry.get("result"), dict):
                    self._entries[entry["key"]] = entry["result"]

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def put(self, key: str, result: dict[str, Any]) -> None:
        """Remember a result, appended to the file; a line cut short (a kill, a full disk) is skipped on reading,
        and a cache that cannot be written only costs a parse next time."""
        self._entries[key] = result
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "result": result}) + "\n")
        except OSError as exc:
            log.warning("could not add to the tune cache %s (%s)", self.path, exc.strerror or exc)


def parse_corpus(
    items: list[CorpusItem],
    cache: RecordCache,
    workers: int = 2,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each item's result (from the cache or parsed by ``workers`` processes, at most 2)."""
    keys = [item.cache_key() for item in items]
    todo = [(item, key) for item, key in zip(items, keys, strict=True) if cache.get(key) is None]
    done = len(items) - len(todo)
    for key in keys:
        hit = cache.get(key)
        if hit is not None:
            yield hit
    if on_progress:
        on_progress(done, len(items), done)
    workers = max(1, min(2, workers))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for (_, key), result in zip(todo, pool.map(parse_item, [i for i, _ in todo], chunksize=8), strict=True):
            cache.put(key, result)
            done += 1
            if on_progress:
                on_progress(done, len(items), len(items) - len(todo))
            yield result


def read_abc(path: Path) -> list[dict[str, Any]]:
    """A user's ABC file -> records (one per tune and meter stretch); a clear BadInputError otherwise."""
    require_music21()
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path.name}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{path.name} is not a text file: ABC files are plain UTF-8 text") from None
    tunes = split_abc(text) if re.search(r"^X:", text, flags=re.MULTILINE) else [text]
    records: list[dict[str, Any]] = []
    errors: list[str] = []
    for index, tune in enumerate(tunes):
        result = parse_item(CorpusItem(f"user/{path.stem}/{index}", "user", "abc", text=tune))
        records += result["records"]
        if "error" in result:
            errors.append(result["error"])
    if not records:
        reason = f" ({errors[0]})" if errors else ""
        raise BadInputError(f"{path.name} holds no readable ABC tune with notes{reason}")
    return records
