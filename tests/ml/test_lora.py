"""LoRA brand voice on the tiny model: the adapter trains, only it changes, it saves small and loads back, it
changes what the model writes, and the copy task finds it in the model store."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from studio.core.copy_brief import brief_from_dict
from studio.core.copy_formats import generation_format
from studio.core.errors import ModelFileError
from studio.ml.cache import ModelCache
from studio.ml.data.copy_text import split_held_out
from studio.ml.store import ModelStore
from studio.ml.tasks import copy as copy_tasks
from studio.ml.text.copywriter import CopyRequest, generate_ads
from studio.ml.train.lora import (
    LoRAConfig,
    LoRALinear,
    TrainSettings,
    adapter_state,
    apply_adapter,
    items_from_lines,
    read_adapter,
    save_adapter,
    train_lora,
    with_lora,
)
from tests.ml.copy_fixtures import InMemoryBaseLoader, tiny_lm

# 50 lines in one unmistakable voice: short, upbeat, always "Brewly" and "fresh" and an exclamation mark
VOICE = [f"Brewly {verb} fresh {thing}!" for verb in ("pours", "brings", "roasts", "sends", "makes")
         for thing in ("coffee", "beans", "mornings", "cups", "joy", "flavour", "warmth", "rituals", "blends",
                       "smiles")]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained():
    lm = tiny_lm(seed=1, embed_std=0.3)
    base = {k: v.clone() for k, v in lm.model.state_dict().items()}
    train, held = split_held_out(VOICE, 0.2, seed=0)
    settings = TrainSettings(epochs=20, max_steps=40, validation=0.0, lr=2e-2, seed=0,
                             lora=LoRAConfig(rank=8, alpha=16.0, dropout=0.0))
    result = train_lora(lm, items_from_lines(train, "Write lines.", 4, 0),
                        items_from_lines(held, "Write lines.", 1, 0), settings, system="You write ads.")
    return lm, base, result, settings


def test_a_fresh_adapter_changes_nothing() -> None:
    lm = tiny_lm(seed=2)
    adapted = with_lora(lm.model, LoRAConfig(rank=4))
    ids = torch.tensor([[5, 6, 7, 8]])
    assert torch.allclose(adapted(ids)[0], lm.model(ids)[0])
    assert all(not p.requires_grad for n, p in adapted.named_parameters() if ".lora_" not in n)
    names = {n.rsplit(".", 1)[0] for n in adapter_state(adapted)}
    assert "layers.0.self_attn.q_proj" in names and "layers.1.mlp.down_proj" in names


def test_training_learns_the_voice_on_50_lines(trained) -> None:
    _, _, result, _ = trained
    assert result.train_lines == 40 and result.held_out_lines == 10 and result.validation_lines == 0
    assert result.losses[-1] < result.losses[0] * 0.7
    assert result.perplexity_after < result.perplexity_before * 0.5  # held-out lines, never trained on


def test_training_stops_when_validation_lines_stop_improving() -> None:
    lm = tiny_lm(seed=1, embed_std=0.3)
    train, held = split_held_out(VOICE, 0.2, seed=0)
    settings = TrainSettings(epochs=30, validation=0.25, lr=5e-2, seed=0, lora=LoRAConfig(rank=8, dropout=0.0))
    result = train_lora(lm, items_from_lines(train, "Write lines.", 4, 0),
                        items_from_lines(held, "Write lines.", 1, 0), settings, system="You write ads.")
    assert result.validation_lines == 8 and result.train_lines == 32
    assert result.steps < 30 * 2  # stopped before the last epoch
    assert result.validation_perplexity is not None and result.perplexity_after < result.perplexity_before


def test_only_the_adapter_changes(trained) -> None:
    lm, base, result, _ = trained
    for key, value in lm.model.state_dict().items():
        assert torch.equal(value, base[key]), key
    assert any(float(v.abs().sum()) > 0 for k, v in adapter_state(result.model).items() if "lora_B" in k)


def test_save_load_and_apply(trained, tmp_path: Path) -> None:
    lm, _, result, settings = trained
    path = save_adapter(tmp_path / "voice.safetensors", result.model, settings.lora,
                        {"name": "voice", "base_model": lm.name, "base_sha256": lm.sha256,
                         "metrics": {"perplexity_after": result.perplexity_after}})
    assert path.stat().st_size < 200_000
    config, meta, state = read_adapter(path)
    assert set(state) == set(adapter_state(result.model))
    assert config.rank == 8 and meta["arch"] == "llama-lora" and meta["base_model"] == "tiny"
    applied = apply_adapter(lm, path)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.allclose(applied.model(ids)[0], result.model.eval()(ids)[0], atol=1e-5)
        assert not torch.allclose(applied.model(ids)[0], lm.model(ids)[0], atol=1e-3)
    assert applied.sha256 != lm.sha256 and applied.source["base_model"] == "tiny"

    other = tiny_lm(seed=1, embed_std=0.3)
    other.sha256 = "f" * 64
    with pytest.raises(ModelFileError, match="different base model"):
        apply_adapter(other, path)


def test_the_copy_task_applies_a_stored_adapter(trained) -> None:
    lm, _, result, settings = trained
    store = ModelStore()
    save_adapter(store.user / "brand-voice.safetensors", result.model, settings.lora,
                 {"name": "brand-voice", "base_model": "tiny", "base_sha256": lm.sha256})
    resources = SimpleNamespace(store=store, cache=ModelCache(), device="cpu", runtime="auto")
    resources.runtimes = InMemoryBaseLoader(resources, lm)
    entry = store.find("brand-voice")
    assert entry.arch == "llama-lora" and entry.modality == "copy"
    adapted = copy_tasks.load_copy_model(resources, "brand-voice")
    assert copy_tasks.load_copy_model(resources, "brand-voice") is adapted  # cached
    brief = brief_from_dict({"product": "Brewly", "features": ["fresh coffee"]})
    request = CopyRequest(brief, generation_format("tagline"), "none", {"tagline": 4}, variants=2, seed=4)
    assert generate_ads(adapted, request) != generate_ads(lm, request)


def test_an_applied_adapter_is_merged_and_keeps_the_base_models_decoding_copies(trained, tmp_path: Path) -> None:
    """Merged into its own copy of the matrices: the same logits as the LoRA layers, no LoRA layer left (no extra
    products per step), the base model untouched, and int8 decoding copies made again from the merged weights."""
    import copy

    from studio.ml.models.llama import Linear

    lm, _, result, settings = trained
    path = save_adapter(tmp_path / "voice.safetensors", result.model, settings.lora,
                        {"name": "voice", "base_model": lm.name, "base_sha256": lm.sha256})
    base = copy.copy(lm)
    base.model = copy.deepcopy(lm.model)
    base.model.set_decode_precision(torch.int8)
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    applied = apply_adapter(base, path)
    assert not any(isinstance(m, LoRALinear) for m in applied.model.modules())
    int8 = [m for m in applied.model.modules() if isinstance(m, Linear) and m.decode_scale is not None]
    assert int8 and all(m.decode_weight.dtype == torch.int8 for m in int8)
    assert all(torch.equal(v, before[k]) for k, v in base.model.state_dict().items())
    prompt = torch.arange(5, 17)[None]  # more rows than a decoding step: the float32 weights, merged
    with torch.no_grad():
        assert torch.allclose(applied.model(prompt)[0], result.model.eval()(prompt)[0], atol=1e-5)
