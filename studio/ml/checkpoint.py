"""Model files: safetensors weights + a JSON sidecar (architecture, config, version, data, metrics).

Never pickle. A file is accepted only when its sidecar names a registered architecture, its config fits that
architecture, and its tensors match the module exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from studio.core.errors import ModelFileError
from studio.core.formats.json_file import parse_json, read_json
from studio.core.safe_write import staged_file, write_atomic
from studio.ml import registry

FORMAT_VERSION = 1
PAIR_FIELD = "pair"  # the token a sidecar shares with the weights it was saved with
PAIR_KEY = "studio_pair"  # header metadata of the weights: that token...
SIDECAR_KEY = "studio_sidecar"  # ...and the whole sidecar
MAX_HEADER_BYTES = 100 << 20  # the safetensors format's own limit


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


def _nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def write_with_sidecar(weights: Path, tensors: dict[str, torch.Tensor], sidecar: dict[str, Any], what: str,
                       metadata: dict[str, str] | None = None, retry: str = "try again") -> Path:
    """Write safetensors weights and their JSON sidecar as one unit.

    The sidecar, with a fresh pair token, goes into the weights file's own header as well as beside it. Renaming
    the weights into place is the commit: a kill before it leaves the previous pair untouched, a kill after it
    leaves the new weights with the sidecar they were saved with inside them, and :func:`read_pair` prefers that
    one whenever the file beside carries another token. A failed write (a full disk) keeps the earlier pair and
    raises DiskWriteError (see :mod:`studio.core.safe_write`).
    """
    weights = Path(weights)
    sidecar = {**sidecar, PAIR_FIELD: secrets.token_hex(8)}
    text = json.dumps(sidecar, indent=2, default=str)
    header = {**(metadata or {}), PAIR_KEY: sidecar[PAIR_FIELD], SIDECAR_KEY: json.dumps(sidecar, default=str)}
    with staged_file(weights, what, needed=_nbytes(tensors) + 2 * len(text), retry=retry) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    write_atomic(sidecar_path(weights), text, f"the description of {what}", retry)
    return weights


def save_model(
    module: nn.Module, arch_name: str, config: Any, weights: Path, meta: dict[str, Any] | None = None,
    retry: str = "try again",
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
    return write_with_sidecar(weights, state, sidecar, f"the model {weights.stem}", metadata, retry)


def header_metadata(weights: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its header alone (no tensors are loaded)."""
    weights = Path(weights)
    try:
        with open(weights, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 2 <= size <= min(MAX_HEADER_BYTES, weights.stat().st_size - 8):
                raise ModelFileError(f"{weights.name} is not a safetensors file (header size {size})")
            header = parse_json(fh.read(size), weights.name, max_bytes=MAX_HEADER_BYTES, error=ModelFileError)
    except OSError as exc:
        raise ModelFileError(f"{weights.name} cannot be read ({exc.strerror or exc})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        return {}
    return {k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, str)}


def _inside(weights: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(sidecar stored in the weights file, its pair token), or (None, None) for files without one."""
    if weights.suffix != ".safetensors" or not weights.is_file():
        return None, None
    try:
        meta = header_metadata(weights)
        if SIDECAR_KEY not in meta:
            return None, None
        inside = parse_json(meta[SIDECAR_KEY], weights.name, error=ModelFileError)
    except ModelFileError:
        return None, None
    return (inside, meta.get(PAIR_KEY)) if isinstance(inside, dict) else (None, None)


def read_pair(weights: Path) -> dict[str, Any]:
    """The sidecar that belongs to ``weights``: the file beside it when its pair token matches the one in the
    weights' header (or the weights carry none: bundled and older files), else the copy inside the weights (the
    next save of the sidecar, a rename for instance, puts it beside them again). ModelFileError when there is
    neither or the file beside is damaged."""
    weights = Path(weights)
    side = sidecar_path(weights)
    outside: Any = None
    problem = f"{side.name} is missing: a model needs its JSON description beside the weights"
    if side.exists():
        try:
            outside = read_json(side, error=ModelFileError)
        except ModelFileError as exc:
            problem = str(exc)
    inside, token = _inside(weights)
    if inside is not None and (not isinstance(outside, dict) or outside.get(PAIR_FIELD) != token):
        return inside
    if outside is None:
        raise ModelFileError(problem)
    if not isinstance(outside, dict):
        raise ModelFileError(f"{side.name} does not describe a Studio model (not a JSON object)")
    return outside


SIDECAR_TYPES: dict[str, type | tuple[type, ...]] = {
    "arch": str, "config": dict, "name": str, "modality": str, "family": str, "categories": list, "metrics": dict,
    "licence": str, "training": dict, "format": (int, str),
}


def read_sidecar(weights: Path) -> dict[str, Any]:
    """A model's sidecar (see :func:`read_pair`), its fields checked for the types readers rely on."""
    data = read_pair(weights)
    side = sidecar_path(Path(weights)).name
    if "arch" not in data or "config" not in data:
        raise ModelFileError(f"{side} does not describe a Studio model (no 'arch' or 'config')")
    for key, kind in SIDECAR_TYPES.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise ModelFileError(f"{side}: '{key}' has the wrong type ({type(data[key]).__name__})")
    if not all(isinstance(c, str) for c in data.get("categories", [])):
        raise ModelFileError(f"{side}: 'categories' must be a list of names")
    return data


def _check_shapes(weights: Path, arch: registry.Architecture, config: Any) -> None:
    """Refuse a config that does not fit the file's tensors before the module is built for real, so a sidecar
    cannot make Studio allocate a network of any size it likes (the module is built on the meta device)."""
    try:
        with safe_open(str(weights), "pt") as fh:
            shapes = {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{weights.name} is not a readable safetensors file ({exc})") from None
    with torch.device("meta"):
        wanted = {key: tuple(value.shape) for key, value in arch.build(config).state_dict().items()}
    if wanted != shapes:
        differing = sorted(set(wanted) ^ set(shapes)) or sorted(k for k in wanted if wanted[k] != shapes[k])
        raise ModelFileError(f"{weights.name} does not match the {arch.name} architecture: its tensors differ "
                             f"from what its config describes ({', '.join(differing[:3])})")


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
        _check_shapes(weights, arch, config)
        module = arch.build(config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{weights.name}: config does not fit {arch.name}: {str(exc)[:200]}") from None
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
