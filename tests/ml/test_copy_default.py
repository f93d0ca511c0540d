"""The self-trained adapter is the copy default: it loads as the default, a missing or damaged one gives way to the
base model with a note (copy keeps working), a model the user named does not, and the machine report and the
first-run export treat it as the adapter it is."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from studio.core.errors import ModelFileError
from studio.core.jobs import JobSpec
from studio.core.modalities.copy import BASE_LANGUAGE_MODEL, DEFAULT_COPY_MODEL
from studio.ml.cache import ModelCache
from studio.ml.store import ModelEntry, ModelStore
from studio.ml.tasks import copy as copy_tasks
from studio.ml.train.lora import LoRAConfig, save_adapter, with_lora
from tests.ml.copy_fixtures import InMemoryBaseLoader, tiny_lm

ROOT = Path(__file__).resolve().parents[2]


class FakeStore:
    """A store holding ``entries``; ``damaged`` names fail their sha256 check."""

    def __init__(self, entries: list[ModelEntry], damaged: tuple[str, ...] = ()) -> None:
        self.entries = {e.name: e for e in entries}
        self.damaged = damaged

    def find(self, name: str) -> ModelEntry:
        if name not in self.entries:
            raise ModelFileError(f"no model named {name!r}")
        return self.entries[name]

    def verify(self, entry: ModelEntry) -> None:
        if entry.name in self.damaged:
            raise ModelFileError(f"{entry.name}.safetensors: sha256 differs from models/manifest.json")


def _entry(name: str, arch: str = "llama", weights: Path = Path("x")) -> ModelEntry:
    return ModelEntry(name, arch, "copy", "bundled", weights, {"base_model": BASE_LANGUAGE_MODEL})


@pytest.fixture
def adapter_store(tmp_path: Path):
    """A user store with the default adapter trained (one step of nothing: a fresh adapter) on a tiny base."""
    lm = tiny_lm(seed=1)
    store = ModelStore(bundled=tmp_path / "bundled", user=tmp_path / "user")
    save_adapter(store.user / f"{DEFAULT_COPY_MODEL}.safetensors", with_lora(lm.model, LoRAConfig(rank=4)),
                 LoRAConfig(rank=4), {"name": DEFAULT_COPY_MODEL, "base_model": BASE_LANGUAGE_MODEL,
                                      "base_sha256": lm.sha256})
    resources = SimpleNamespace(store=store, cache=ModelCache(), device="cpu", runtime="auto")
    resources.runtimes = InMemoryBaseLoader(resources, lm)
    return resources


def test_the_default_adapter_loads_as_the_default(adapter_store) -> None:
    adapted = copy_tasks.load_copy_model(adapter_store, "")
    assert adapted.name == DEFAULT_COPY_MODEL and adapter_store.runtimes.loaded == [BASE_LANGUAGE_MODEL]
    assert adapted.source["base_model"] == "tiny"


def test_a_missing_or_damaged_default_adapter_gives_way_to_the_base_model_with_a_note() -> None:
    notes: list[str] = []
    missing = FakeStore([_entry(BASE_LANGUAGE_MODEL)])
    assert copy_tasks.resolve_copy_model(missing, "", notes.append) == BASE_LANGUAGE_MODEL
    assert f"no model named {DEFAULT_COPY_MODEL!r}" in notes[0] and "writing with the base model" in notes[0]
    damaged = FakeStore([_entry(BASE_LANGUAGE_MODEL), _entry(DEFAULT_COPY_MODEL, "llama-lora")],
                        damaged=(DEFAULT_COPY_MODEL,))
    assert copy_tasks.resolve_copy_model(damaged, DEFAULT_COPY_MODEL, notes.append) == BASE_LANGUAGE_MODEL
    assert "sha256 differs" in notes[1]
    whole = FakeStore([_entry(BASE_LANGUAGE_MODEL), _entry(DEFAULT_COPY_MODEL, "llama-lora")])
    assert copy_tasks.resolve_copy_model(whole, "", notes.append) == DEFAULT_COPY_MODEL and len(notes) == 2


def test_a_model_the_user_named_does_not_fall_back() -> None:
    store = FakeStore([_entry(BASE_LANGUAGE_MODEL)])
    assert copy_tasks.resolve_copy_model(store, "my-brand-voice") == "my-brand-voice"
    resources = SimpleNamespace(store=store, cache=ModelCache(), device="cpu")
    with pytest.raises(ModelFileError, match="my-brand-voice"):
        copy_tasks.load_copy_model(resources, "my-brand-voice")


def test_the_bundled_default_adapter_is_listed_verified_and_made_for_the_base_model() -> None:
    store = ModelStore(bundled=ROOT / "models")
    entry = store.find(DEFAULT_COPY_MODEL)
    store.verify(entry)  # its sha256 against models/manifest.json
    assert entry.source == "bundled" and entry.arch == "llama-lora" and entry.modality == "copy"
    assert entry.meta["base_model"] == BASE_LANGUAGE_MODEL
    assert entry.weights.stat().st_size < 20e6
    assert (ROOT / "models" / f"{DEFAULT_COPY_MODEL}.md").exists()


def test_the_machine_report_and_the_first_run_export_treat_the_default_as_an_adapter(tmp_path: Path) -> None:
    """On a CPU the adapter's int4 graph is made at first run and then measured like any export; on CUDA it runs
    merged into its base model on torch and needs no export."""
    from studio.ml.doctor import workspace_runtime
    from studio.ml.tasks.models import export_status

    weights = tmp_path / "copy-ads.safetensors"
    weights.write_bytes(b"an adapter")
    store = FakeStore([_entry(BASE_LANGUAGE_MODEL), _entry(DEFAULT_COPY_MODEL, "llama-lora", weights)])
    resources = SimpleNamespace(store=store, device="cpu", runtime="auto")
    report = workspace_runtime(resources, "copy", "", {})
    assert report.model == DEFAULT_COPY_MODEL and report.runtime == "torch"
    assert report.how == (f"a LoRA adapter of {BASE_LANGUAGE_MODEL}; no ONNX export of it yet (Models > Export makes "
                          "one)")
    status = export_status(JobSpec("models.export_status"), SimpleNamespace(resources=resources, device="cpu"))
    assert status == {"name": DEFAULT_COPY_MODEL, "variant": "int4", "installed": True, "needed": True}

    on_cuda = SimpleNamespace(store=store, device="cuda", runtime="auto")
    report = workspace_runtime(on_cuda, "copy", "", {})
    assert report.runtime == "torch" and "its ONNX graph is the CPU's" in report.how
    status = export_status(JobSpec("models.export_status"), SimpleNamespace(resources=on_cuda, device="cuda"))
    assert status["needed"] is False

    without_base = SimpleNamespace(store=FakeStore([_entry(DEFAULT_COPY_MODEL, "llama-lora")]), device="cpu",
                                   runtime="auto")
    report = workspace_runtime(without_base, "copy", "", {})
    assert report.runtime_words() == "no model installed" and "base model" in report.how
