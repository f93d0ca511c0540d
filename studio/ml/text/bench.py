"""Language-model speed: load time, time to first token on a realistic brief, decode tokens/s (single stream and
batched variants). Medians after a warm-up; the machine is described next to the numbers.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from studio.ml.device import describe_device
from studio.ml.sampling.text import SamplingParams, sample_row
from studio.ml.text.lm import LanguageModel, load_language_model

SYSTEM = "You are an advertising copywriter. Write short, concrete, honest copy within the character limits."
BRIEF = (
    "Write a Google search ad using the AIDA framework.\n"
    "Product: TrailRunner X2, a lightweight waterproof trail running shoe.\n"
    "Facts: 240 g per shoe, recycled mesh upper, grippy lugged outsole, 90-day free returns, "
    "free shipping over 50 euros.\n"
    "Audience: weekend trail runners aged 25 to 45 who run in wet, muddy conditions.\n"
    "Tone: energetic, confident, plain words.\n"
    "Give 3 headlines of at most 30 characters and 2 descriptions of at most 90 characters, one per line."
)
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": BRIEF}]


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_average_1min": load}


def _sync(lm: LanguageModel) -> None:
    if lm.device.type == "cuda":
        torch.cuda.synchronize()


def _median_time(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _no_stop(lm: LanguageModel, logits: torch.Tensor) -> torch.Tensor:
    logits = logits.clone()
    logits[..., list(lm.tokenizer.stop_ids)] = float("-inf")  # always run the full number of steps
    return logits


def _decode_rate(lm: LanguageModel, prompt: list[int], batch: int, new_tokens: int, generator: torch.Generator
                 ) -> float:
    """Tokens per second (all rows together) over ``new_tokens`` sampled steps after the prompt."""
    params = SamplingParams(temperature=0.8, top_p=0.95)
    logits, cache = lm.prefill(prompt, new_tokens, copies=batch)
    _sync(lm)
    start = time.perf_counter()
    for _ in range(new_tokens):
        ids = [sample_row(_no_stop(lm, row), params, generator) for row in logits]
        logits, cache = lm.decode_step(ids, cache)
    _sync(lm)
    return batch * new_tokens / (time.perf_counter() - start)


def measure(lm: LanguageModel, new_tokens: int, repeats: int, variants: int) -> dict[str, Any]:
    prompt = lm.tokenizer.encode_chat(MESSAGES)
    params = SamplingParams(temperature=0.8, top_p=0.95)
    generator = torch.Generator().manual_seed(0)

    def first_token() -> None:
        logits, _ = lm.prefill(prompt, new_tokens)
        sample_row(_no_stop(lm, logits[0]), params, generator)

    results: dict[str, Any] = {"prompt_tokens": len(prompt), "new_tokens": new_tokens,
                               "ttft_ms": round(_median_time(first_token, repeats) * 1000, 1)}
    for batch in sorted({1, variants}):
        _decode_rate(lm, prompt, batch, new_tokens, generator)  # warm-up
        rate = statistics.median(_decode_rate(lm, prompt, batch, new_tokens, generator) for _ in range(repeats))
        results["decode_tok_s" if batch == 1 else f"decode_tok_s_batch{batch}"] = round(rate, 1)
    return results


def run_bench(
    path: Path, device: str, dtypes: list[str], new_tokens: int = 64, repeats: int = 5, variants: int = 3
) -> dict[str, Any]:
    """Load the model once per precision and measure; returns a JSON-able report."""
    report: dict[str, Any] = {"model": Path(path).name, "device": describe_device(device), "machine": machine(),
                              "runs": []}
    for dtype in dtypes:
        start = time.perf_counter()
        lm = load_language_model(path, device, dtype)
        load_s = time.perf_counter() - start
        with torch.inference_mode():
            numbers = measure(lm, new_tokens, repeats, variants)
        report["runs"].append({"dtype": dtype, "load_s": round(load_s, 2), **numbers})
        del lm
    return report


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Language model speed: {report['model']}",
        "",
        f"Device: {report['device']}; CPU: {m['cpu']} ({m['cores']} cores, {m['threads']} torch threads); "
        f"torch {m['torch']}; 1-minute load average at start: {m['load_average_1min']}",
        "",
    ]
    runs = report["runs"]
    if runs:
        keys = [k for k in runs[0] if k != "dtype"]
        lines.append("| precision | " + " | ".join(keys) + " |")
        lines.append("|---" * (len(keys) + 1) + "|")
        for run in runs:
            lines.append(f"| {run['dtype']} | " + " | ".join(str(run[k]) for k in keys) + " |")
    lines += ["", "Medians after one warm-up. TTFT = prefill of the prompt + sampling the first token; decode "
              "tokens/s = sampled tokens per second after the prompt (stop tokens masked so every run is as long)."]
    return "\n".join(lines) + "\n"
