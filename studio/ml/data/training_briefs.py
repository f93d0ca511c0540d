"""Briefs to practise on: the self-training of the copy model (:mod:`studio.ml.train.copy_selftrain`) writes ads
for many briefs that no user gave, and keeps the lines that pass every check.

Two sources, both offline:

* **Debian packages** (the corpus of ``studio data copy``): the package is the product, the bullet points of its
  long description are the features, the short description says what it is. Libraries, development files and
  other packages no one would advertise are left out, and so are bullet lists that are file formats or option
  names rather than features.
* **Variations of the development briefs** (``resources/briefs/dev``): other feature subsets, tones, must-use
  and banned words, so the model sees the same products asked for in many ways. The test briefs are never used.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from studio.core.copy_brief import Brief, brief_from_dict, words
from studio.core.errors import BadInputError
from studio.ml.data.copy_text import PackageBlurb
from studio.ml.sampling.lexicon import load_lexicon

TONES = ("friendly and clear", "playful", "confident", "warm", "professional", "bold", "calm and reassuring",
         "upbeat", "straightforward", "witty", "premium", "down-to-earth")
#: Words advertisers often ban (superlatives and claims that need proof); a brief bans none, one or two.
OFTEN_BANNED = ("best", "cheap", "free", "guaranteed", "amazing", "ultimate", "revolutionary", "perfect",
                "number one", "world-class")
#: Packages no one would advertise: by the start of their name, and by words of their short description.
NOT_PRODUCTS = ("lib", "python3-", "python-", "ruby-", "golang-", "node-", "r-cran-", "r-bioc-", "haskell-", "php-",
                "perl-", "texlive-", "fonts-", "gir1.2-", "librust-", "elpa-", "jruby", "firmware-", "linux-")
NOT_PRODUCT_WORDS = frozenset({
    "library", "libraries", "development", "debug", "symbols", "transitional", "dummy", "documentation", "module",
    "modules", "bindings", "binding", "headers", "header", "plugin", "plugins", "metapackage", "shared", "runtime",
    "data", "extension", "extensions", "static", "api", "perl", "python", "ruby", "haskell", "java", "ocaml",
    "crate", "dev", "kernel", "driver", "drivers", "test", "tests", "files", "common", "dbg",
})
#: Who a package is for, guessed from the words of its short description (none: anyone).
AUDIENCES = (
    ({"game", "puzzle", "arcade", "strategy", "chess", "shooter", "racing", "rpg"}, "players who like a challenge"),
    ({"photo", "photos", "image", "images", "painting", "drawing", "graphics"}, "photographers and artists"),
    ({"music", "audio", "sound", "mp3", "player", "synthesizer", "drum"}, "music lovers and home producers"),
    ({"video", "movie", "movies", "subtitles", "dvd"}, "video makers"),
    ({"email", "mail", "chat", "irc", "messaging", "feed", "news"}, "people who stay in touch online"),
    ({"backup", "sync", "file", "files", "disk", "archive"}, "anyone with files they cannot lose"),
    ({"editor", "text", "writing", "notes", "document", "documents", "office", "spreadsheet"},
     "writers and office workers"),
    ({"learning", "education", "teaching", "children", "kids", "typing", "math"}, "teachers, parents and students"),
    ({"network", "server", "monitoring", "security", "firewall", "vpn"}, "small IT teams"),
    ({"map", "maps", "gps", "astronomy", "weather", "science"}, "curious minds"),
)


def _brief(fields: dict) -> Brief:
    """The brief, or, when its random banned words cover the product's own name ("free" in "Freeradius"), the
    brief without them."""
    try:
        return brief_from_dict(fields)
    except BadInputError:
        return brief_from_dict({**fields, "banned": []})


def _product_name(package: str) -> str:
    """``gnome-chess`` -> ``Gnome Chess``: a package name as a product would be written."""
    return " ".join(part[:1].upper() + part[1:] for part in package.replace("_", "-").split("-") if part)


def _feature(text: str, lexicon: frozenset[str] | object) -> str | None:
    """A bullet point as a brief's feature, or None when it is no feature (a format name, a command, a file)."""
    text = text.strip().rstrip(".;,:").strip()
    found = words(text)
    if not 12 <= len(text) <= 60 or len(found) < 2 or any(c in text for c in "/=<>()[]{}_@#|\\"):
        return None
    if sum(1 for w in found if w in lexicon) < 0.8 * len(found):  # mostly plain words, not option names
        return None
    return text[:1].lower() + text[1:] if not text[:2].isupper() else text


def _audience(text: str) -> str:
    found = set(words(text))
    return next((who for keys, who in AUDIENCES if found & keys), "")


def _banned(rng: random.Random, avoid: str) -> list[str]:
    allowed = [w for w in OFTEN_BANNED if w not in words(avoid)]
    chosen = rng.sample(allowed, rng.choice((0, 1, 1, 2)))
    return [f"{w}*" if rng.random() < 0.25 and " " not in w else w for w in chosen]


def _must_use(rng: random.Random, features: Sequence[str], lexicon: object, banned: Sequence[str]) -> list[str]:
    """Half the briefs ask for one word of their features (4 to 12 letters, a dictionary word, not banned)."""
    if rng.random() < 0.5:
        return []
    stems = {b.rstrip("*") for b in banned}
    found = [w for f in features for w in words(f) if 4 <= len(w) <= 12 and w in lexicon and w not in stems]
    return [rng.choice(found)] if found else []


def _usable(records: Sequence[PackageBlurb]) -> list[tuple[PackageBlurb, list[str]]]:
    """(record, its usable features) of packages worth advertising with at least two usable bullet points, one
    per product (the ``-dev`` and ``-data`` siblings share their bullets)."""
    lexicon = load_lexicon()
    seen: set[tuple[str, ...]] = set()
    found = []
    for record in records:
        if record.package.startswith(NOT_PRODUCTS) or set(words(record.synopsis)) & NOT_PRODUCT_WORDS:
            continue
        features = [f for f in (_feature(b, lexicon) for b in record.features) if f]
        if len(features) < 2 or tuple(features) in seen:
            continue
        seen.add(tuple(features))
        found.append((record, features))
    return found


def usable_packages(records: Sequence[PackageBlurb]) -> list[PackageBlurb]:
    """The records :func:`debian_briefs` can make a brief of (a corpus cut down to them gives the same briefs)."""
    return [record for record, _ in _usable(records)]


def debian_briefs(records: Sequence[PackageBlurb], count: int, seed: int = 0) -> list[Brief]:
    """Up to ``count`` briefs from the :func:`usable_packages` of ``records``."""
    lexicon = load_lexicon()
    rng = random.Random(seed)
    found = _usable(records)
    rng.shuffle(found)
    briefs = []
    for record, features in found[:count]:
        features = rng.sample(features, min(len(features), rng.choice((2, 3, 3, 4))))
        product = _product_name(record.package)
        banned = _banned(rng, " ".join((product, *features)))
        briefs.append(_brief({
            "product": product, "features": features, "audience": _audience(record.synopsis),
            "tone": rng.choice(TONES), "must_use": _must_use(rng, features, lexicon, banned), "banned": banned,
        }))
    return briefs


def varied_briefs(briefs: Sequence[Brief], count: int, seed: int = 0) -> list[Brief]:
    """``count`` variations of ``briefs``: a subset of the features in another order, another tone, other
    must-use and banned words; the product and the audience stay."""
    if not briefs:
        return []
    lexicon = load_lexicon()
    rng = random.Random(seed)
    found = []
    for n in range(count):
        brief = briefs[n % len(briefs)]
        features = rng.sample(list(brief.features), max(1, len(brief.features) - rng.choice((0, 0, 1))))
        banned = _banned(rng, " ".join((brief.product, *features, *brief.must_use)))
        must_use = list(brief.must_use) if rng.random() < 0.5 else _must_use(rng, features, lexicon, banned)
        found.append(_brief({
            "product": brief.product, "features": features, "audience": brief.audience, "tone": rng.choice(TONES),
            "must_use": must_use, "banned": banned,
        }))
    return found
