"""`studio doctor`'s facts: this machine as it is, and other machines played by replacing single probe answers
(no driver, a CPU build beside a GPU, an old driver, onnxruntime without its CUDA provider, a library missing)."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core import paths
from studio.core.defaults import default_model
from studio.core.jobs import JobSpec
from studio.core.machine_report import report_lines, status_summary
from studio.core.modalities import all_modalities
from studio.core.settings import Settings
from studio.ml import doctor
from studio.ml.cache import ModelCache
from studio.ml.checkpoint import sha256_file
from studio.ml.doctor import NO_DRIVER, Gpu, SystemProbe, diagnose
from studio.ml.resources import Resources
from studio.ml.store import ModelStore
from tests.ml.voice_fixtures import install_tiny_piper

ROOT = Path(__file__).resolve().parents[2]
H200 = Gpu("NVIDIA H200", "580.65.06", 143771.0, 142000.0)


class Machine(SystemProbe):
    """A machine with a GPU, a new driver, torch for CUDA 13.0 and onnxruntime-gpu that works, unless told."""

    def __init__(self, **answers: object) -> None:
        self.answers = {"nvidia_smi": [H200], "driver_cuda": (13, 0), "torch_cuda_build": "13.0",
                        "torch_cuda": (True, ""), "cuda_memory": ("NVIDIA H200", 138.7, 140.4),
                        "onnxruntime": ("1.31.1", ["CUDAExecutionProvider", "CPUExecutionProvider"]),
                        "cuda_provider_problem": "", **answers}

    def __getattribute__(self, name: str):
        answers = object.__getattribute__(self, "answers")
        if name in answers:
            return lambda: answers[name]
        return object.__getattribute__(self, name)


def _resources(device: str, asked: str = "auto", runtime: str = "auto") -> Resources:
    return Resources(device=device, runtime=runtime, store=ModelStore(), cache=ModelCache(), cpu_threads=1,
                     settings=Settings(device=asked))


def _no_driver_here() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return shutil.which("nvidia-smi") is None
    return False


@pytest.mark.skipif(not _no_driver_here(), reason="this machine has an NVIDIA driver")
def test_this_machine_runs_on_the_cpu_because_it_has_no_driver() -> None:
    report = diagnose(_resources("cpu"))
    assert report.device == "cpu" and report.fallback == NO_DRIVER and report.gpu == "none found"
    assert not report.provider_problem
    text, _, warn = status_summary(report)
    assert text.startswith("CPU") and not warn  # a laptop without an NVIDIA GPU is not a problem
    assert [ws.modality for ws in report.workspaces] == [m.name for m in all_modalities()]
    assert report.workspaces[0].model == "sprite-gan" and report.workspaces[0].runtime == "torch"
    lines = report_lines(report)
    assert f"Running on the CPU because {NO_DRIVER}" in lines


def test_a_gpu_that_works_is_used_by_torch_and_onnxruntime() -> None:
    report = diagnose(_resources("cuda"), Machine())
    assert report.device == "cuda" and not report.fallback and not report.provider_problem
    assert report.gpu.startswith("NVIDIA H200: driver 580.65.06, CUDA 13.0, 138.7 of 140.4 GiB free")
    assert not status_summary(report)[2]


@pytest.mark.parametrize(("machine", "reason"), [
    (Machine(nvidia_smi=None, driver_cuda=None), "no NVIDIA driver was found"),
    (Machine(torch_cuda_build=None, torch_cuda=(False, "")), "this is Studio's CPU build"),
    (Machine(driver_cuda=(12, 4), torch_cuda=(False, "The NVIDIA driver on your system is too old")),
     "the NVIDIA driver (580.65.06) is too old: it supports CUDA up to 12.4, and Studio needs CUDA 13.0"),
    (Machine(torch_cuda=(False, "CUDA unknown error")), "PyTorch cannot use the GPU (CUDA unknown error)"),
])
def test_why_studio_fell_back_to_the_cpu(machine: Machine, reason: str) -> None:
    report = diagnose(_resources("cpu"), machine)
    assert report.fallback.startswith(reason)
    _text, tooltip, warn = status_summary(report)
    assert warn == report.gpu_found  # a warning only where a GPU or driver is there to be used
    assert f"Running on the CPU because {report.fallback}" in tooltip


def test_the_cpu_chosen_in_settings_is_no_fallback_warning() -> None:
    report = diagnose(_resources("cpu", asked="cpu"), Machine())
    assert report.fallback == "the CPU is chosen in Settings" and not status_summary(report)[2]


def test_a_hidden_gpu_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    report = diagnose(_resources("cpu"), Machine(torch_cuda=(False, "")))
    assert report.fallback == "CUDA_VISIBLE_DEVICES='' hides the GPU from Studio"


def test_a_missing_cuda_provider_is_said_and_onnx_workspaces_show_the_cpu_provider() -> None:
    """The simulated missing provider: torch on the GPU, onnxruntime the CPU package."""
    choices = {f"{sha256_file(ModelStore().find('sprite-gan').weights)}:generator:cuda": "onnxruntime"}
    (paths.cache_dir() / "runtime_choices.json").write_text(json.dumps(choices))
    report = diagnose(_resources("cuda"), Machine(onnxruntime=("1.32.0", ["CPUExecutionProvider"])))
    assert report.device == "cuda" and not report.fallback
    assert report.provider_problem.startswith("its CUDA provider is not installed")
    text, _tooltip, warn = status_summary(report)
    assert warn and text.endswith("ONNX Runtime on the CPU")
    sprites = report.workspaces[0]
    assert sprites.runtime == "onnxruntime" and sprites.provider == "CPUExecutionProvider"
    assert sprites.how == "measured fastest on this machine"
    assert sprites.runtime_words() == "ONNX Runtime on the GPU, CPUExecutionProvider"


def test_a_cuda_provider_whose_library_is_missing_says_which_library() -> None:
    """The real check on this machine's onnxruntime: its CPU package has no CUDA provider library to load."""
    problem = SystemProbe().cuda_provider_problem()
    if not problem:
        pytest.skip("onnxruntime runs on CUDA here")
    assert problem.startswith("a library its CUDA provider needs was not found: ")
    assert "libonnxruntime_providers_cuda.so" in problem or ".so" in problem
    report = diagnose(_resources("cuda"), Machine(cuda_provider_problem=problem))
    assert report.provider_problem == problem


def test_the_last_out_of_memory_fallback_is_a_note() -> None:
    doctor.remember_gpu_fallback("sprite.generate", "the GPU ran out of memory, even with smaller batches")
    report = diagnose(_resources("cuda"), Machine())
    assert any("sprite.generate" in note and "ran out of memory" in note for note in report.notes)


def test_settings_choose_the_runtime_and_missing_models_are_named() -> None:
    report = diagnose(_resources("cpu", runtime="torch"), Machine())
    assert all(ws.how == "chosen in Settings" for ws in report.workspaces if ws.runtime)
    copy = report.workspaces[1]
    assert copy.runtime == "" and copy.runtime_words() == "no model installed"  # no language model in a test home


def test_remembered_runtime_reads_the_selectors_keys() -> None:
    choices = {"abc:lm-decode:cpu:int4+fp32": "onnxruntime:int4", "abc:music-decode:cuda": "torch",
               "def:generator:cpu": "onnxruntime"}
    assert doctor.remembered_runtime("abc", "cpu", choices) == "onnxruntime:int4"
    assert doctor.remembered_runtime("abc", "cuda", choices) == "torch"
    assert doctor.remembered_runtime("def", "cuda", choices) == ""


def test_measured_speeds_are_remembered_per_device_and_model() -> None:
    doctor.remember_speed("sprite", "cpu", 48.2, "sprites/s", "PyTorch on the CPU", default_model("sprite"))
    on_cpu = diagnose(_resources("cpu"), Machine(nvidia_smi=None, driver_cuda=None)).workspaces[0]
    assert on_cpu.speed.startswith("48.2 sprites/s on PyTorch on the CPU (measured ")
    assert diagnose(_resources("cuda"), Machine()).workspaces[0].speed == ""  # measured on another device
    doctor.remember_speed("sprite", "cpu", 48.2, "sprites/s", "PyTorch on the CPU", "an-older-default")
    assert diagnose(_resources("cpu"), Machine()).workspaces[0].speed == ""  # measured on another model


def test_measure_speed_times_the_workspace_job() -> None:
    runs: list[JobSpec] = []

    def run(spec: JobSpec) -> list[int]:
        runs.append(spec)
        return [0] * spec.params["count"]

    doctor.measure_speed(_resources("cpu"), "sprite", run)
    assert [s.kind for s in runs] == ["sprite.generate"] * 2  # once to load and choose, once timed
    assert doctor.read_speeds()["sprite"]["unit"] == "sprites/s" and doctor.read_speeds()["sprite"]["value"] > 0


def test_a_voice_runs_one_way_and_its_speed_is_measured_like_any_workspace(studio_home: Path) -> None:
    install_tiny_piper(paths.user_models_dir() / "voice", name="piper-joe")
    voice = next(ws for ws in diagnose(_resources("cpu", runtime="torch"), Machine()).workspaces
                 if ws.modality == "voice")
    assert (voice.label, voice.model, voice.runtime) == ("Voice", "piper-joe", "onnxruntime")  # not the setting's
    assert voice.how == "the only runtime this model has"
    assert voice.runtime_words() == "ONNX Runtime on the CPU, CPUExecutionProvider"
    runs: list[JobSpec] = []

    def run(spec: JobSpec) -> object:
        runs.append(spec)
        return type("Speech", (), {"duration": 3.0})()

    doctor.measure_speed(_resources("cpu"), "voice", run)
    assert [s.kind for s in runs] == ["voice.speak"] * 2
    assert doctor.read_speeds()["voice"]["unit"] == "x real time" and doctor.read_speeds()["voice"]["value"] > 0


def test_studio_doctor_prints_the_report(studio_home: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "studio", "doctor", "--json"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["device"] in ("cpu", "cuda") and len(report["workspaces"]) == len(all_modalities())
    assert report["folders"][1] == ["settings", str(studio_home / "config")]
    plain = subprocess.run([sys.executable, "-m", "studio", "doctor"], capture_output=True, text=True, timeout=300,
                           cwd=ROOT)
    assert "Workspaces:" in plain.stdout and "  Sprites: sprite-gan: PyTorch on the " in plain.stdout


def test_the_device_line_counts_cores_and_threads_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from studio.ml import device

    monkeypatch.setattr(device.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert device.describe_device("cpu") == "CPU (2 cores, 1 thread for models)"
    monkeypatch.setattr(device.os, "cpu_count", lambda: 1)
    assert device.describe_device("cpu") == "CPU (1 core, 1 thread for models)"
