"""The music Transformer on onnxruntime: logits against torch, the unchanged sampler (same seed, same notes; the
sliding window past the context), and the music task routed through the runtime setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.cli.console import run_in_console
from studio.core.jobs import JobSpec
from studio.core.settings import Settings, save_settings
from studio.ml.checkpoint import load_model
from studio.ml.models.music_transformer import MusicTransformerConfig
from studio.ml.music.sample import continue_notes, generate_melody
from studio.ml.runtime.exports import read_record
from studio.ml.runtime.ort_music import OrtMusicModel, load_ort_music_model
from tests.export.conftest import MUSIC


@pytest.fixture
def pair(exported_home: Path) -> tuple[torch.nn.Module, OrtMusicModel]:
    module, config, _ = load_model(exported_home / "music" / "tiny.safetensors")
    record = read_record(exported_home / "onnx" / MUSIC / "fp32")
    return module.eval(), load_ort_music_model(record, config)


def test_logits_and_cache_match_torch(pair) -> None:
    module, ort = pair
    ids = torch.tensor([[3, 17, 40, 41, 5]])
    with torch.no_grad():
        want, past = module(ids, None)
        got, ort_past = ort(ids, None)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-3)
        for token in (9, 60):
            want, past = module(torch.tensor([[token]]), past)
            got, ort_past = ort(torch.tensor([[token]]), ort_past)
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-3)
    assert ort_past.shape == past.shape
    with pytest.raises(ValueError, match="exceeds"):
        ort(torch.zeros(1, ort.config.block_size + 1, dtype=torch.long))


def test_the_sampler_writes_the_same_notes_on_either_runtime(pair) -> None:
    module, ort = pair
    assert ort.config.block_size == MusicTransformerConfig.tiny().block_size
    for seed in (1, 2):  # 8 bars of 12/8 overflow the tiny context: the window slides on both runtimes
        assert generate_melody(ort, "G", "mixolydian", "12/8", 140, 8, seed=seed) == \
            generate_melody(module, "G", "mixolydian", "12/8", 140, 8, seed=seed)
    clip = generate_melody(ort, "E minor", "minor", "3/4", 90, 2, seed=3, temperature=0.0)
    assert continue_notes(ort, clip, 2, "E minor", "minor", "3/4", 90, seed=4) == \
        continue_notes(module, clip, 2, "E minor", "minor", "3/4", 90, seed=4)


def test_it_cannot_be_trained(pair) -> None:
    _, ort = pair
    assert ort.eval() is ort and ort.train(False) is ort
    with pytest.raises(RuntimeError, match="cannot be trained"):
        ort.train()


def test_the_music_task_follows_the_runtime_setting(exported_home: Path) -> None:
    params = {"style": "chiptune", "key": "A minor", "bpm": 150, "bars": 2}
    results = []
    for runtime in ("torch", "onnxruntime"):
        save_settings(Settings(device="cpu", runtime=runtime, cpu_threads=1))
        results.append(run_in_console(JobSpec("music.generate", params, seed=6, model=MUSIC), "cpu", quiet=True))
    assert results[0]["recipe"]["melody_source"] == f"model {MUSIC}"
    assert results[0]["notes"] == results[1]["notes"]
