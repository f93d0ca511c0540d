"""Measuring generated copy: limit compliance, banned words, cut words and duplicates (checked on the text,
independently of the decoder that was supposed to prevent them), and the wall time of a full Google RSA.

``studio eval copy`` and ``studio bench copy`` call these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from studio.core.ad_formats import AdFormat, char_count
from studio.core.copy_brief import Brief, find_banned, words
from studio.core.copy_formats import DEFAULT_COUNTS, generation_format
from studio.ml.sampling.constrained import normalise_line
from studio.ml.sampling.lexicon import NO_END_WORDS
from studio.ml.sampling.text import SamplingParams
from studio.ml.text.copywriter import CopyRequest, constraints_for, generate_ads
from studio.ml.text.lm import LanguageModel


def line_problems(line: str, limit: int, fmt: AdFormat, brief: Brief, known: Callable[[str], bool]) -> list[str]:
    """Why a generated line breaks a rule (empty when it is clean)."""
    found = []
    if char_count(line, fmt) > limit:
        found.append("over limit")
    if find_banned(line, brief.banned_patterns):
        found.append("banned word")
    line_words = words(line)
    if not line_words:
        found.append("no words")
    elif any(not (w.isdigit() or known(w)) for w in line_words):
        found.append("unknown or cut word")
    elif line_words[-1] in NO_END_WORDS:
        found.append("ends on a function word")
    if line != line.strip():
        found.append("stray whitespace")
    return found


def compliance(lm: LanguageModel, brief: Brief, format_name: str, lines_per_field: int = 200,
               framework: str = "none", seed: int = 0, variants: int = 8,
               cancel: Callable[[], None] | None = None) -> dict[str, Any]:
    """Generate until every field of the format has ``lines_per_field`` lines; report rule violations."""
    fmt = generation_format(format_name)
    constraints = constraints_for(lm, brief, fmt)
    known = constraints.lexicon.__contains__
    per_ad = DEFAULT_COUNTS[fmt.name]
    fields: dict[str, dict[str, Any]] = {
        name: {"lines": 0, "violations": 0, "over_limit": 0, "banned": 0, "cut_or_unknown": 0, "duplicates": 0,
               "max_chars": 0, "limit": fmt.field(name).limit, "examples": []}
        for name in per_ad
    }
    seen: dict[str, set[str]] = {name: set() for name in per_ad}
    started = time.perf_counter()
    round_ = 0
    for name, count in per_ad.items():  # field by field, so a field with few lines per ad is not slow to fill
        stats = fields[name]
        while stats["lines"] < lines_per_field:
            needed = -(-(lines_per_field - stats["lines"]) // count)  # ads still needed, rounded up
            request = CopyRequest(brief, fmt, framework, {name: count}, min(variants, needed),
                                  SamplingParams(0.8, 0.95), seed=seed + round_ * variants)
            round_ += 1
            for ad in generate_ads(lm, request, cancel=cancel):
                for line in ad[name][: lines_per_field - stats["lines"]]:
                    stats["lines"] += 1
                    stats["max_chars"] = max(stats["max_chars"], char_count(line, fmt))
                    problems = line_problems(line, stats["limit"], fmt, brief, known)
                    stats["violations"] += bool(problems)
                    stats["over_limit"] += "over limit" in problems
                    stats["banned"] += "banned word" in problems
                    stats["cut_or_unknown"] += "unknown or cut word" in problems
                    key = normalise_line(line)
                    stats["duplicates"] += key in seen[name]
                    seen[name].add(key)
                    if len(stats["examples"]) < 5:
                        stats["examples"].append(line)
    for stats in fields.values():
        stats["compliance"] = 1.0 - stats["violations"] / max(1, stats["lines"])
    return {"format": fmt.name, "seconds": time.perf_counter() - started, "fields": fields}


def rsa_timing(lm: LanguageModel, brief: Brief, seeds: Iterable[int] = (0, 1, 2),
               framework: str = "aida") -> dict[str, Any]:
    """Wall time of one full Google RSA (15 headlines, 4 descriptions, 2 paths) per seed, after a warm-up run
    that builds the constraint tables (cached per brief)."""
    fmt = generation_format("google-rsa")
    counts = DEFAULT_COUNTS["google-rsa"]
    started = time.perf_counter()
    constraints_for(lm, brief, fmt)
    setup = time.perf_counter() - started
    runs = []
    for seed in seeds:
        tokens = [0]

        def count(payload: dict[str, Any], tokens: list[int] = tokens) -> None:
            tokens[0] += not payload["done"]

        request = CopyRequest(brief, fmt, framework, counts, 1, SamplingParams(0.7, 0.9), seed=seed)
        started = time.perf_counter()
        ad = generate_ads(lm, request, on_partial=count)[0]
        runs.append({"seed": seed, "seconds": time.perf_counter() - started, "tokens": tokens[0],
                     "lines": sum(len(v) for v in ad.values()), "ad": ad})
    seconds = sorted(r["seconds"] for r in runs)
    return {"setup_seconds": setup, "median_seconds": seconds[len(seconds) // 2], "runs": runs}
