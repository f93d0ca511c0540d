"""Opening onnxruntime sessions safely: file checks, provider fallback, input checks against the registry."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from pathlib import Path

from studio.core.errors import ModelFileError
from studio.ml.registry import OnnxGraph
from studio.ml.runtime.cpu import clamp_threads

log = logging.getLogger(__name__)


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


@functools.cache
def prepare_cuda_libraries() -> None:
    """Let onnxruntime's CUDA provider find the CUDA and cuDNN libraries torch brings (onnxruntime-gpu is built for
    the same CUDA major): torch loads them when it starts CUDA, and ``onnxruntime.preload_dlls()`` loads the rest
    from the nvidia packages beside onnxruntime (in the bundle too). PyInstaller does not see libraries that are
    loaded by name at run time, so without this a frozen app quietly runs onnxruntime on the CPU."""
    import onnxruntime as ort
    import torch

    if torch.cuda.is_available():
        torch.cuda.init()
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # it prints what it could not load; that belongs in the log
        try:
            preload()
        except Exception as exc:  # a missing folder, an unexpected layout: the provider check says what is missing
            log.warning("onnxruntime.preload_dlls() failed: %s", exc)
    for line in printed.getvalue().splitlines():
        log.info("onnxruntime: %s", line)


def providers_for(device: str) -> tuple[list[str], str]:
    """(providers, note): CUDA asked but not installed falls back to CPU with a note saying so."""
    have = available_providers()
    if not have:
        raise ModelFileError("onnxruntime is not installed: run the set-up command (it installs the [cpu] extra)")
    if device == "cuda":
        if "CUDAExecutionProvider" in have:
            prepare_cuda_libraries()
            return ["CUDAExecutionProvider", "CPUExecutionProvider"], ""
        return ["CPUExecutionProvider"], "onnxruntime has no CUDA provider here (install the [gpu] extra): using CPU"
    return ["CPUExecutionProvider"], ""


def open_session(path: Path, device: str = "cpu", threads: int = 0, graph: OnnxGraph | None = None,
                 spin_within_runs: bool = False):
    """An InferenceSession on ``path``; refuses truncated files and graphs whose inputs differ from the spec.

    ``spin_within_runs``: the worker threads spin between the operators of one run and sleep as soon as it ends.
    For a decoder that runs some 700 small operators a token, waking a sleeping thread for each costs more than the
    second thread gains (the language model at 2 threads on 2 quiet cores: 11.0 ms a token sleeping, 7.9 ms
    spinning within runs, 10.3 ms on 1 thread). The price is paid when another program keeps a core busy: 16.1
    against 10.8 ms. The app's default thread count leaves a core free for that."""
    import onnxruntime as ort

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"ONNX file {path} does not exist")
    providers, note = providers_for(device)
    if note:
        log.warning(note)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle worker threads sleep instead of spinning: on a desktop busy with other work, spinning threads steal the
    # cores the computing ones need (measured: decoding the language model 80 -> 48 ms a token on 2 busy cores).
    # A decoder may spin within a run only: force_spinning_stop puts the threads to sleep when the run ends.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_within_runs else "0")
    if spin_within_runs:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if threads:
        threads, said = clamp_threads(threads)
        if said:
            log.warning("%s", said)
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad protobufs
        raise ModelFileError(f"{path.name} is not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
    if graph is not None:
        names = [i.name for i in session.get_inputs()]
        if names not in (list(graph.input_names), [*graph.input_names, "tags"] if graph.tagged else None):
            raise ModelFileError(
                f"{path.name} has inputs {names}, but {graph.name!r} expects {list(graph.input_names)}: "
                "export it again with `studio export onnx`"
            )
    return session
