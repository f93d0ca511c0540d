"""Model files are untrusted input: sidecar checks, architecture checks, sha256 against the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from studio.core.errors import ModelFileError
from studio.ml import registry
from studio.ml.checkpoint import load_model, save_model
from studio.ml.manifest import entry_for_files, write_manifest
from studio.ml.store import ModelStore


@dataclass(frozen=True)
class ProbeConfig:
    width: int = 4

    @classmethod
    def tiny(cls) -> ProbeConfig:
        return cls(width=3)


class Probe(nn.Module):
    def __init__(self, config: ProbeConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(config.width, config.width)


if "test-probe" not in registry._ARCHITECTURES:
    registry.register(registry.Architecture("test-probe", "eval", "test", ProbeConfig, Probe))


def write_probe(path: Path, width: int = 3, name: str = "probe") -> Path:
    torch.manual_seed(0)
    return save_model(Probe(ProbeConfig(width)), "test-probe", ProbeConfig(width), path, {"name": name})


def test_round_trip(tmp_path: Path) -> None:
    path = write_probe(tmp_path / "probe.safetensors")
    module, config, meta = load_model(path, expect_arch="test-probe")
    assert config == ProbeConfig(3) and meta["name"] == "probe"
    torch.manual_seed(0)
    original = Probe(ProbeConfig(3))
    assert torch.equal(module.linear.weight, original.linear.weight)


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    path = write_probe(tmp_path / "probe.safetensors")
    with pytest.raises(ModelFileError, match="is a 'test-probe' model, not 'sprite-gan'"):
        load_model(path, expect_arch="sprite-gan")


def test_mismatched_tensors_are_refused(tmp_path: Path) -> None:
    path = write_probe(tmp_path / "probe.safetensors", width=3)
    side = path.with_suffix(".json")
    side.write_text(side.read_text().replace('"width": 3', '"width": 5'))
    with pytest.raises(ModelFileError, match="does not match"):
        load_model(path)


def test_truncated_weights_are_refused(tmp_path: Path) -> None:
    path = write_probe(tmp_path / "probe.safetensors")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        load_model(path)


def test_missing_sidecar_and_unknown_arch(tmp_path: Path) -> None:
    path = write_probe(tmp_path / "probe.safetensors")
    side = path.with_suffix(".json")
    side.write_text(side.read_text().replace('"arch": "test-probe"', '"arch": "nonexistent"'))
    with pytest.raises(ModelFileError, match="unknown architecture"):
        load_model(path)
    side.unlink()  # a file Studio wrote carries its description in its header too
    assert load_model(path)[2]["name"] == "probe"
    save_file(load_file(str(path)), str(path))  # weights from elsewhere: no description inside
    with pytest.raises(ModelFileError, match="JSON description"):
        load_model(path)


def test_bundled_model_is_verified_against_manifest(tmp_path: Path) -> None:
    bundled = tmp_path / "models"
    path = write_probe(bundled / "probe.safetensors")
    entry = entry_for_files(bundled, "probe", "test-probe", "eval", [path, path.with_suffix(".json")])
    write_manifest(bundled, {"probe": entry})
    store = ModelStore(bundled=bundled, user=tmp_path / "user")
    store.verify(store.find("probe"))  # untouched: fine

    tampered = ModelStore(bundled=bundled, user=tmp_path / "user")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match its recorded sha256"):
        tampered.verify(tampered.find("probe"))


def test_a_bundled_model_whose_file_is_gone_says_which_file(tmp_path: Path) -> None:
    """A deleted weights file of a shipped model is named (with what to do), not reported as an unknown model."""
    bundled = tmp_path / "models"
    path = write_probe(bundled / "probe.safetensors")
    write_manifest(bundled, {"probe": entry_for_files(bundled, "probe", "test-probe", "eval",
                                                      [path, path.with_suffix(".json")])})
    path.unlink()
    with pytest.raises(ModelFileError, match=r"bundled model 'probe': probe.safetensors is missing; restore"):
        ModelStore(bundled=bundled, user=tmp_path / "user").find("probe")


def test_unlisted_bundled_model_is_refused(tmp_path: Path) -> None:
    bundled = tmp_path / "models"
    write_probe(bundled / "probe.safetensors")
    store = ModelStore(bundled=bundled, user=tmp_path / "user")
    with pytest.raises(ModelFileError, match="not listed"):
        store.verify(store.find("probe"))


def test_unknown_model_name_lists_what_exists(tmp_path: Path) -> None:
    store = ModelStore(bundled=tmp_path / "none", user=tmp_path / "user")
    with pytest.raises(ModelFileError, match="no model named 'x'"):
        store.find("x")


def test_every_registered_architecture_has_a_tiny_config() -> None:
    for arch in registry.all_architectures():
        config = arch.tiny_config()
        module = arch.build(config)
        assert sum(p.numel() for p in module.parameters()) > 0, arch.name
