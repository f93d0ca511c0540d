"""Model manager operations: import (checked before copying), rename, delete; bundled models stay read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.errors import BadInputError, ModelFileError
from studio.ml.model_import import delete_user_model, import_file, rename_user_model
from studio.ml.store import ModelStore
from tests.ml.test_model_files import write_probe


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    (tmp_path / "user").mkdir()
    return ModelStore(bundled=tmp_path / "bundled", user=tmp_path / "user", shared=tmp_path / "shared")


def test_import_copies_checked_safetensors(tmp_path: Path, store: ModelStore) -> None:
    src = write_probe(tmp_path / "downloads" / "mine.safetensors")
    assert import_file(src, "my-probe", store) == "my-probe"
    entry = store.find("my-probe")
    assert entry.source == "user" and entry.weights.parent == store.user
    with pytest.raises(BadInputError, match="already exists"):
        import_file(src, "my-probe", store)


def test_import_in_shared_folder_registers_in_place(tmp_path: Path, store: ModelStore) -> None:
    src = write_probe(store.shared / "team.safetensors")
    assert import_file(src, "team-probe", store) == "team-probe"
    assert store.find("team-probe").source == "shared"
    assert list(store.user.glob("*.safetensors")) == []


def test_import_refuses_broken_files_and_copies_nothing(tmp_path: Path, store: ModelStore) -> None:
    src = write_probe(tmp_path / "broken.safetensors")
    src.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelFileError):
        import_file(src, "broken", store)
    bad_onnx = tmp_path / "x.onnx"
    bad_onnx.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelFileError, match="not a valid ONNX"):
        import_file(bad_onnx, "x", store)
    with pytest.raises(BadInputError, match="imports"):
        import_file(tmp_path / "broken.json", "y", store)
    assert list(store.user.iterdir()) == []


def test_import_valid_onnx(tmp_path: Path, store: ModelStore) -> None:
    import torch

    path = tmp_path / "lin.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2).eval(), (torch.randn(1, 3),), str(path), dynamo=True, opset_version=18)
    assert import_file(path, "lin", store) == "lin"
    assert (store.user / "onnx-imported" / "lin" / "lin.onnx").exists()


def test_rename_and_delete_user_model(tmp_path: Path, store: ModelStore) -> None:
    write_probe(store.user / "p.safetensors", name="p")
    rename_user_model(store, "p", "renamed")
    assert [e.name for e in store.entries()] == ["renamed"]
    with pytest.raises(BadInputError, match="not a usable model name"):
        rename_user_model(store, "renamed", "../escape")
    removed = delete_user_model(store, "renamed")
    assert len(removed) == 2 and store.entries() == []


def test_bundled_models_are_read_only(tmp_path: Path, store: ModelStore) -> None:
    write_probe(store.bundled / "b.safetensors", name="b")
    with pytest.raises(BadInputError, match="bundled"):
        delete_user_model(store, "b")
    assert (store.bundled / "b.safetensors").exists()
