"""Model files: safetensors weights + a JSON sidecar (architecture, config, version, data, metrics).

Never pickle. A file is accepted only when its sidecar names a registered architecture, its config fits that
architecture, and its tensors match the module exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from studio.core.errors import ModelFileError
from studio.core.safe_write import guarded_write
from studio.ml import registry

FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def config_from_dict(config_cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(data) - known
    if unknown:
        raise ModelFileError(f"config has fields this version does not know: {', '.join(sorted(unknown))}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return config_cls(**kwargs)


def write_with_sidecar(weights: Path, write_weights: Callable[[Path], None], sidecar: dict[str, Any],
                       what: str) -> Path:
    """Write a weights file (``write_weights(temporary path)``) and its JSON sidecar through temporary files.

    The sidecar is renamed into place first, so a weights file never appears without its description; a failed
    write (a full disk) removes the temporaries, keeps an earlier pair of that name and raises DiskWriteError.
    """
    weights = Path(weights)
    tmp = weights.with_name(weights.name + ".tmp")
    side = sidecar_path(weights)
    side_tmp = side.with_name(side.name + ".tmp")
    with guarded_write(what, weights, tmp, side_tmp):
        weights.parent.mkdir(parents=True, exist_ok=True)
        write_weights(tmp)
        side_tmp.write_text(json.dumps(sidecar, indent=2, default=str), encoding="utf-8")
        side_tmp.replace(side)
        tmp.replace(weights)
    return weights


def save_model(
    module: nn.Module, arch_name: str, config: Any, weights: Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``weights`` (.safetensors) and its JSON sidecar atomically (see :func:`write_with_sidecar`)."""
    weights = Path(weights)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    sidecar = {
        "arch": arch_name,
        "format": FORMAT_VERSION,
        "config": dataclasses.asdict(config),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(meta or {}),
    }
    metadata = {"arch": arch_name, "format": str(FORMAT_VERSION)}
    return write_with_sidecar(weights, lambda tmp: save_file(state, str(tmp), metadata=metadata), sidecar,
                              f"the model {weights.stem}")


def read_sidecar(weights: Path) -> dict[str, Any]:
    side = sidecar_path(Path(weights))
    if not side.exists():
        raise ModelFileError(f"{side.name} is missing: a model needs its JSON description beside the weights")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{side.name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "arch" not in data or "config" not in data:
        raise ModelFileError(f"{side.name} does not describe a Studio model (no 'arch' or 'config')")
    return data


def load_model(
    weights: Path, expect_arch: str | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Load a model file; returns (module in eval mode, config, sidecar)."""
    weights = Path(weights)
    if not weights.exists():
        raise ModelFileError(f"model file {weights} does not exist")
    meta = read_sidecar(weights)
    if expect_arch is not None and meta["arch"] != expect_arch:
        raise ModelFileError(
            f"{weights.name} is a {meta['arch']!r} model, not {expect_arch!r}: pick a model of the right kind"
        )
    try:
        arch = registry.get(meta["arch"])
    except KeyError as exc:
        raise ModelFileError(str(exc)) from None
    try:
        config = config_from_dict(arch.config_cls, meta["config"])
    except TypeError as exc:
        raise ModelFileError(f"{weights.name}: config does not fit {arch.name}: {exc}") from None
    module = arch.build(config)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{weights.name} is not a readable safetensors file ({exc})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelFileError(f"{weights.name} does not match the {arch.name} architecture: {first}") from None
    module.eval().to(device)
    return module, config, meta
