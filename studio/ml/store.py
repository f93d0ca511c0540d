"""Finding models: bundled (``models/``, sha256-verified), user-trained/imported, and a shared folder.

A model is a ``NAME.safetensors`` + ``NAME.json`` pair (or, for ONNX exports and language models, other files
listed in the sidecar). The store only lists and verifies; loading is :mod:`studio.ml.checkpoint`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths
from studio.core.errors import ModelFileError
from studio.core.modalities import model_file_patterns
from studio.core.settings import load_settings
from studio.ml.checkpoint import read_sidecar
from studio.ml.manifest import read_manifest, verify_entry


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str
    modality: str
    source: str  # "bundled" | "user" | "shared"
    weights: Path
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def size_bytes(self) -> int:
        folder = self.weights.parent
        return sum(p.stat().st_size for p in folder.glob(self.weights.stem + ".*") if p.is_file())


def _read_meta(weights: Path) -> dict[str, Any] | None:
    """A listed file's checked sidecar; None for files that are not (or no longer) a model: skipped, not fatal."""
    try:
        return read_sidecar(weights)
    except ModelFileError:
        return None


def shared_model_dir() -> Path | None:
    """The shared model folder chosen in Settings (None when there is none)."""
    folder = load_settings().shared_model_dir
    return Path(folder).expanduser() if folder else None


class ModelStore:
    def __init__(
        self, bundled: Path | None = None, user: Path | None = None, shared: Path | None = None
    ) -> None:
        """Folders default to the bundled models, the user's model folder and the Settings' shared folder, so
        every command searches the same places."""
        self.bundled = bundled or paths.bundled_models_dir()
        self.user = user or paths.user_models_dir()
        self.shared = shared if shared is not None else shared_model_dir()
        self._verified: set[str] = set()

    def _scan(self, folder: Path | None, source: str) -> list[ModelEntry]:
        if folder is None or not folder.is_dir():
            return []
        found = []
        # Each modality says which files its models are (language models: GGUF, voices: ONNX); a file is listed once
        # its JSON sidecar exists (see studio.ml.text.lm for GGUF files).
        files = {path for pattern in model_file_patterns() for path in folder.glob(f"**/{pattern}")}
        for weights in sorted(files):
            meta = _read_meta(weights)
            if meta is None:
                continue
            name = meta.get("name") or weights.stem
            modality = meta.get("modality", "")
            found.append(ModelEntry(name, meta["arch"], modality, source, weights, meta))
        return found

    def entries(self) -> list[ModelEntry]:
        """All models; a user model shadows a bundled one of the same name."""
        by_name: dict[str, ModelEntry] = {}
        for folder, source in ((self.bundled, "bundled"), (self.shared, "shared"), (self.user, "user")):
            for entry in self._scan(folder, source):
                by_name[entry.name] = entry
        return sorted(by_name.values(), key=lambda e: (e.modality, e.name))

    def find(self, name: str) -> ModelEntry:
        for entry in self.entries():
            if entry.name == name:
                return entry
        bundled = read_manifest(self.bundled)
        if name in bundled:  # shipped, but a file of it is gone: say which
            verify_entry(self.bundled, bundled[name])
        known = ", ".join(e.name for e in self.entries()) or "none installed"
        raise ModelFileError(f"no model named {name!r} (available: {known})")

    def verified_weights(self, name: str) -> Path:
        """The weights file of model ``name``, checked against the manifest when it is bundled."""
        entry = self.find(name)
        self.verify(entry)
        return entry.weights

    def weights_for(self, value: str) -> Path:
        """A command line's model: a ``.safetensors`` file as given, else the verified weights of the model named."""
        if Path(value).suffix == ".safetensors":
            return Path(value).expanduser()
        return self.verified_weights(value)

    def for_arch(self, arch_prefix: str) -> list[ModelEntry]:
        return [e for e in self.entries() if e.arch.startswith(arch_prefix)]

    def verify(self, entry: ModelEntry) -> None:
        """Bundled models are checked against manifest.json before first use; others have no manifest."""
        if entry.source != "bundled" or entry.name in self._verified:
            return
        manifest = read_manifest(self.bundled)
        if entry.name not in manifest:
            raise ModelFileError(f"bundled model {entry.name!r} is not listed in models/manifest.json")
        verify_entry(self.bundled, manifest[entry.name])
        self._verified.add(entry.name)
