"""``studio eval copy``: what a marketer would think of the copy, measured per brief and overall.

For every brief and format, one ad is written the way the app writes it (same generator, same defaults; after one
untimed warm-up ad per format, so times are those of a running app), then
every line is checked on its text (:mod:`studio.core.copy_checks`, independent of the decoder that was supposed to
prevent the failures) and scored by a judge model for fluency: the mean log-probability of the line's tokens (and
its end) after a fixed prompt holding the brief, the same prompt and the same judge (the base model) for every
system measured.

Sharing a word with the brief (on-brief) is a low bar: the generator keeps no line that fails it, and "Book Your
Visit Today" passes it for any brief that names a visit. So the judge also measures how *specific* each line is:
how much likelier its own brief makes it than other briefs of the set do (mean log-probability per token under
its own brief's prompt less the mean of that under the other briefs' prompts). A line that would fit any product
scores about 0; "Hot Towel Shaves at Fade & Co" scores well above.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.ad_formats import char_count
from studio.core.copy_brief import Brief, load_brief
from studio.core.copy_checks import BriefVocabulary, check_line, must_use_missing, normalised
from studio.core.copy_formats import DEFAULT_COUNTS, generation_format
from studio.core.errors import BadInputError
from studio.ml.sampling.text import SamplingParams
from studio.ml.text.copywriter import CopyRequest, write_ads
from studio.ml.text.scoring import continuation_logprobs, mean_logprob

DEFAULT_FORMATS = ("google-rsa", "meta", "email")
SCORING_SYSTEM = "You are an expert advertising copywriter."
#: Briefs a line's likelihood is compared against (the next ones of the set, in order).
OTHER_BRIEFS = 4
#: Margin (nats per token) over the other briefs above which a line counts as specific to its brief. Read in order
#: on six development briefs (RSA and Meta, 150 lines): the 10 lines under it were weak ("Cheerful on Saturday",
#: "Bake it to School", "Gentle with strong", "The Best Soundtrack for a Day", "Selling the Newest Food!" for a food
#: bank); just over it, on-topic but plain ("Donate Every Day" +1.35); the top named the product or a feature
#: ("Sourdough Baked Every Morning" +2.30). The margin grows with how unlike each other the briefs of a set are,
#: so compare systems on the same set only.
SPECIFIC_MARGIN = 1.0
#: Fields whose lines should speak about the brief (paths are keywords, counted apart).
PROSE_FIELDS = frozenset({"headline", "description", "primary", "subject", "tagline", "blurb"})


def brief_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if not found:
            raise BadInputError(f"{path} holds no brief (.json) files")
        return found
    if not path.exists():
        raise BadInputError(f"{path}: no such brief file or folder")
    return [path]


def scoring_prompt(lm: Any, brief: Brief) -> list[int]:
    lines = [f"Product: {brief.product}"]
    if brief.features:
        lines.append("Features: " + "; ".join(brief.features))
    if brief.audience:
        lines.append(f"Audience: {brief.audience}")
    if brief.tone:
        lines.append(f"Tone: {brief.tone}")
    messages = [{"role": "system", "content": SCORING_SYSTEM},
                {"role": "user", "content": "\n".join(lines) + "\nWrite one line of ad copy."}]
    return lm.tokenizer.encode(lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True), add_bos=False)


def fluency(lm: Any, brief: Brief, lines: Sequence[str]) -> list[float]:
    """Mean log-probability per token of each line (and its end-of-turn token) after :func:`scoring_prompt`."""
    end = lm.tokenizer.eos_id
    tokens = [[*lm.tokenizer.encode(line, add_bos=False), end] for line in lines]
    return [mean_logprob(v) for v in continuation_logprobs(lm, scoring_prompt(lm, brief), tokens)]


def specificity(lm: Any, brief: Brief, others: Sequence[Brief], lines: Sequence[str],
                own: Sequence[float]) -> list[float]:
    """For each line, its :func:`fluency` under ``brief`` (``own``, already measured) less its mean fluency under
    the ``others``' prompts: how much the brief itself, not ad language in general, explains the line."""
    if not others:
        return [float("nan")] * len(lines)
    elsewhere = [fluency(lm, other, lines) for other in others]
    return [mine - sum(o[k] for o in elsewhere) / len(elsewhere) for k, mine in enumerate(own)]


@dataclass
class Tally:
    """Counts over a set of lines and ads (one brief, or all of them)."""

    lines: int = 0
    prose: int = 0
    over_limit: int = 0
    banned: int = 0
    dangling: int = 0
    instruction: int = 0
    non_word: int = 0
    garbled: int = 0
    on_brief: int = 0
    specific: int = 0
    duplicates: int = 0
    ads: int = 0
    ads_with_must_use: int = 0
    fallback: int = 0
    fluency: list[float] = field(default_factory=list)
    specificity: list[float] = field(default_factory=list)  # of prose lines, when other briefs were given
    seconds: dict[str, list[float]] = field(default_factory=dict)
    cpu_seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for name in ("lines", "prose", "over_limit", "banned", "dangling", "instruction", "non_word", "garbled",
                     "on_brief", "specific", "duplicates", "ads", "ads_with_must_use", "fallback"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.fluency += other.fluency
        self.specificity += other.specificity
        for mine, theirs in ((self.seconds, other.seconds), (self.cpu_seconds, other.cpu_seconds)):
            for fmt, values in theirs.items():
                mine.setdefault(fmt, []).extend(values)

    def summary(self) -> dict[str, Any]:
        n = max(1, self.lines)
        return {
            "lines": self.lines,
            "limits_ok": 1 - self.over_limit / n,
            "banned": self.banned,
            "dangling": self.dangling / n,
            "instruction_talk": self.instruction / n,
            "non_words": self.non_word / n,
            "garbled": self.garbled / n,
            "on_brief": self.on_brief / max(1, self.prose),
            "specific": self.specific / len(self.specificity) if self.specificity else float("nan"),
            "specificity": sum(self.specificity) / len(self.specificity) if self.specificity else float("nan"),
            "must_use_ads": self.ads_with_must_use / max(1, self.ads),
            "distinct": 1 - self.duplicates / n,
            "fluency": sum(self.fluency) / len(self.fluency) if self.fluency else float("nan"),
            "fallback_lines": self.fallback,
            "seconds_per_ad": {fmt: sum(v) / len(v) for fmt, v in self.seconds.items() if v},
            "cpu_seconds_per_ad": {fmt: sum(v) / len(v) for fmt, v in self.cpu_seconds.items() if v},
            "max_seconds_per_ad": {fmt: max(v) for fmt, v in self.seconds.items() if v},
        }


def evaluate_ad(lm: Any, brief: Brief, fmt_name: str, ad: dict[str, list[str]], seconds: float,
                fallback: int = 0, others: Sequence[Brief] = ()) -> tuple[Tally, list[dict[str, Any]]]:
    """The tally of one ad and one row per line (text, checks, fluency, and against ``others`` specificity)."""
    fmt = generation_format(fmt_name)
    vocabulary = BriefVocabulary.of(brief)
    tally = Tally(ads=1, seconds={fmt_name: [seconds]}, fallback=fallback)
    tally.ads_with_must_use = int(not must_use_missing(ad, brief))
    flat = [(name, line) for name, lines in ad.items() for line in lines]
    scores = fluency(lm, brief, [line for _, line in flat]) if flat else []
    specific = specificity(lm, brief, others, [line for _, line in flat], scores) if flat else []
    seen: set[tuple[bool, str]] = set()
    rows = []
    for (name, line), score, margin in zip(flat, scores, specific, strict=True):
        report = check_line(line, name, brief, fmt, vocabulary)
        key = (name == "path", normalised(line))  # a path may repeat a headline's keyword; lines may not repeat
        duplicate = key in seen
        seen.add(key)
        tally.lines += 1
        tally.over_limit += report.over_limit
        tally.banned += len(report.banned)
        tally.dangling += report.dangling
        tally.instruction += bool(report.instruction_talk)
        tally.non_word += bool(report.non_words)
        tally.garbled += bool(report.garbled)
        tally.duplicates += duplicate
        if name in PROSE_FIELDS:
            tally.prose += 1
            tally.on_brief += bool(report.on_brief)
            if others:
                tally.specificity.append(margin)
                tally.specific += margin > SPECIFIC_MARGIN
        tally.fluency.append(score)
        rows.append({"field": name, "text": line, "chars": char_count(line, fmt), "fluency": round(score, 3),
                     "specificity": round(margin, 3) if others else None,
                     "problems": report.hard + (["duplicate"] if duplicate else []),
                     "on_brief": list(report.on_brief), "non_words": list(report.non_words),
                     "garbled": list(report.garbled),
                     "instruction_talk": list(report.instruction_talk), "banned": list(report.banned)})
    return tally, rows


def evaluate(lm: Any, briefs: Sequence[Path], formats: Sequence[str] = DEFAULT_FORMATS, seed: int = 1,
             framework: str = "none", sampling: SamplingParams | None = None,
             progress: Callable[[str], None] | None = None, judge: Any = None,
             candidates: int | None = None) -> dict[str, Any]:
    """Write one ad per brief and format with the app's generator and measure everything (see module doc);
    ``candidates``: lines sampled per slot, as the app's request has them.
    ``judge`` scores fluency (default ``lm``): give every system compared the same judge, the base model, or an
    adapter trained on its own lines would grade itself."""
    sampling = sampling or SamplingParams(0.7, 0.9)
    candidates = candidates or CopyRequest.candidates
    judge = judge or lm
    say = progress or (lambda text: None)
    if briefs:  # warm up (untimed): the vocabulary tables, the word list and the few-shot prompts' cache
        warm = load_brief(briefs[0])
        for fmt_name in formats:
            fmt = generation_format(fmt_name)
            write_ads(lm, CopyRequest(warm, fmt, framework, DEFAULT_COUNTS[fmt.name], 1, sampling, seed=seed + 99,
                                      candidates=candidates))
        say("warmed up")
    total = Tally()
    per_brief = []
    loaded = [load_brief(path) for path in briefs]
    for n, path in enumerate(briefs):
        brief = loaded[n]
        others = [loaded[(n + k) % len(loaded)] for k in range(1, min(OTHER_BRIEFS, len(loaded) - 1) + 1)]
        tally = Tally()
        ads = {}
        for fmt_name in formats:
            fmt = generation_format(fmt_name)
            request = CopyRequest(brief, fmt, framework, DEFAULT_COUNTS[fmt.name], 1, sampling, seed=seed,
                                  candidates=candidates)
            started, cpu = time.perf_counter(), time.process_time()
            written = write_ads(lm, request)[0]
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            fallback = sum(line.fallback for lines in written.lines.values() for line in lines)
            ad = written.texts()
            ad_tally, rows = evaluate_ad(judge, brief, fmt.name, ad, seconds, fallback, others)
            ad_tally.cpu_seconds = {fmt.name: [cpu]}
            tally.add(ad_tally)
            ads[fmt.name] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "lines": rows}
            say(f"{path.stem:<24} {fmt.name:<11} {seconds:6.1f} s ({cpu:.1f} s CPU)")
        total.add(tally)
        per_brief.append({"brief": path.stem, "summary": tally.summary(), "ads": ads})
    return {"formats": list(formats), "seed": seed, "briefs": per_brief, "overall": total.summary()}


def _seconds(summary: dict[str, Any], fmt: str) -> str:
    wall = summary["seconds_per_ad"].get(fmt, float("nan"))
    return f"{wall:.1f} ({summary.get('cpu_seconds_per_ad', {}).get(fmt, float('nan')):.1f})"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _specific(summary: dict[str, Any]) -> str:
    """Share of specific prose lines and their mean margin (– when there were no other briefs to compare with)."""
    share = summary["specific"]
    return "–" if share != share else f"{_pct(share)} ({summary['specificity']:+.2f})"


def markdown_table(report: dict[str, Any]) -> list[str]:
    """Per brief and overall, one row each."""
    fmts = report["formats"]
    head = ["brief", "lines", "limits", "banned", "dangling", "instr. talk", "non-words", "garbled", "on-brief",
            "specific",
            "must-use ads", "distinct", "fluency", "fallback", *[f"s/{f} (CPU s)" for f in fmts]]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]

    def row(name: str, s: dict[str, Any]) -> str:
        cells = [name, str(s["lines"]), _pct(s["limits_ok"]), str(s["banned"]), _pct(s["dangling"]),
                 _pct(s["instruction_talk"]), _pct(s["non_words"]), _pct(s["garbled"]),
                 _pct(s["on_brief"]), _specific(s), _pct(s["must_use_ads"]), _pct(s["distinct"]),
                 f"{s['fluency']:.2f}", str(s["fallback_lines"]),
                 *[_seconds(s, f) for f in fmts]]
        return "| " + " | ".join(cells) + " |"

    out += [row(b["brief"], b["summary"]) for b in report["briefs"]]
    out.append(row("**overall**", report["overall"]))
    return out


def markdown_ads(report: dict[str, Any], limit: int = 3) -> list[str]:
    """The first ``limit`` briefs' ads in full, each line with its problems (for reading, not only counting)."""
    out = []
    for entry in report["briefs"][:limit]:
        for fmt_name, ad in entry["ads"].items():
            out += ["", f"### {entry['brief']}: {fmt_name} ({ad['seconds']} s)", ""]
            for row in ad["lines"]:
                flag = f" ({', '.join(row['problems'])})" if row["problems"] else ""
                margin = row.get("specificity")
                note = f", specificity {margin:+.2f}" if margin is not None else ""
                out.append(f"- {row['field']} ({row['chars']}{note}): {row['text']}{flag}")
    return out
