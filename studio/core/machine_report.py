"""What ``studio doctor`` finds out about this machine, as plain data, and the words it is shown in.

:mod:`studio.ml.doctor` gathers it (torch, onnxruntime, the NVIDIA driver); the CLI prints :func:`report_lines`, the
status bar shows :func:`status_summary` and the Settings dialog the same lines. Nothing here imports torch or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.core.modalities import get as get_modality

RUNTIME_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "flite": "the Flite synthesiser"}



@dataclass(frozen=True)
class WorkspaceRuntime:
    """What one workspace's default model runs on."""

    modality: str  # a registered modality's name
    model: str
    device: str  # "cpu" | "cuda"
    runtime: str  # "torch" | "onnxruntime" | "onnxruntime:int4" | another runtime's name ("flite") | "" (none)
    provider: str = ""  # the onnxruntime execution provider in use ("" on torch)
    how: str = ""  # why this runtime: "measured faster here", "chosen in Settings", "not compared yet: ..."
    speed: str = ""  # "38 sprites/s (measured 2026-12-04)" or ""

    @property
    def label(self) -> str:
        try:
            return get_modality(self.modality).title
        except KeyError:
            return self.modality.title()

    def runtime_words(self) -> str:
        if not self.runtime:
            return "no model installed"
        kind, _, variant = self.runtime.partition(":")
        engine = RUNTIME_NAMES.get(kind, kind) + (f" ({variant})" if variant else "")
        where = "GPU" if self.device == "cuda" else "CPU"
        provider = f", {self.provider}" if self.provider else ""
        return f"{engine} on the {where}{provider}"


@dataclass(frozen=True)
class MachineReport:
    studio: str  # "Studio 0.1.0, bundle (cpu build) in /opt/studio"
    torch: str  # "torch 2.13.0+cpu, CPU build"
    onnxruntime: str  # "onnxruntime 1.32.0: CPUExecutionProvider"
    gpu: str  # "NVIDIA H200: driver 580.65, CUDA 13.0, 139.2 of 140.4 GiB free" or "none found"
    device: str  # what models run on: "cpu" | "cuda"
    device_text: str  # "CPU (2 cores, 1 thread for models)"
    fallback: str = ""  # why models run on the CPU ("" on the GPU)
    gpu_found: bool = False  # an NVIDIA driver or GPU is present (then running on the CPU is worth a warning)
    asked: str = "auto"  # the device chosen in Settings
    provider_problem: str = ""  # why onnxruntime runs on the CPU while torch uses the GPU; ""
    notes: tuple[str, ...] = ()  # anything else to know: a recent out-of-memory fallback, two onnxruntimes, ...
    workspaces: tuple[WorkspaceRuntime, ...] = ()
    folders: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (what, path)

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"


def report_lines(report: MachineReport) -> list[str]:
    """The report as the lines ``studio doctor`` prints (and Settings shows)."""
    lines = [report.studio, report.torch, report.onnxruntime, f"GPU: {report.gpu}",
             f"Models run on: {report.device_text}"]
    if report.fallback:
        lines.append(f"Running on the CPU because {report.fallback}")
    if report.provider_problem:
        lines.append(f"ONNX Runtime runs on the CPU because {report.provider_problem}")
    lines.extend(f"Note: {note}" for note in report.notes)
    if report.workspaces:
        lines.append("Workspaces:")
    for ws in report.workspaces:
        lines.append(f"  {ws.label}: {ws.model or '-'}: {ws.runtime_words()}")
        if ws.how:
            lines.append(f"    {ws.how}")
        lines.append(f"    speed: {ws.speed or 'not measured yet (studio doctor --measure, about a minute)'}")
    if report.folders:
        lines.append("Folders:")
        lines.extend(f"  {what}: {path}" for what, path in report.folders)
    return lines


def status_summary(report: MachineReport) -> tuple[str, str, bool]:
    """(status-bar text, its tooltip, whether it is a warning): the device, and why not the GPU when it is not."""
    text = report.device_text
    warn = bool(report.provider_problem) or (bool(report.fallback) and report.gpu_found and report.asked != "cpu")
    if report.provider_problem:
        text += " · ONNX Runtime on the CPU"
    elif warn:
        text += " · GPU not used"
    return text, "\n".join(report_lines(report)), warn
