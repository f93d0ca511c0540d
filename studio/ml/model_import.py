"""Importing, renaming and deleting the user's models. Bundled models are read-only.

Every import is checked before anything is copied: safetensors must load into their declared architecture, ONNX
must pass the checker and open in onnxruntime, GGUF must be a llama-architecture file the loader accepts.
Files already inside a model folder Studio reads (user or shared) are registered in place, never copied twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from studio.core.errors import BadInputError, ModelFileError
from studio.core.formats.json_file import expect_object, read_json
from studio.core.safe_write import Content, copy_of, staged_folder, write_atomic, write_group
from studio.ml.checkpoint import load_model, read_sidecar
from studio.ml.store import ModelStore

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise BadInputError(f"{name!r} is not a usable model name: letters, digits, '.', '_' and '-' (max 64)")
    return name


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and folder.resolve() in path.resolve().parents


def _sidecar(weights: Path) -> dict:
    """The sidecar of a user model file: a model's (checked, see read_sidecar) or a GGUF's."""
    if weights.suffix == ".safetensors":
        return read_sidecar(weights)
    return expect_object(read_json(weights.with_suffix(".json"), error=ModelFileError), weights.name, ModelFileError)


def _write_sidecar_name(weights: Path, name: str) -> None:
    """Rename a model by its sidecar alone, crash-safely (the pair token is kept, so the weights stay its own)."""
    meta = {**_sidecar(weights), "name": name}
    write_atomic(weights.with_suffix(".json"), json.dumps(meta, indent=2), f"the description of {name}")


def _is_model(weights: Path) -> bool:
    """Whether ``weights`` is a listed model, not what a failed import of an earlier version left behind."""
    try:
        _sidecar(weights)
    except ModelFileError:
        return False
    return True


def _import_safetensors(path: Path, name: str, store: ModelStore) -> str:
    meta = read_sidecar(path)
    if meta["arch"] == "llama-lora":
        from studio.ml.train.lora import read_adapter

        read_adapter(path)  # an adapter is checked as an adapter, against its recorded base model
    else:
        load_model(path)  # raises ModelFileError with the reason when it does not fit its architecture
    name = check_name(name or meta.get("name") or path.stem)
    if _inside(path, store.user) or _inside(path, store.shared):
        _write_sidecar_name(path, name)
        return name
    target = store.user / f"{name}.safetensors"
    if target.exists() and _is_model(target):
        raise BadInputError(f"a model named {name!r} already exists: rename it or pick another name")
    meta = {**meta, "name": name, "imported_from": str(path)}
    files: list[tuple[Path, Content]] = [(target.with_suffix(".json"), json.dumps(meta, indent=2))]
    card = path.with_suffix(".md")
    if card.exists():
        files.append((target.with_suffix(".md"), copy_of(card)))
    files.append((target, copy_of(path)))  # last: the weights make the model appear in the list
    write_group(files, f"the model {name}")
    return name


def _import_onnx(path: Path, name: str, store: ModelStore) -> str:
    import onnx

    from studio.ml.runtime.ort_session import open_session

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # onnx raises ValidationError and protobuf DecodeError
        raise ModelFileError(f"{path.name} is not a valid ONNX model ({str(exc).splitlines()[0][:200]})") from None
    open_session(path)
    name = check_name(name or path.stem)
    folder = store.user / "onnx-imported" / name
    if (folder / path.name).is_file():
        raise BadInputError(f"an ONNX model named {name!r} was already imported")
    with staged_folder(folder, f"the ONNX model {name}") as staging:
        write_atomic(staging / path.name, copy_of(path), f"the ONNX model {name}")
    return name


def _import_gguf(path: Path, name: str, store: ModelStore) -> str:
    from studio.ml.text.gguf_loader import register_gguf  # the language-model loader validates the file

    return register_gguf(path, check_name(name or path.stem), store.user / "lm")


def import_file(path: Path, name: str, store: ModelStore) -> str:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _import_safetensors(path, name, store)
    if suffix == ".onnx":
        return _import_onnx(path, name, store)
    if suffix == ".gguf":
        return _import_gguf(path, name, store)
    raise BadInputError(f"{path.name}: Studio imports .safetensors (with its .json), .onnx and .gguf files")


def _user_entry(store: ModelStore, name: str):
    entry = store.find(name)
    if entry.source == "bundled":
        raise BadInputError(f"{name!r} is a bundled model and cannot be changed; import a copy instead")
    return entry


def rename_user_model(store: ModelStore, name: str, new_name: str) -> str:
    entry = _user_entry(store, name)
    check_name(new_name)
    if any(e.name == new_name for e in store.entries()):
        raise BadInputError(f"a model named {new_name!r} already exists")
    _write_sidecar_name(entry.weights, new_name)
    return new_name


def delete_user_model(store: ModelStore, name: str) -> list[str]:
    """Delete a user model's files (weights, sidecar, card, samples); returns the removed paths."""
    entry = _user_entry(store, name)
    stem = entry.weights.stem
    removed = []
    for path in sorted(entry.weights.parent.glob(f"{stem}.*")) + sorted(entry.weights.parent.glob(f"{stem}-*.png")):
        path.unlink()
        removed.append(str(path))
    return removed
