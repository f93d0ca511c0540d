"""Text for the copy models: the user's example lines (TXT/CSV), the Debian product-description corpus, and
the word list that the constrained decoder uses to end lines only on whole words.

Bad input gets a sentence, not a traceback: too few examples, binary files, unknown encodings. Files over
``SAMPLE_ABOVE_BYTES`` are not refused: they are read as a stream and a seeded random sample of
``MAX_EXAMPLES`` lines is kept (reservoir sampling), and the result says so.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import random
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from studio.core.copy_brief import WORD_RE
from studio.core.errors import BadInputError
from studio.core.formats.json_file import parse_json
from studio.core.formats.text import read_text
from studio.core.safe_write import write_atomic

MIN_EXAMPLES = 10
MAX_EXAMPLES = 20_000
SAMPLE_ABOVE_BYTES = 100 << 20
MAX_LINE_CHARS = 600
TEXT_COLUMNS = ("text", "copy", "example", "line", "headline", "description", "ad", "body", "primary text")


@dataclass(frozen=True)
class TrainingText:
    lines: list[str]
    source: str
    total: int  # usable lines found in the file
    sampled: bool  # True when the file was too large and ``lines`` is a random sample of it
    skipped: int  # lines dropped (blank, too long, duplicates)

    @property
    def message(self) -> str:
        note = f"{len(self.lines)} example lines from {self.source}"
        if self.sampled:
            note += f" (a random sample of {self.total:,}: the file is over {SAMPLE_ABOVE_BYTES >> 20} MB)"
        if self.skipped:
            note += f"; {self.skipped} blank, duplicate or over-long lines skipped"
        return note


def _decoded_lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded as UTF-8 (BOM optional) or UTF-16 (with BOM); a clear error otherwise."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        with open(path, encoding=encoding, errors="strict", newline="") as fh:
            for line in fh:
                if "\x00" in line:
                    raise BadInputError(f"{path.name} looks like a binary file, not text")
                yield line
    except UnicodeDecodeError:
        raise BadInputError(
            f"{path.name} is not UTF-8 or UTF-16 text (binary file or unknown encoding); save it as UTF-8"
        ) from None


def _csv_rows(path: Path) -> Iterator[str]:
    """One example per CSV row: the column named like ``text``/``headline`` if the header has one, else the
    row's non-empty cells joined by spaces."""
    reader = csv.reader(_decoded_lines(path))
    column: int | None = None
    for n, row in enumerate(reader):
        if n == 0:
            names = [cell.strip().lower() for cell in row]
            known = [i for i, name in enumerate(names) if name in TEXT_COLUMNS]
            if known:
                column = known[0]
                continue
        if column is not None:
            yield row[column] if column < len(row) else ""
        else:
            yield " ".join(cell.strip() for cell in row if cell.strip())


def _raw_examples(path: Path) -> Iterator[str]:
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(path)
    else:
        yield from _decoded_lines(path)


def read_training_lines(path: Path, seed: int = 0, min_examples: int = MIN_EXAMPLES) -> TrainingText:
    """Example lines from a TXT (one per line) or CSV (one per row) file."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path.name}: no such file")
    if path.is_dir():
        raise BadInputError(f"{path} is a folder; give a .txt or .csv file with one example per line")
    size = path.stat().st_size
    sample = size > SAMPLE_ABOVE_BYTES
    rng = random.Random(seed)
    seen: set[str] = set()
    kept: list[str] = []
    total = skipped = 0
    for raw in _raw_examples(path):
        line = " ".join(raw.split())
        if not line or len(line) > MAX_LINE_CHARS or (not sample and line in seen):
            skipped += 1
            continue
        total += 1
        if not sample:
            seen.add(line)
            kept.append(line)
        elif len(kept) < MAX_EXAMPLES:
            kept.append(line)
        else:
            slot = rng.randrange(total)
            if slot < MAX_EXAMPLES:
                kept[slot] = line
    if len(kept) > MAX_EXAMPLES:
        kept = rng.sample(kept, MAX_EXAMPLES)
        sample = True
    if len(kept) < min_examples:
        raise BadInputError(
            f"{path.name} has {len(kept)} usable example line(s); need at least {min_examples} "
            "(one example per line, or per row of a CSV) to learn a style"
        )
    return TrainingText(kept, path.name, total, sample, skipped)


def split_held_out(lines: list[str], fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, held-out), shuffled with ``seed``; at least two lines are held out."""
    order = list(lines)
    random.Random(seed).shuffle(order)
    n_held = max(2, round(len(order) * fraction))
    return order[n_held:], order[:n_held]


# --- Debian product descriptions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageBlurb:
    package: str
    synopsis: str
    blurb: str  # the first paragraph of the long description, joined into one line
    features: tuple[str, ...] = ()  # the long description's bullet points, one line each


BULLET = re.compile(r"^\s+[*+o-]\s+(\S.*)$")  # "  * item", "  - item", "  o item" (the description's lists)


def parse_translations(text: Iterable[str]) -> Iterator[PackageBlurb]:
    """Records of an apt ``Translation-en`` file: ``Package``, ``Description-en`` (synopsis), then the long
    description as lines starting with a space (`` .`` separates paragraphs)."""
    package = synopsis = ""
    paragraph: list[str] = []
    bullets: list[str] = []
    in_first = True

    def flush() -> PackageBlurb | None:
        if package and synopsis and paragraph:
            return PackageBlurb(package, synopsis, " ".join(paragraph), tuple(bullets))
        return None

    for raw in text:
        line = raw.rstrip("\n")
        if not line.strip():
            record = flush()
            if record:
                yield record
            package, synopsis, paragraph, bullets, in_first = "", "", [], [], True
        elif line.startswith("Package:"):
            package = line.split(":", 1)[1].strip()
        elif line.startswith("Description-en:"):
            synopsis = line.split(":", 1)[1].strip()
        elif line.startswith(" ") and synopsis:
            body = line[1:].strip()
            bullet = BULLET.match(line)
            wrapped = not bullet and bullets and line.startswith("    ") and body != "."  # a bullet's next line
            if bullet:
                bullets.append(bullet.group(1).strip())
            elif wrapped:
                bullets[-1] += " " + body
            elif body == ".":
                in_first = False if paragraph else in_first
            elif in_first:
                paragraph.append(body)
    record = flush()
    if record:
        yield record


def fetch_translation_lists(lists_dir: Path) -> list[Path]:
    """Run ``apt-get update`` into ``lists_dir`` (English descriptions only); returns the Translation files."""
    lists_dir = Path(lists_dir)
    (lists_dir / "partial").mkdir(parents=True, exist_ok=True)
    command = ["apt-get", "update", "-o", f"Dir::State::Lists={lists_dir}", "-o", "Acquire::Languages=en"]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise BadInputError("apt-get is not available: build the corpus on a Debian or Ubuntu system") from None
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise BadInputError(f"apt-get update failed ({tail[0]}); it needs root and the package registry") from None
    return sorted(lists_dir.glob("*Translation-en*"))


def read_translation_file(path: Path) -> str:
    """Decompress one apt list file with apt's own helper (lz4, xz, gz: whatever apt stored)."""
    result = subprocess.run(
        ["/usr/lib/apt/apt-helper", "cat-file", str(path)], check=True, capture_output=True, text=True
    )
    return result.stdout


def build_debian_corpus(out: Path, lists_dir: Path, fetch: bool = True) -> int:
    """Write one JSON line per package (``package``, ``synopsis``, ``blurb``), duplicates removed."""
    files = fetch_translation_lists(lists_dir) if fetch else sorted(Path(lists_dir).glob("*Translation-en*"))
    if not files:
        raise BadInputError(f"no Translation-en lists in {lists_dir}; run without --no-fetch to download them")
    seen: set[str] = set()

    def write(fh: BinaryIO) -> None:
        for path in files:
            for record in parse_translations(io.StringIO(read_translation_file(path))):
                if record.blurb not in seen:
                    seen.add(record.blurb)
                    fh.write((json.dumps(asdict(record), ensure_ascii=False) + "\n").encode("utf-8"))

    write_atomic(Path(out), write, f"the corpus {Path(out).name}")
    return len(seen)


def read_debian_corpus(path: Path) -> list[PackageBlurb]:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path} does not exist: build it with `studio data copy --out {path}`")
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        data = parse_json(line, f"{path.name}, line {number}") if line.strip() else None
        if data is None:
            continue
        fields = [data.get(key) for key in ("package", "synopsis", "blurb")] if isinstance(data, dict) else []
        if len(fields) != 3 or not all(isinstance(value, str) for value in fields):
            raise BadInputError(f"{path.name}, line {number}: not a package description (package, synopsis, blurb)")
        features = data.get("features", [])  # corpora written before bullet points were kept have none
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise BadInputError(f"{path.name}, line {number}: features must be a list of texts")
        records.append(PackageBlurb(*fields, tuple(features)))
    return records


def debian_items(records: list[PackageBlurb], samples: int, held_out: int, seed: int = 0,
                 max_chars: int = 300) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(train, held-out) LoRA items: the blurb-format request for a brief made of the package's name and
    synopsis, answered by its blurb (only blurbs that fit the blurb format's limit)."""
    from studio.core.copy_brief import brief_from_dict
    from studio.core.copy_formats import field_counts, generation_format
    from studio.core.copy_prompts import first_request

    fmt = generation_format("blurb")
    count = field_counts(fmt)["blurb"]
    usable = [r for r in records if 40 <= len(r.blurb) <= max_chars]
    if len(usable) < held_out + 10:
        raise BadInputError(f"the corpus has {len(usable)} usable blurbs; need at least {held_out + 10}")
    random.Random(seed).shuffle(usable)
    chosen = usable[: held_out + samples]

    def item(record: PackageBlurb) -> tuple[str, list[str]]:
        brief = brief_from_dict({"product": record.package, "features": [record.synopsis]})
        return first_request(brief, fmt, "none", "blurb", count), [record.blurb]

    return [item(r) for r in chosen[held_out:]], [item(r) for r in chosen[:held_out]]


# --- word list for whole-word line endings ------------------------------------------------------------------------

_CORPUS_WORD = re.compile(r"^[a-z0-9]*[a-z][a-z0-9]*$")
#: Short words kept; other one- and two-letter entries of spelling lists are mostly abbreviations ("gi", "ni", "pc")
#: that would let a line end on what is really the start of a longer word ("Rise to the Pc").
SHORT_WORDS = frozenset({
    "a", "i", "ad", "am", "an", "as", "at", "be", "by", "do", "ex", "go", "he", "hi", "if", "in", "is", "it",
    "me", "my", "no", "of", "oh", "ok", "on", "or", "ox", "so", "to", "tv", "up", "us", "we", "3d",
})
#: Proper names a spelling list capitalises that ad copy uses like common words.
CALENDAR_WORDS = frozenset({
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march",
    "april", "may", "june", "july", "august", "september", "october", "november", "december", "christmas",
    "easter", "halloween", "thanksgiving", "english", "spanish", "french", "german", "italian", "american",
    "british", "european", "internet",
})
#: Modern words the 2020 spelling list lacks.
MODERN_WORDS = frozenset({
    "ebook", "ebooks", "wifi", "skincare", "eco", "signup", "bluetooth", "cybersecurity", "onboarding", "app",
    "apps", "emails", "podcasts", "livestream", "roguelike", "roguelikes", "coop", "esports",
})


def build_lexicon(wordlist: Path, corpus: Iterable[str], out: Path, min_count: int = 10) -> int:
    """Case-folded words of a spelling list (e.g. Debian's SCOWL ``american-english``) that the list writes in lower
    case (its capitalised entries are proper names: "Fromm", "Aorta"), plus :data:`CALENDAR_WORDS`,
    :data:`MODERN_WORDS` and the words of three letters or more that ``corpus`` uses at least ``min_count`` times.
    Words of one or two letters are kept only from :data:`SHORT_WORDS`. Written gzip, one word a line."""
    found: set[str] = set(CALENDAR_WORDS | MODERN_WORDS)
    for line in _decoded_lines(Path(wordlist)):
        found.update(w for w in WORD_RE.findall(line) if w == w.casefold())
    counts: Counter[str] = Counter()
    for text in corpus:
        counts.update(w.casefold() for w in WORD_RE.findall(text))
    found.update(w for w, n in counts.items() if n >= min_count and 3 <= len(w) <= 20 and _CORPUS_WORD.match(w))
    found = {w for w in found if len(w) > 2 or w in SHORT_WORDS}
    return _write_words(found, Path(out))


def build_names(wordlist: Path, out: Path) -> int:
    """The capitalised entries of a spelling list (proper names: "Spain", "Fromm"), possessives folded into the
    name. The copy checks accept them as words when a line writes them capitalised; the decoder never spells
    them (only the brief's own names)."""
    found: set[str] = set()
    for line in _decoded_lines(Path(wordlist)):
        for w in WORD_RE.findall(line):
            if w != w.casefold() and w[0].isupper():
                found.add(w[:-2] if w.endswith("'s") else w)
    return _write_words(found, Path(out))


def _write_words(found: set[str], out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(sorted(found)) + "\n").encode("utf-8")
    # mtime 0: the same input gives the same bytes
    write_atomic(Path(out), gzip.compress(data, compresslevel=9, mtime=0), f"the word list {Path(out).name}")
    return len(found)
