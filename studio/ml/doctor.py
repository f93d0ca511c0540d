"""What Studio runs on here, and why: the facts behind ``studio doctor``, the status bar and Settings.

Each fact comes from its own source (nvidia-smi, the CUDA driver library, torch, onnxruntime, the runtime choices
this machine measured) through :class:`SystemProbe`; tests replace single methods to play other machines (no driver,
an old driver, onnxruntime without its CUDA provider, a library missing). :func:`diagnose` turns them into a
:class:`~studio.core.machine_report.MachineReport` with a plain reason whenever Studio is on the CPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio import __version__
from studio.core import paths
from studio.core.defaults import default_model
from studio.core.errors import ModelFileError
from studio.core.jobs import JobSpec
from studio.core.machine_report import MachineReport, WorkspaceRuntime
from studio.core.modalities import all_modalities, runtime_adapter
from studio.core.modalities import get as get_modality
from studio.ml.device import describe_device

log = logging.getLogger(__name__)

NO_DRIVER = "no NVIDIA driver was found (this machine has no NVIDIA GPU, or its driver is not installed)"
SPEEDS_FILE = "doctor-speeds.json"
FALLBACK_FILE = "last-gpu-fallback.json"


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: str
    total_mib: float
    free_mib: float


class SystemProbe:
    """Where each fact comes from. Every method answers without raising."""

    def nvidia_smi(self) -> list[Gpu] | None:
        """The GPUs nvidia-smi lists; None when it is missing or fails (no driver)."""
        query = "--query-gpu=name,driver_version,memory.total,memory.free"
        try:
            done = subprocess.run(["nvidia-smi", query, "--format=csv,noheader,nounits"], capture_output=True,
                                  text=True, timeout=15, env=paths.system_environment())
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        gpus = []
        for line in done.stdout.strip().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 4:
                with contextlib.suppress(ValueError):
                    gpus.append(Gpu(parts[0], parts[1], float(parts[2]), float(parts[3])))
        return gpus

    def driver_cuda(self) -> tuple[int, int] | None:
        """The newest CUDA version the installed driver supports (libcuda's cuDriverGetVersion), or None."""
        try:
            libcuda = ctypes.CDLL("libcuda.so.1")
        except OSError:
            return None
        version = ctypes.c_int(0)
        if libcuda.cuDriverGetVersion(ctypes.byref(version)) != 0 or version.value <= 0:
            return None
        return version.value // 1000, version.value % 1000 // 10

    def torch_cuda_build(self) -> str | None:
        """The CUDA version torch was built for; None for a CPU build."""
        import torch

        return torch.version.cuda

    def torch_cuda(self) -> tuple[bool, str]:
        """(whether torch can use a GPU, what torch said when it could not)."""
        import torch

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            available = torch.cuda.is_available()
        said = " ".join(str(w.message).split(". ")[0] for w in caught)
        return available, said

    def cuda_memory(self) -> tuple[str, float, float] | None:
        """(GPU name, free GiB, total GiB) as torch sees it, or None."""
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info()
        return torch.cuda.get_device_name(0), free / 2**30, total / 2**30

    def onnxruntime(self) -> tuple[str, list[str]]:
        """(version, available providers); ("", []) when onnxruntime is missing."""
        try:
            import onnxruntime as ort
        except ImportError:
            return "", []
        return ort.__version__, list(ort.get_available_providers())

    def cuda_provider_problem(self) -> str:
        """"" when onnxruntime really runs a graph on CUDA here, else why not, in plain words."""
        import onnxruntime as ort

        from studio.ml.runtime.ort_session import prepare_cuda_libraries

        prepare_cuda_libraries()
        library = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
        try:
            ctypes.CDLL(str(library))
        except OSError as exc:
            missing = str(exc).split(":")[0] if "cannot open shared object" in str(exc) else str(exc)
            return f"a library its CUDA provider needs was not found: {missing}"
        try:
            session = ort.InferenceSession(_identity_graph(), providers=["CUDAExecutionProvider",
                                                                          "CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            return f"its CUDA provider failed to start ({str(exc).splitlines()[0][:160]})"
        if "CUDAExecutionProvider" not in session.get_providers():
            return "its CUDA provider did not start (onnxruntime's log says why; run with -v)"
        return ""


def _identity_graph() -> bytes:
    """The smallest ONNX model: y = x, float32 (to see which providers a session really gets)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor.split(".")[0] or 0)


def cpu_reason(asked: str, probe: SystemProbe, gpus: list[Gpu] | None) -> str:
    """Why models run on the CPU, in plain words (no driver, a CPU build, an old driver, a hidden GPU, ...)."""
    if asked == "cpu":
        return "the CPU is chosen in Settings"
    driver_cuda = probe.driver_cuda()
    if not gpus and driver_cuda is None:
        return NO_DRIVER
    build = probe.torch_cuda_build()
    if build is None:
        return "this is Studio's CPU build (its PyTorch has no CUDA): install the CUDA build to use the GPU"
    if driver_cuda is not None and driver_cuda[0] < _version_tuple(build)[0]:
        driver = gpus[0].driver if gpus else "installed"
        return (f"the NVIDIA driver ({driver}) is too old: it supports CUDA up to {driver_cuda[0]}.{driver_cuda[1]}, "
                f"and Studio needs CUDA {build}; update the driver")
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1", "none", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={hidden!r} hides the GPU from Studio"
    available, said = probe.torch_cuda()
    if not available:
        return f"PyTorch cannot use the GPU ({said or 'it gave no reason'})"
    return ""


def provider_problem(device: str, providers: list[str], probe: SystemProbe) -> str:
    """Why onnxruntime would not run on the GPU that torch uses; "" when it does (or when models run on the CPU)."""
    if device != "cuda":
        return ""
    if not providers:
        return "onnxruntime is not installed"
    if "CUDAExecutionProvider" not in providers:
        return ("its CUDA provider is not installed (this onnxruntime is the CPU package; Studio's CUDA build and "
                "`pip install onnxruntime-gpu` bring it)")
    return probe.cuda_provider_problem()


def _gpu_text(gpus: list[Gpu] | None, probe: SystemProbe, driver_cuda: tuple[int, int] | None) -> str:
    cuda = f", CUDA {driver_cuda[0]}.{driver_cuda[1]}" if driver_cuda else ""
    if gpus:
        return "; ".join(f"{g.name}: driver {g.driver}{cuda}, {g.free_mib / 1024:.1f} of {g.total_mib / 1024:.1f} "
                         "GiB free" for g in gpus)
    memory = probe.cuda_memory() if driver_cuda else None
    if memory:
        return f"{memory[0]}: {memory[1]:.1f} of {memory[2]:.1f} GiB free{cuda}"
    return "none found" if driver_cuda is None else f"NVIDIA driver present{cuda}, but no GPU listed"


# --- what each workspace runs on --------------------------------------------------------------------------------

def _choices() -> dict[str, str]:
    try:
        return json.loads((paths.cache_dir() / "runtime_choices.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def remembered_runtime(sha256: str, device: str, choices: dict[str, str] | None = None) -> str:
    """The runtime this machine measured fastest for these weights on ``device`` ("" when not measured yet): the
    runtime selector remembers each choice under a key that starts with the weights' sha256 and names the device."""
    for key, value in (choices if choices is not None else _choices()).items():
        parts = key.split(":")
        if parts[0] == sha256 and device in parts[1:]:
            return value
    return ""


def _has_export(name: str, sha256: str) -> bool:
    from studio.ml.export.pipeline import VARIANTS
    from studio.ml.runtime.exports import find_export

    for variant in VARIANTS:
        with contextlib.suppress(ModelFileError):
            if find_export(name, (variant,), sha256) is not None:
                return True
    return False


def _only_runtime(arch: str) -> str:
    """The runtime of a model that runs one way only (a voice), "" when Studio chooses between several."""
    ref = runtime_adapter(arch)
    runtimes = tuple(getattr(ref.load(), "runtimes", ())) if ref else ()
    return runtimes[0] if len(runtimes) == 1 else ""


def workspace_runtime(resources: Any, modality: str, ort_provider: str, speeds: dict[str, Any]) -> WorkspaceRuntime:
    from studio.ml.checkpoint import sha256_file

    device = resources.device
    name = default_model(modality)
    speed = _speed_words(speeds.get(modality), device, name)
    try:
        entry = resources.store.find(name)
    except ModelFileError:
        return WorkspaceRuntime(modality, name, device, "", how="not installed: this workspace cannot generate",
                                speed=speed)
    from studio.ml.train.lora import ARCH as LORA_ARCH

    adapter = ""
    if entry.arch == LORA_ARCH:
        base = str(entry.meta.get("base_model", ""))
        try:
            resources.store.find(base)
        except ModelFileError:
            return WorkspaceRuntime(modality, name, device, "", how=f"its base model {base or '(unnamed)'} is not "
                                    "installed: this workspace cannot generate", speed=speed)
        if device != "cpu":
            return WorkspaceRuntime(modality, name, device, "torch", "", f"a LoRA adapter, merged into {base}'s "
                                    "weights (its ONNX graph is the CPU's)", speed)
        adapter = f"a LoRA adapter of {base}; "
    only = _only_runtime(entry.arch)
    if only:
        provider = ort_provider if only == "onnxruntime" else ""
        return WorkspaceRuntime(modality, name, device, only, provider, "the only runtime this model has", speed)
    sha256 = sha256_file(entry.weights)
    preference = resources.runtime
    if preference in ("torch", "onnxruntime"):
        runtime, how = preference, "chosen in Settings"
    elif runtime := remembered_runtime(sha256, device):
        how = "measured fastest on this machine"
    elif _has_export(name, sha256):
        runtime, how = "torch", "until its first job compares PyTorch with its ONNX export here (then the faster)"
    else:
        runtime, how = "torch", "no ONNX export of it yet (Models > Export makes one)"
    provider = ort_provider if runtime.startswith("onnxruntime") else ""
    return WorkspaceRuntime(modality, name, device, runtime, provider, adapter + how, speed)


# --- speed -------------------------------------------------------------------------------------------------------

def _speed_words(record: dict[str, Any] | None, device: str, model: str) -> str:
    """The remembered speed of ``model`` on ``device``; nothing for another model (the default changed since)."""
    if not record or record.get("device") != device or record.get("model") != model:
        return ""
    return f"{record['value']:.3g} {record['unit']} on {record['runtime_words']} (measured {record['measured']})"


def read_speeds() -> dict[str, Any]:
    try:
        data = json.loads((paths.cache_dir() / SPEEDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_speed(modality: str, device: str, value: float, unit: str, runtime_words: str, model: str) -> None:
    speeds = read_speeds()
    speeds[modality] = {"device": device, "model": model, "value": value, "unit": unit,
                        "runtime_words": runtime_words, "measured": time.strftime("%Y-%m-%d %H:%M")}
    (paths.cache_dir() / SPEEDS_FILE).write_text(json.dumps(speeds, indent=2), encoding="utf-8")


def measure_speed(resources: Any, modality: str, run: Callable[[JobSpec], Any]) -> None:
    """Time the workspace's usual job on its default model (run once to load and choose the runtime, then timed)
    and remember the speed; ``run`` runs a job spec through the task table."""
    probe = get_modality(modality).speed_probe
    try:
        entry = resources.store.find(default_model(modality))
    except ModelFileError:
        return
    if probe is None:
        return
    spec, rate, unit = probe.load()(entry)
    run(spec)
    start = time.perf_counter()
    result = run(spec)
    value = rate(result, time.perf_counter() - start)
    words = workspace_runtime(resources, modality, "", {}).runtime_words()
    remember_speed(modality, resources.device, value, unit, words, entry.name)


# --- out-of-memory fallbacks ----------------------------------------------------------------------------------------

def remember_gpu_fallback(kind: str, reason: str) -> None:
    """Called when a job left the GPU for the CPU; the doctor shows the last one."""
    record = {"job": kind, "reason": reason, "when": time.strftime("%Y-%m-%d %H:%M")}
    with contextlib.suppress(OSError):
        (paths.cache_dir() / FALLBACK_FILE).write_text(json.dumps(record), encoding="utf-8")


def last_gpu_fallback() -> str:
    try:
        record = json.loads((paths.cache_dir() / FALLBACK_FILE).read_text(encoding="utf-8"))
        return f"on {record['when']} a job ({record['job']}) moved to the CPU because {record['reason']}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


# --- the report -------------------------------------------------------------------------------------------------

def _program() -> str:
    if paths.is_bundle():
        folder = Path(paths.repo_root()).parent
        version = folder / "VERSION"  # "studio 0.1.0 cuda abc1234", written by packaging/build.sh
        build = version.read_text(encoding="utf-8").split() if version.exists() else []
        variant = f" ({build[2]} build, commit {build[3]})" if len(build) > 3 else ""
        return f"Studio {__version__}, bundle{variant} in {folder}"
    return f"Studio {__version__}, from the Python environment at {Path(sys.prefix)}"


def _folders() -> tuple[tuple[str, str], ...]:
    install = Path(paths.repo_root()).parent if paths.is_bundle() else paths.repo_root()
    writable = "writable" if os.access(install, os.W_OK) else "read-only; fine, Studio writes nothing there"
    return (("program", f"{install} ({writable})"), ("settings", str(paths.config_dir())),
            ("your models and data", str(paths.data_dir())), ("caches", str(paths.cache_dir())))


def diagnose(resources: Any, probe: SystemProbe | None = None) -> MachineReport:
    """The report for the worker's ``resources`` (its device, settings and model store)."""
    import torch

    probe = probe or SystemProbe()
    device = resources.device
    gpus = probe.nvidia_smi()
    driver_cuda = probe.driver_cuda()
    build = probe.torch_cuda_build()
    ort_version, providers = probe.onnxruntime()
    fallback = cpu_reason(resources.settings.device, probe, gpus) if device != "cuda" else ""
    ort_problem = provider_problem(device, providers, probe)
    ort_provider = "CUDAExecutionProvider" if device == "cuda" and not ort_problem else "CPUExecutionProvider"
    speeds = read_speeds()
    workspaces = tuple(workspace_runtime(resources, modality.name, ort_provider, speeds)
                       for modality in all_modalities())
    notes = tuple(note for note in (last_gpu_fallback(),) if note)
    return MachineReport(
        studio=_program(),
        torch=f"PyTorch {torch.__version__}, " + (f"CUDA {build} build" if build else "CPU build"),
        onnxruntime=(f"ONNX Runtime {ort_version}: {', '.join(providers) or 'no providers'}" if ort_version
                     else "ONNX Runtime: not installed (models run through PyTorch only)"),
        gpu=_gpu_text(gpus, probe, driver_cuda),
        device=device,
        device_text=describe_device(device),
        fallback=fallback,
        gpu_found=bool(gpus) or driver_cuda is not None,
        asked=resources.settings.device,
        provider_problem=ort_problem,
        notes=notes,
        workspaces=workspaces,
        folders=_folders(),
    )
