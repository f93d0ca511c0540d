"""Fuzz the readers of files beside and inside models and runs (issue 14): random bytes and random JSON as a
model's sidecar (beside it or inside its header), an export record, the bundled manifest, a checkpoint's sidecar,
a data set's manifest, a run record and the runtime choices; only the project's own errors may come out."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file

from studio.core.errors import StudioError
from studio.ml.checkpoint import PAIR_KEY, SIDECAR_KEY, load_model, read_sidecar
from studio.ml.data import music as music_data
from studio.ml.data.copy_text import read_debian_corpus
from studio.ml.data.music_corpus import RecordCache
from studio.ml.data.sprites import load_sprite_dataset
from studio.ml.manifest import read_manifest
from studio.ml.runtime import select
from studio.ml.runtime.exports import read_record
from studio.ml.store import ModelStore
from studio.ml.train import sprite as sprite_training
from studio.ml.train.checkpoints import load_checkpoint
from tests.ml.sprite_helpers import make_dataset
from tests.ml.test_model_files import write_probe
from tests.unit.test_hostile_files import FUZZ, json_texts, json_values, only_studio_errors

_FOLDER = Path(tempfile.mkdtemp(prefix="studio-fuzz-ml-"))
raw = st.binary(max_size=300) | json_texts.map(str.encode)
sidecars = st.dictionaries(st.sampled_from(["arch", "config", "name", "categories", "metrics", "modality", "pair",
                                            "step", "groups", "optimizers", "extra"]), json_values, max_size=8)
any_json = raw | sidecars.map(lambda d: json.dumps(d).encode())


def _probe(name: str = "probe") -> Path:
    return write_probe(_FOLDER / name / "probe.safetensors")


@FUZZ
@given(any_json)
def test_fuzz_sidecar_beside_a_model(data: bytes) -> None:
    weights = _probe()
    save_file({"linear.weight": torch.zeros(3, 3), "linear.bias": torch.zeros(3)}, str(weights))  # none inside
    weights.with_suffix(".json").write_bytes(data)
    only_studio_errors(lambda: load_model(weights))
    ModelStore(bundled=_FOLDER / "none", user=weights.parent, shared=_FOLDER / "none").entries()  # never raises


@FUZZ
@given(st.text(max_size=300) | sidecars.map(json.dumps), st.text(max_size=20))
def test_fuzz_sidecar_inside_a_model(inside: str, token: str) -> None:
    weights = _probe("inside")
    tensors = {"linear.weight": torch.zeros(3, 3), "linear.bias": torch.zeros(3)}
    save_file(tensors, str(weights), metadata={SIDECAR_KEY: inside, PAIR_KEY: token})
    weights.with_suffix(".json").unlink(missing_ok=True)
    only_studio_errors(lambda: load_model(weights))
    only_studio_errors(lambda: read_sidecar(weights))


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_weights_bytes(data: bytes) -> None:
    weights = _probe("bytes")
    weights.write_bytes(data)
    only_studio_errors(lambda: load_model(weights))


@FUZZ
@given(any_json)
def test_fuzz_export_record(data: bytes) -> None:
    folder = _FOLDER / "export"
    folder.mkdir(exist_ok=True)
    (folder / "export.json").write_bytes(data)
    record = only_studio_errors(lambda: read_record(folder))
    if record is not None:  # a graph file named by the record never lies outside its folder
        for graph in record.graphs:
            assert record.graph_path(graph).parent == folder


@FUZZ
@given(raw | st.lists(sidecars, max_size=3).map(lambda m: json.dumps({"models": m}).encode()))
def test_fuzz_bundled_manifest(data: bytes) -> None:
    folder = _FOLDER / "bundled"
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_bytes(data)
    only_studio_errors(lambda: read_manifest(folder))


@FUZZ
@given(any_json)
def test_fuzz_checkpoint_sidecar(data: bytes) -> None:
    folder = _FOLDER / "checkpoints"
    folder.mkdir(exist_ok=True)
    path = folder / "step-00000001.safetensors"
    save_file({"model/w": torch.zeros(2)}, str(path))
    path.with_suffix(".json").write_bytes(data)
    only_studio_errors(lambda: load_checkpoint(path))


@pytest.fixture(scope="module")
def sprite_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("sprites"), train=4, val=2)


@FUZZ
@given(any_json)
def test_fuzz_data_set_manifests(sprite_set: Path, data: bytes) -> None:
    (sprite_set / "manifest.json").write_bytes(data)
    only_studio_errors(lambda: load_sprite_dataset(sprite_set))
    folder = _FOLDER / "music-set"
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_bytes(data)
    only_studio_errors(lambda: music_data.MusicData.load(folder, "train"))


@FUZZ
@given(any_json)
def test_fuzz_run_record(sprite_set: Path, data: bytes) -> None:
    config = sprite_training.SpriteTrainConfig(family="gan", data=sprite_set, preset="quick")
    plan = sprite_training.make_plan(config, ["squares", "discs", "bars"])
    run = _FOLDER / "run"
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_bytes(data)
    only_studio_errors(lambda: sprite_training._check_resume(run, plan))


@FUZZ
@given(any_json)
def test_fuzz_runtime_choices(studio_home: Path, data: bytes) -> None:
    path = select._choices_path()
    path.write_bytes(data)
    choices: Any = select._read_choices()
    assert isinstance(choices, dict) and all(isinstance(v, str) for v in choices.values())


@FUZZ
@given(st.lists(raw, max_size=4).map(b"\n".join))
def test_fuzz_json_lines_files(data: bytes) -> None:
    """The package-description corpus (--heldout, --data) and the tune cache are read a line at a time."""
    path = _FOLDER / "lines.jsonl"
    path.write_bytes(data)
    only_studio_errors(lambda: read_debian_corpus(path))
    RecordCache(path)  # a cache: damaged lines are skipped, never an error


def test_only_studio_errors_is_not_a_test_that_cannot_fail() -> None:
    with pytest.raises(KeyError):
        only_studio_errors(lambda: {}["missing"])
    assert issubclass(type(StudioError("x")), Exception)
