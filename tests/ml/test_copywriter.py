"""The copywriter and the copy tasks: prompts from templates, streamed payloads per the contract, line
regeneration, and the task functions as the engine and the CLI run them (tiny random model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core import paths
from studio.core.context import JobContext
from studio.core.copy_brief import brief_from_dict, load_brief, words
from studio.core.copy_checks import check_line, must_use_missing
from studio.core.copy_formats import DEFAULT_COUNTS, generation_format
from studio.core.copy_prompts import first_request
from studio.core.errors import BadInputError
from studio.core.jobs import EventType, JobSpec
from studio.ml.tasks import copy as copy_tasks
from studio.ml.text.copywriter import CopyRequest, foreign_brief_note, generate_ads, regenerate_line, write_ads
from tests.ml.copy_fixtures import tiny_lm

BRIEF = {"product": "Brewly", "features": ["fresh beans every week"], "audience": "home baristas",
         "tone": "warm", "must_use": ["fresh"], "banned": ["cheap"]}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lm():
    return tiny_lm()


def test_a_full_google_ad_streams_every_line(lm) -> None:
    fmt = generation_format("google-rsa")
    brief = brief_from_dict(BRIEF)
    request = CopyRequest(brief, fmt, "aida", DEFAULT_COUNTS["google-rsa"], variants=2, seed=5, candidates=2)
    payloads: list[dict] = []
    ads = write_ads(lm, request, on_partial=payloads.append)
    assert len(ads) == 2
    for ad in ads:
        assert {k: len(v) for k, v in ad.lines.items()} == {"headline": 15, "description": 4, "path": 2}
        assert all(" " not in path.text for path in ad.lines["path"])
        assert not must_use_missing(ad.texts(), brief)
        for name, lines in ad.lines.items():
            assert all(line.angle for line in lines)
            for line in lines:
                assert check_line(line.text, name, brief, fmt).hard == [], (name, line)
        prose = [" ".join(words(t)) for name, lines in ad.texts().items() if name != "path" for t in lines]
        assert len(set(prose)) == len(prose)
    assert all({"variant", "field", "index", "text", "done"} <= set(p) for p in payloads)
    final = {}
    for p in payloads:
        if p["done"]:
            assert {"angle", "fallback"} <= set(p)
            final[(p["variant"], p["field"], p["index"])] = p["text"]
    for v, ad in enumerate(ads):  # the last closing payload of a slot is the line of the finished ad
        for name, lines in ad.lines.items():
            assert [final[(v, name, i)] for i in range(len(lines))] == [line.text for line in lines]


def test_lines_the_model_cannot_write_fall_back_to_the_brief_and_say_so(lm) -> None:
    """The tiny random model writes nothing on brief: every slot gets an extractive line made of the brief's own
    words and a few connectives, marked as a fallback, within its limit and never dangling."""
    brief = brief_from_dict(BRIEF)
    fmt = generation_format("meta")
    ad = write_ads(lm, CopyRequest(brief, fmt, "none", {"primary": 1, "headline": 3}, seed=1, candidates=2))[0]
    connectives = {"try", "today", "get", "now", "discover", "made", "for", "from", "with"}
    brief_words = {w for text in (brief.product, *brief.features, brief.audience, *brief.must_use)
                   for w in words(text)}
    fallbacks = [line for lines in ad.lines.values() for line in lines if line.fallback]
    assert fallbacks
    for line in fallbacks:
        assert set(words(line.text)) <= brief_words | connectives, line.text


def test_locked_lines_are_kept_and_the_rest_written_around_them(lm) -> None:
    brief = brief_from_dict(BRIEF)
    fmt = generation_format("google-rsa")
    locked = {"headline": {1: "Our Own Locked Line"}}
    ad = write_ads(lm, CopyRequest(brief, fmt, "none", {"headline": 4}, seed=3, candidates=2, locked=locked))[0]
    assert ad.lines["headline"][1].text == "Our Own Locked Line" and ad.lines["headline"][1].locked
    assert len(ad.lines["headline"]) == 4


def test_regenerating_one_line_gives_a_new_line(lm) -> None:
    fmt = generation_format("google-rsa")
    request = CopyRequest(brief_from_dict(BRIEF), fmt, "pas", {"headline": 3}, seed=2, candidates=2)
    existing = generate_ads(lm, request)[0]["headline"]
    streamed: list[dict] = []
    new = regenerate_line(lm, request, "headline", 1, existing, on_partial=streamed.append)
    assert new.text and len(new.text) <= 30 and new.angle
    assert " ".join(words(new.text)) not in {" ".join(words(line)) for line in existing}
    assert [p for p in streamed if p["done"] and p["index"] == 1][-1]["text"] == new.text


def test_prompts_come_from_the_editable_templates(tmp_path: Path) -> None:
    brief = brief_from_dict(BRIEF)
    fmt = generation_format("email")
    text = first_request(brief, fmt, "bab", "subject", 5)
    assert "Brewly" in text and "BAB" in text and "5 different subject lines" in text and "60" in text
    override = paths.data_dir() / "prompts" / "frameworks" / "bab.txt"
    override.parent.mkdir(parents=True)
    override.write_text("Custom framework for $product.", encoding="utf-8")
    assert "Custom framework for Brewly." in first_request(brief, fmt, "bab", "subject", 5)
    override.write_text("Broken $productt", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"unknown placeholder \$productt"):
        first_request(brief, fmt, "bab", "subject", 5)


def test_every_format_and_framework_has_templates() -> None:
    brief = brief_from_dict(BRIEF)
    for name, counts in DEFAULT_COUNTS.items():
        fmt = generation_format(name)
        for framework in ("none", "aida", "pas", "bab", "fab", "4p"):
            for field_name, count in counts.items():
                assert first_request(brief, fmt, framework, field_name, count)


def test_example_briefs_load() -> None:
    folder = paths.resources_dir() / "briefs" / "examples"
    briefs = [load_brief(p) for p in sorted(folder.glob("*.json"))]
    assert len(briefs) >= 3


def test_foreign_briefs_get_a_note_not_an_error() -> None:
    assert foreign_brief_note(brief_from_dict(BRIEF)) == ""
    french = brief_from_dict({"product": "Café Lumière", "features": ["grains torréfiés chaque semaine",
                                                                       "livraison à domicile gratuite"]})
    assert "does not look English" in foreign_brief_note(french)


def run_task(fn, spec: JobSpec) -> tuple[object, list]:
    events: list = []
    ctx = JobContext(spec, events.append, device="cpu", resources=None)
    return fn(spec, ctx), events


def test_copy_generate_task_follows_the_payload_contract(lm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_tasks, "load_copy_model", lambda resources, name, device=None, **_: lm)
    params = {"brief": BRIEF, "format": "meta", "framework": "fab", "variants": 2, "temperature": 0.9, "top_p": 0.9,
              "candidates": 2}
    spec = JobSpec("copy.generate", params, seed=3, model="tiny")
    result, events = run_task(copy_tasks.generate_copy, spec)
    assert set(result) == {"ads", "angles", "fallback", "recipe"}
    assert len(result["ads"]) == 2 and set(result["ads"][0]) == {"primary", "headline"}
    recipe = result["recipe"]
    assert recipe["seed"] == 3 and recipe["kind"] == "copy.generate" and recipe["model"] == "tiny"
    assert recipe["model_sha256"] == "0" * 64 and recipe["params"]["brief"]["product"] == "Brewly"
    partial = [e for e in events if e.type is EventType.PARTIAL]
    assert partial and all({"variant", "field", "index", "text", "done"} <= set(e.payload) for e in partial)
    assert any(e.type is EventType.PROGRESS and e.fraction == 1.0 for e in events)
    again, _ = run_task(copy_tasks.generate_copy, JobSpec("copy.generate", params, seed=3, model="tiny"))
    assert again["ads"] == result["ads"]


def test_copy_line_task(lm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_tasks, "load_copy_model", lambda resources, name, device=None, **_: lm)
    existing = ["Fresh beans weekly", "Roasted for you"]
    params = {"brief": BRIEF, "format": "google-rsa", "framework": "none", "field": "headline", "index": 0,
              "existing": existing, "candidates": 2}
    result, events = run_task(copy_tasks.regenerate_copy_line, JobSpec("copy.line", params, seed=9))
    assert result["text"] and len(result["text"]) <= 30 and result["text"] not in existing
    assert all(e.payload["index"] == 0 for e in events if e.type is EventType.PARTIAL)
    with pytest.raises(BadInputError, match="no field 'subject'"):
        run_task(copy_tasks.regenerate_copy_line, JobSpec("copy.line", {**params, "field": "subject"}))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"brief": {"product": ""}}, "product\" is empty"),
        ({"brief": BRIEF, "format": "billboard"}, "unknown copy format"),
        ({"brief": BRIEF, "framework": "xyz"}, "unknown framework"),
        ({"brief": BRIEF, "variants": 99}, "variants must be between 1 and 10"),
        ({"brief": BRIEF, "temperature": "hot"}, "temperature must be a number"),
        ({"brief": BRIEF, "counts": {"headline": 16}}, "0 to 15 lines"),
        ({"brief": {**BRIEF, "must_use": ["a must-use phrase far longer than any line of this format can be, " * 2]},
          "format": "google-rsa"}, "longer than any line"),
        ({"brief": {**BRIEF, "features": ["x" * 10_000]}}, "keep it under 300"),
        ({"brief": {**BRIEF, "product": ""}}, "say what you are advertising"),
        ({"brief": BRIEF, "locked": {"subject": {"0": "x"}}}, "no field 'subject'"),
    ],
)
def test_bad_requests_fail_before_the_model_loads(params: dict, message: str) -> None:
    with pytest.raises(BadInputError) as info:
        copy_tasks.request_from_spec(JobSpec("copy.generate", params))
    assert message in str(info.value)


REAL_MODEL = Path.home() / ".local/share/studio/models/lm/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_MODEL.exists(), reason="the SmolLM2 GGUF is not installed (packaging/fetch_models.py)")
@pytest.mark.parametrize("adapter", [None, "copy-lora-debian", "copy-ads"])
def test_real_model_keeps_banned_forms_out_and_never_cuts_a_word(adapter: str | None) -> None:
    """The issue's two safeguards with the base model and with the bundled adapters (copy-ads is the default):
    ``best`` banned, no "bests"/"bested"/"Bestseller"; no line ends mid-word or on a dangling word."""
    from studio.ml.text.lm import load_language_model
    from studio.ml.train.lora import apply_adapter

    lm = load_language_model(REAL_MODEL)
    if adapter:
        lm = apply_adapter(lm, paths.resources_dir().parent / "models" / f"{adapter}.safetensors", adapter)
    brief = load_brief(paths.resources_dir() / "briefs" / "dev" / "trail-headlamp.json")
    assert "best" in brief.banned
    fmt = generation_format("google-rsa")
    ad = write_ads(lm, CopyRequest(brief, fmt, "none", DEFAULT_COUNTS["google-rsa"], seed=1))[0]
    for name, lines in ad.lines.items():
        for line in lines:
            assert check_line(line.text, name, brief, fmt).hard == [], (name, line)
            assert not any(w.startswith("best") for w in words(line.text) if w != "bestow"), line


def test_banned_words_that_rule_out_everything_get_a_clear_message(lm) -> None:
    brief = brief_from_dict({"product": "4711", "banned": [f"{c}*" for c in "abcdefghijklmnopqrstuvwxyz"]})
    request = CopyRequest(brief, generation_format("email"), "none", {"subject": 2}, candidates=2)
    with pytest.raises(BadInputError, match="rule out all but"):
        write_ads(lm, request)
