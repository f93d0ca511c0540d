"""Training checkpoints: weights, EMA weights and optimizer state in one safetensors file + a JSON sidecar.

No pickle: tensors go to safetensors under ``group/name`` keys, everything else (step, optimizer hyper-parameters,
run bookkeeping) to JSON, kept beside the weights and inside their header (one unit, see
:func:`studio.ml.checkpoint.write_with_sidecar`), so a run killed mid-write leaves the previous checkpoint as the
latest complete one; a write that fails (a full disk) removes its temporary files and raises
:class:`~studio.core.errors.DiskWriteError`, so the run can be resumed from that one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from studio.core.errors import ModelFileError
from studio.ml.checkpoint import read_pair, write_with_sidecar

_NAME = re.compile(r"step-(\d+)\.safetensors")


@dataclass
class Checkpoint:
    step: int
    groups: dict[str, dict[str, torch.Tensor]]  # e.g. {"model": state_dict, "ema": state_dict}
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> torch optimizer state_dict
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step-{step:08d}.safetensors"


def _flatten_optimizer(name: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{name}/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim/{name}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            index, sub = key[len(prefix) :].split("/", 1)
            state.setdefault(int(index), {})[sub] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(folder: Path, checkpoint: Checkpoint) -> Path:
    """Write ``step-NNNNNNNN.safetensors`` + ``.json`` into ``folder``; returns the weights path."""
    folder = Path(folder)
    path = checkpoint_path(folder, checkpoint.step)
    tensors: dict[str, torch.Tensor] = {}
    for group, state in checkpoint.groups.items():
        tensors.update({f"{group}/{key}": value for key, value in state.items()})
    optim_meta = {}
    for name, state in checkpoint.optimizers.items():
        flat, meta = _flatten_optimizer(name, state)
        tensors.update(flat)
        optim_meta[name] = meta
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    sidecar = {
        "step": checkpoint.step,
        "groups": sorted(checkpoint.groups),
        "optimizers": optim_meta,
        "extra": checkpoint.extra,
    }
    return write_with_sidecar(path, tensors, sidecar, f"the checkpoint {path.stem}", retry="resume")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    sidecar = read_pair(path)
    names = sidecar.get("groups", [])
    groups_ok = isinstance(names, list) and all(isinstance(g, str) for g in names)
    if not isinstance(sidecar.get("step"), int) or not groups_ok \
            or not isinstance(sidecar.get("optimizers", {}), dict) or not isinstance(sidecar.get("extra", {}), dict):
        raise ModelFileError(f"checkpoint {path.name}: its description is damaged (step, groups, optimizers, extra)")
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (OSError, SafetensorError) as exc:
        raise ModelFileError(f"checkpoint {path.name} cannot be read ({exc})") from None
    groups: dict[str, dict[str, torch.Tensor]] = {g: {} for g in names}
    for key, value in tensors.items():
        group, _, name = key.partition("/")
        if group in groups:
            groups[group][name] = value
    try:
        optimizers = {
            name: _unflatten_optimizer(name, tensors, meta) for name, meta in sidecar.get("optimizers", {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"checkpoint {path.name}: its optimizer state is damaged ({exc!r})") from None
    return Checkpoint(sidecar["step"], groups, optimizers, sidecar.get("extra", {}))


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints (weights and sidecar both present), oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("step-*.safetensors"):
        match = _NAME.fullmatch(path.name)
        if match and path.with_suffix(".json").exists():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints."""
    for path in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
