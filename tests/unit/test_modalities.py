"""The modality registry: one object per modality, registered once; generic code finds every part through it (files
a workspace opens, model files the store lists, runtime and step adapters, training commands)."""

from __future__ import annotations

import dataclasses

import pytest

from studio.core import modalities
from studio.core.modalities import (
    all_modalities,
    for_extension,
    get,
    model_file_patterns,
    runtime_adapter,
    step_adapter,
    trainable,
)
from studio.core.modality import Ref, TrainChoice


def test_every_modality_is_registered_once_with_its_parts() -> None:
    names = [m.name for m in all_modalities()]
    assert names[:3] == ["sprite", "copy", "music"] and len(set(names)) == len(names)
    assert "voice" in names
    for modality in all_modalities():
        assert modality.label and modality.title and modality.workspace.target and modality.tasks
        assert get(modality.name) is modality
    with pytest.raises(KeyError, match="unknown modality 'video'"):
        get("video")


def test_a_modality_registered_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    modalities.all_modalities.cache_clear()
    monkeypatch.setattr(modalities, "REGISTERED", ("sprite", "music", "sprite"))
    try:
        with pytest.raises(ValueError, match="registered twice"):
            all_modalities()
    finally:
        modalities.all_modalities.cache_clear()


def test_generic_code_finds_parts_through_the_registry() -> None:
    assert for_extension(".PNG").name == "sprite" and for_extension(".spot").name == "voice"
    assert for_extension(".xyz") is None
    assert {"*.safetensors", "*.gguf", "*.onnx"} <= set(model_file_patterns())
    assert runtime_adapter("sprite-gan") == Ref("studio.ml.runtime.sprites:ADAPTER")
    assert step_adapter("llama").target.endswith("DecoderSteps") and step_adapter("sprite-gan") is None
    assert [m.name for m in trainable()] == ["sprite", "copy", "music"]  # voices are installed, not trained


def test_refs_resolve_to_the_parts_they_name() -> None:
    assert Ref("studio.core.modality:TrainChoice").load() is TrainChoice
    assert Ref("studio.core.modality").load().__name__ == "studio.core.modality"


@pytest.mark.parametrize(("name", "choice", "expected"), [
    ("sprite", TrainChoice("vae", "data", "quick", "mine", base="", grid=32, threads=2),
     ["sprite", "--model", "vae", "--grid", "32", "--scratch", "--data", "data", "--preset", "quick", "--name", "mine",
      "--threads", "2"]),
    ("copy", TrainChoice("lora", "lines.txt", "best", "brand", base="smollm2", threads=2, resume=True),
     ["copy", "--base", "smollm2", "--data", "lines.txt", "--preset", "best", "--name", "brand", "--resume"]),
    ("music", TrainChoice("transformer", "tunes", "quick", "t", base="music-transformer", max_steps=5),
     ["music", "--init", "music-transformer", "--data", "tunes", "--preset", "quick", "--name", "t",
      "--max-steps", "5"]),
])
def test_each_modality_builds_its_training_command(name: str, choice: TrainChoice, expected: list[str]) -> None:
    training = get(name).training
    assert training is not None and training.command(choice) == expected


def test_a_modality_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get("sprite").label = "Pictures"  # type: ignore[misc]
    with pytest.raises(TypeError):
        get("copy").runtimes["x"] = Ref("a:b")  # type: ignore[index]
