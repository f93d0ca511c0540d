"""Prompts for ad copy, rendered from editable templates in ``resources/prompts`` (see its README).

A template copied to ``<data folder>/prompts/`` with the same relative path overrides the bundled one.
"""

from __future__ import annotations

import string
from pathlib import Path

from studio.core import paths
from studio.core.ad_formats import AdFormat
from studio.core.copy_brief import Brief
from studio.core.copy_plan import Angle
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


def _values(brief: Brief, fmt: AdFormat | None, framework: str) -> dict[str, object]:
    return {
        "product": brief.product,
        "features": "\n".join(f"- {f}" for f in brief.features) or "- (none given)",
        "audience": brief.audience or "anyone",
        "tone": brief.tone or "friendly and clear",
        "must_use": ", ".join(brief.must_use) or "(none)",
        "banned": ", ".join(brief.banned) or "(none)",
        "format_title": fmt.title if fmt else "",
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


# --- one line per slot (the planned, over-generated copy) ---------------------------------------------------------

#: Which few-shot examples (``slots/examples/<kind>.txt``) teach each field.
EXAMPLE_KINDS = {"headline": "headline", "tagline": "headline", "path": "headline", "description": "description",
                 "primary": "description", "blurb": "description", "subject": "subject"}


def slot_brief(brief: Brief) -> str:
    values = {**_values(brief, None, "none"), "features_inline": "; ".join(brief.features) or "(none)"}
    return render("slots/brief.txt", values)


def slot_request(brief: Brief, fmt: AdFormat, field: str, angle: Angle) -> str:
    limit = fmt.field(field).limit
    values = {**_values(brief, fmt, "none"), "angle": angle.instruction(brief.product), "limit": limit,
              "words": max(2, round(limit / 6.5)), "field": field}
    return render(f"slots/{fmt.name}.{field}.txt", values)


def _example_blocks(kind: str) -> list[dict[str, str]]:
    path = template_path(f"slots/examples/{kind}.txt")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"the few-shot examples {path} cannot be read ({exc})") from None
    blocks = []
    for chunk in text.split("\n\n"):
        entry = {}
        for line in chunk.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            entry[key.strip()] = value.strip()
        if entry:
            missing = {"product", "angle", "line"} - set(entry)
            if missing:
                raise BadInputError(f"{path}: an example lacks {', '.join(sorted(missing))}")
            blocks.append(entry)
    return blocks


def slot_examples(fmt: AdFormat, field: str) -> list[tuple[str, str]]:
    """(user message, the line a copywriter would answer) for each few-shot example of this field's kind."""
    from studio.core.copy_brief import brief_from_dict

    found = []
    for entry in _example_blocks(EXAMPLE_KINDS.get(field, "headline")):
        brief = brief_from_dict({"product": entry["product"], "audience": entry.get("audience", ""),
                                 "tone": entry.get("tone", ""),
                                 "features": [f.strip() for f in entry.get("features", "").split(";") if f.strip()]})
        kind, _, text = entry["angle"].partition(":")
        angle = Angle(kind.strip(), text.strip() or (brief.product if kind.strip() == "product" else ""))
        found.append((slot_brief(brief) + "\n\n" + slot_request(brief, fmt, field, angle), entry["line"]))
    return found


def slot_messages(brief: Brief, fmt: AdFormat, field: str, angle: Angle,
                  framework: str = "none") -> list[dict[str, str]]:
    """The chat for one slot: system, the few-shot turns, then the brief, the framework and the request for this
    angle (every slot of a brief shares the prompt up to the request)."""
    messages = [{"role": "system", "content": render("slots/system.txt", _values(brief, fmt, framework))}]
    for user, line in slot_examples(fmt, field):
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": line}]
    shared = slot_brief(brief) + "\n" + render(f"frameworks/{framework}.txt", _values(brief, fmt, framework))
    messages.append({"role": "user", "content": shared + "\n\n" + slot_request(brief, fmt, field, angle)})
    return messages
