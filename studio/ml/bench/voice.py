"""``studio bench voice``: how fast each installed voice speaks (real-time factor, target >= 10x on a 2-core CPU),
and the 30 s ad spot: render time (target < 5 s), loudness against each preset (target within 0.5 LU) and how far the
voice stands above the music while it speaks (target >= 8 dB).

Every job runs once untimed first (the voice and the music model load, the phonemiser starts), then ``repeats``
times; wall and CPU seconds are medians. The machine is shared: its load goes beside the numbers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF

from studio.core.errors import BadInputError
from studio.core.jobs import JobSpec
from studio.core.modalities import get as get_modality
from studio.core.music_request import MusicRequest
from studio.core.spot import LOUDNESS_PRESETS, SpotRequest
from studio.core.voice import VOICES_MISSING, VoiceRequest
from studio.ml.audio.spot_mix import MIN_VOICE_OVER_BED_DB
from studio.ml.bench.timing import machine_description, machine_line

SCRIPT = (
    "Fresh coffee, delivered to your door every week.\n"
    "Roasted this morning, in your cup by Friday, and never a bag you did not choose.\n"
    "Pause or skip a delivery whenever you like: no fees, no questions.\n"
    "Try Brewly today, and your first bag is on us."
)
REALTIME_TARGET = 10.0
SPOT_SECONDS_TARGET = 5.0
LOUDNESS_TOLERANCE_LU = 0.5
SPOT_LENGTH = 30


def _timed(run: Callable[[JobSpec], Any], spec: JobSpec, repeats: int) -> tuple[Any, float, float]:
    """(the last result, median wall seconds, median CPU seconds of this process) after one untimed run."""
    run(spec)
    wall, cpu, result = [], [], None
    for _ in range(max(1, repeats)):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = run(spec)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return result, statistics.median(wall), statistics.median(cpu)


def bench_voices(run: Callable[[JobSpec], Any], voices: list[str], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name in voices:
        speech, wall, cpu = _timed(run, VoiceRequest(text=SCRIPT, seed=0).spec(name), repeats)
        factor = speech.duration / wall
        rows.append({"voice": name, "engine": speech.recipe["engine"], "audio_s": round(speech.duration, 2),
                     "wall_s_median": round(wall, 3), "cpu_s_median": round(cpu, 3),
                     "realtime_factor": round(factor, 1), "target_10x_met": factor >= REALTIME_TARGET})
    return rows


def reference_lufs(mix: np.ndarray, rate: int) -> float:
    """The mix's integrated loudness by torchaudio's BS.1770 meter, not the one that set it (a second opinion)."""
    return float(AF.loudness(torch.from_numpy(np.ascontiguousarray(mix.T, dtype=np.float32)), rate))


def bench_spots(run: Callable[[JobSpec], Any], voice: str, repeats: int) -> list[dict[str, Any]]:
    """A 30 s spot per loudness preset: the script spoken by ``voice`` over a new bed (the default music model)."""
    rows = []
    for preset, target in LOUDNESS_PRESETS.items():
        request = SpotRequest(voice=VoiceRequest(text=SCRIPT), voice_model=voice, length=SPOT_LENGTH,
                              music=MusicRequest(style="upbeat-jingle", seed=1), loudness=preset)
        spot, wall, cpu = _timed(run, request.spec(), repeats)
        recipe = spot.recipe
        checked = reference_lufs(spot.mix, spot.rate)
        error = checked - target
        rows.append({"voice": voice, "preset": preset, "target_lufs": target, "length_s": SPOT_LENGTH,
                     "music_model": recipe["music"].get("model", ""), "wall_s_median": round(wall, 3),
                     "cpu_s_median": round(cpu, 3), "lufs": recipe["lufs"], "lufs_checked": round(checked, 2),
                     "lufs_error_lu": round(error, 2),
                     "true_peak_dbtp": recipe["true_peak_dbtp"], "voice_over_bed_db": recipe["voice_over_bed_db"],
                     "duck_db": recipe["duck_db"], "time_target_met": wall < SPOT_SECONDS_TARGET,
                     "loudness_target_met": abs(error) <= LOUDNESS_TOLERANCE_LU,
                     "margin_target_met": recipe["voice_over_bed_db"] >= MIN_VOICE_OVER_BED_DB})
    return rows


def bench_voice(run: Callable[[JobSpec], Any], installed: list[str], voices: list[str], repeats: int,
                device: str, threads: int, spot_voice: str = "") -> dict[str, Any]:
    """The report: ``run`` runs a job spec in this process (warm model cache); ``installed``: the voices there."""
    if not installed:
        raise BadInputError(VOICES_MISSING)
    unknown = sorted(set(voices) - set(installed))
    if unknown:
        raise BadInputError(f"no voice named {', '.join(unknown)} (installed: {', '.join(installed)})")
    machine = machine_description(device, threads)
    chosen = voices or installed
    default = get_modality("voice").default_model
    spot_voice = spot_voice or (default if default in chosen else chosen[0])
    return {"benchmark": "voice", "script_chars": len(SCRIPT), "repeats": repeats, "machine": machine,
            "results": bench_voices(run, chosen, repeats),
            "spots": bench_spots(run, spot_voice, repeats) if repeats else []}


def _met(flag: bool) -> str:
    return "met" if flag else "missed"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Voice benchmark: a {report['script_chars']}-character script, median of {report['repeats']} "
             "(after one untimed run)", "",
             f"Machine: {machine_line(report['machine'])} (other programs share these cores)", "",
             "| voice | engine | audio | wall (median) | CPU s (median) | real-time factor | target >= 10x |",
             "|---|---|---:|---:|---:|---:|---|"]
    for row in report["results"]:
        lines.append(f"| {row['voice']} | {row['engine']} | {row['audio_s']:.2f} s | {row['wall_s_median']:.3f} s | "
                     f"{row['cpu_s_median']:.2f} | {row['realtime_factor']:.1f}x | {_met(row['target_10x_met'])} |")
    if report.get("spots"):
        lines += ["", f"## {SPOT_LENGTH} s ad spot (the script above, a new music bed, ducking, loudness preset)", "",
                  "LUFS checked: the mix measured again by torchaudio's BS.1770 meter, not the one that set it.", "",
                  "| voice | preset | music | render (median) | CPU s | target < 5 s | LUFS set (target) | LUFS "
                  "checked | error | true peak | voice over bed | duck |",
                  "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
        for row in report["spots"]:
            lines.append(
                f"| {row['voice']} | {row['preset']} | {row['music_model']} | {row['wall_s_median']:.2f} s | "
                f"{row['cpu_s_median']:.2f} | {_met(row['time_target_met'])} | {row['lufs']:.2f} "
                f"({row['target_lufs']:g}) | {row['lufs_checked']:.2f} | {row['lufs_error_lu']:+.2f} LU "
                f"({_met(row['loudness_target_met'])}) | "
                f"{row['true_peak_dbtp']:.2f} dBTP | {row['voice_over_bed_db']:.1f} dB "
                f"({_met(row['margin_target_met'])}) | {row['duck_db']:.1f} dB |")
    return "\n".join(lines) + "\n"
