"""Prompts for ad copy, rendered from editable templates in ``resources/prompts`` (see its README).

A template copied to ``<data folder>/prompts/`` with the same relative path overrides the bundled one.
"""

from __future__ import annotations

import string
from pathlib import Path

from studio.core import paths
from studio.core.ad_formats import AdFormat
from studio.core.copy_brief import Brief
from studio.core.errors import BadInputError

FRAMEWORK_TITLES = {"none": "no framework", "aida": "AIDA", "pas": "PAS", "bab": "BAB", "fab": "FAB", "4p": "4P"}


def template_path(relative: str) -> Path:
    user = paths.data_dir() / "prompts" / relative
    return user if user.is_file() else paths.resources_dir() / "prompts" / relative


def render(relative: str, values: dict[str, object]) -> str:
    """Fill one template; a missing file or an unknown placeholder is reported with the file's name."""
    path = template_path(relative)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"the prompt template {relative} is missing (looked in {path.parent})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"the prompt template {path} cannot be read ({exc})") from None
    try:
        return string.Template(text).substitute(values).strip()
    except KeyError as exc:
        known = ", ".join(f"${k}" for k in sorted(values))
        raise BadInputError(f"{path}: unknown placeholder ${exc.args[0]} (available: {known})") from None
    except ValueError as exc:
        raise BadInputError(f"{path}: {exc} (write $$ for a dollar sign)") from None


def _values(brief: Brief, fmt: AdFormat, framework: str) -> dict[str, object]:
    return {
        "product": brief.product,
        "features": "\n".join(f"- {f}" for f in brief.features) or "- (none given)",
        "audience": brief.audience or "anyone",
        "tone": brief.tone or "friendly and clear",
        "must_use": ", ".join(brief.must_use) or "(none)",
        "banned": ", ".join(brief.banned) or "(none)",
        "format_title": fmt.title,
        "framework_title": FRAMEWORK_TITLES.get(framework, framework.upper()),
    }


def system_message(brief: Brief, fmt: AdFormat, framework: str) -> str:
    return render("system.txt", _values(brief, fmt, framework))


def field_request(brief: Brief, fmt: AdFormat, framework: str, field: str, count: int) -> str:
    spec = fmt.field(field)
    values = {**_values(brief, fmt, framework), "count": count, "limit": spec.limit, "field": field}
    return render(f"fields/{fmt.name}.{field}.txt", values)


def first_request(brief: Brief, fmt: AdFormat, framework: str, field: str, count: int) -> str:
    """The brief, the format, the framework and the request for the first field, as one user message."""
    values = _values(brief, fmt, framework)
    parts = [
        render("brief.txt", values),
        render(f"formats/{fmt.name}.txt", values),
        render(f"frameworks/{framework}.txt", values),
        field_request(brief, fmt, framework, field, count),
    ]
    return "\n\n".join(p for p in parts if p)
