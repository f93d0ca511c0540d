"""The formats ad copy is generated in: the editor's ad formats plus taglines and product blurbs.

Field names, limits and counts come from :mod:`studio.core.ad_formats` (the copy editor's source of truth); this
module adds the two generation-only formats and how many lines of each field one generated ad has.
"""

from __future__ import annotations

from collections.abc import Mapping

from studio.core.ad_formats import FORMATS, AdFormat, FieldSpec
from studio.core.errors import BadInputError

_EXTRA = (
    AdFormat("tagline", "Tagline / slogan", (FieldSpec("tagline", "Taglines", "T", 50, 1, None),)),
    AdFormat("blurb", "Product blurb", (FieldSpec("blurb", "Blurbs", "B", 300, 1, None),)),
)

GENERATION_FORMATS: dict[str, AdFormat] = {
    **{name: fmt for name, fmt in FORMATS.items() if all(f.limit is not None for f in fmt.fields)},
    **{fmt.name: fmt for fmt in _EXTRA},
}

#: Lines per field of one generated ad (a full Google RSA: 15 headlines, 4 descriptions, 2 paths).
DEFAULT_COUNTS: dict[str, dict[str, int]] = {
    "google-rsa": {"headline": 15, "description": 4, "path": 2},
    "meta": {"primary": 1, "headline": 3},
    "email": {"subject": 5},
    "tagline": {"tagline": 5},
    "blurb": {"blurb": 1},
}

FRAMEWORKS = ("none", "aida", "pas", "bab", "fab", "4p")


def generation_format(name: str) -> AdFormat:
    try:
        return GENERATION_FORMATS[name]
    except KeyError:
        known = ", ".join(GENERATION_FORMATS)
        raise BadInputError(f"unknown copy format {name!r}; choose one of {known}") from None


def check_framework(name: str) -> str:
    key = name.strip().lower()
    if key not in FRAMEWORKS:
        raise BadInputError(f"unknown framework {name!r}; choose one of {', '.join(FRAMEWORKS)}")
    return key


def field_counts(fmt: AdFormat, overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """Lines to generate per field, defaults overridden by ``overrides`` and checked against the format."""
    counts = dict(DEFAULT_COUNTS[fmt.name])
    for name, value in (overrides or {}).items():
        spec = fmt.field(name)
        value = int(value)
        top = spec.max_count if spec.max_count is not None else 50
        if not 0 <= value <= top:
            raise BadInputError(f"{fmt.title}: {spec.heading} can have 0 to {top} lines, not {value}")
        counts[name] = value
    if not any(counts.values()):
        raise BadInputError(f"{fmt.title}: nothing to generate (every field has 0 lines)")
    return counts
