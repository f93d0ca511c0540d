"""``studio generate copy | data copy | eval copy``: ad copy from the terminal (``train copy``: copy_train.py).

    studio generate copy --brief brief.json --format google-rsa --variants 3 --out ads.csv
    studio data copy --out debian-blurbs.jsonl
    studio eval copy --briefs resources/briefs/test --md eval.md --json eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio.core.defaults import copy_defaults
from studio.core.modalities.copy import BASE_LANGUAGE_MODEL
from studio.core.safe_write import write_atomic


def _print_ads(result: dict[str, Any]) -> None:
    """Each line with its length and angle; ``*`` marks a line taken from the brief (no written line passed)."""
    for n, ad in enumerate(result["ads"]):
        angles = result.get("angles", [{}] * len(result["ads"]))[n]
        fallback = result.get("fallback", [{}] * len(result["ads"]))[n]
        print(f"## Ad {n + 1}")
        for name, lines in ad.items():
            for i, line in enumerate(lines):
                mark = "*" if i in fallback.get(name, []) else " "
                angle = angles.get(name, [""] * len(lines))[i]
                print(f"{name} {i + 1:>2} ({len(line):>3}){mark} {line:<60} [{angle}]")
        print()


def run_generate(args: argparse.Namespace) -> int:
    from studio.cli.console import run_in_console
    from studio.core.copy_brief import load_brief
    from studio.core.copy_export import AdSet, export_ads
    from studio.core.jobs import JobSpec

    brief = load_brief(Path(args.brief))
    defaults = copy_defaults(args.format)  # the same defaults as the app's Copy workspace
    params: dict[str, Any] = {"brief": brief.to_dict(), "format": args.format, "framework": args.framework,
                              "variants": args.variants,
                              "temperature": defaults.temperature if args.temperature is None else args.temperature,
                              "top_p": defaults.top_p if args.top_p is None else args.top_p}
    if args.candidates is not None:
        params["candidates"] = args.candidates
    spec = JobSpec("copy.generate", params, seed=args.seed, model=args.model or defaults.model)
    result = run_in_console(spec, args.device, quiet=args.quiet)
    _print_ads(result)
    if args.out:
        path = export_ads(Path(args.out), AdSet(args.format, result["ads"], result["recipe"]))
        print(f"saved {path}", file=sys.stderr)
    return 0


def run_data(args: argparse.Namespace) -> int:
    from studio.ml.data.copy_text import build_debian_corpus, build_lexicon, build_names, read_debian_corpus

    out = Path(args.out)
    if not args.no_corpus:
        count = build_debian_corpus(out, Path(args.lists), fetch=not args.no_fetch)
        print(f"wrote {count} product descriptions to {out}")
    if args.lexicon_from:
        records = read_debian_corpus(out) if out.exists() else []  # no corpus: the spelling list alone
        texts = [t for r in records for t in (r.synopsis, r.blurb)]
        target = Path(args.lexicon_out)
        count = build_lexicon(Path(args.lexicon_from), texts, target)
        print(f"wrote {count} words to {target}")
        names = target.with_name("names-en.txt.gz")
        print(f"wrote {build_names(Path(args.lexicon_from), names)} names to {names}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from studio.cli.console import make_resources
    from studio.core.paths import resources_dir
    from studio.ml.tasks.copy import load_copy_model
    from studio.ml.text.copy_eval import brief_files, evaluate, markdown_ads, markdown_table

    briefs = brief_files(Path(args.briefs) if args.briefs else resources_dir() / "briefs" / "dev")
    resources = make_resources(args.device)
    runtime = "torch" if args.data else args.runtime
    model = args.model or copy_defaults().model
    lm = load_copy_model(resources, model, runtime=runtime)
    judge = load_copy_model(resources, BASE_LANGUAGE_MODEL, runtime="torch")  # the same judge for every model
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    report = evaluate(lm, briefs, formats, seed=args.seed, progress=lambda text: print(text, file=sys.stderr),
                      judge=judge, candidates=args.candidates)
    report.update(model=model, runtime=getattr(lm, "runtime", "torch"), briefs_from=str(args.briefs or ""),
                  fluency_judge=BASE_LANGUAGE_MODEL)
    table = markdown_table(report)
    print("\n".join(table))
    if args.data:
        report["perplexity"] = _held_out_perplexity(lm, Path(args.data), args.seed)
        print(f"held-out perplexity of {args.data}: {report['perplexity']['perplexity']:.2f}")
    if args.md:
        text = [f"# Copy evaluation: {model} ({report['runtime']}), seed {args.seed}", "",
                f"Briefs: `{args.briefs or 'resources/briefs/dev'}`; formats: {', '.join(formats)}.", "",
                *table, "", "## Ads of the first briefs", *markdown_ads(report)]
        write_atomic(Path(args.md), "\n".join(text) + "\n", "the report")
    if args.json:
        write_atomic(Path(args.json), json.dumps(report, indent=2, ensure_ascii=False) + "\n", "the report")
    return 0


def _held_out_perplexity(lm: Any, data: Path, seed: int) -> dict[str, Any]:
    from studio.core import copy_prompts
    from studio.ml.data.copy_text import read_training_lines, split_held_out
    from studio.ml.train.lora import brand_voice_request, make_example, perplexity

    _, held = split_held_out(read_training_lines(data, seed=seed).lines, 0.2, seed)
    system, request = copy_prompts.render("system.txt", {}), brand_voice_request()
    examples = [make_example(lm, system, request, [line], 256) for line in held]
    return {"lines": len(held), "perplexity": perplexity(lm.model, examples, lm.tokenizer.pad_id, lm.device)}


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    from studio.core.copy_formats import FRAMEWORKS, GENERATION_FORMATS

    p = groups["generate"].add_parser("copy", help="ad copy from a brief (JSON)")
    p.add_argument("--brief", required=True, help="brief JSON: product, features, audience, tone, must_use, banned")
    p.add_argument("--format", default="google-rsa", choices=sorted(GENERATION_FORMATS))
    p.add_argument("--framework", default="none", choices=FRAMEWORKS)
    p.add_argument("--variants", type=int, default=1)
    p.add_argument("--temperature", type=float, default=None,
                   help=f"default {copy_defaults().temperature} (shared with the app)")
    p.add_argument("--top-p", type=float, default=None, help=f"default {copy_defaults().top_p}")
    p.add_argument("--candidates", type=int, default=None,
                   help="lines sampled per slot, the best kept (default: the app's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None,
                   help=f"language model or LoRA adapter name (default {copy_defaults().model}, as in the app)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.add_argument("--out", help="export the ads: .csv (ad tools), .md or .json (with the recipe)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_generate)

    p = groups["data"].add_parser("copy", help="Debian product descriptions (apt) as a JSON-lines corpus")
    p.add_argument("--out", required=True, help="corpus file (.jsonl)")
    p.add_argument("--lists", default="apt-lists", help="folder for apt's package lists")
    p.add_argument("--no-fetch", action="store_true", help="use lists already in --lists")
    p.add_argument("--no-corpus", action="store_true", help="do not rebuild the corpus (e.g. lexicon only)")
    p.add_argument("--lexicon-from", help="also build the decoder's word list from this spelling list")
    p.add_argument("--lexicon-out", default="resources/lexicon/common-en.txt.gz")
    p.set_defaults(func=run_data)

    p = groups["eval"].add_parser("copy", help="per brief and overall: limits, banned words, dangling endings, "
                                  "instruction talk, non-words, on-brief lines, must-use coverage, distinct lines, "
                                  "fluency, time per ad")
    p.add_argument("--briefs", help="a brief JSON or a folder of them (default resources/briefs/dev)")
    p.add_argument("--model", default=None, help=f"default {copy_defaults().model} (shared with the app)")
    p.add_argument("--formats", "--format", default="google-rsa,meta,email", help="comma-separated formats")
    p.add_argument("--runtime", choices=("auto", "torch", "onnxruntime"), default=None,
                   help="what runs the model (default: the app's setting)")
    p.add_argument("--data", help="also: held-out perplexity of these lines (TXT/CSV)")
    p.add_argument("--candidates", type=int, default=None, help="lines sampled per slot (default: the app's)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.add_argument("--md", help="write the table (and three briefs' ads) as Markdown here")
    p.add_argument("--json", help="write the full report (every line, its checks and fluency) here")
    p.set_defaults(func=run_eval)
