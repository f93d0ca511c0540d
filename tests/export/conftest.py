"""Tiny models exported once per test session (exporting is the slow part), copied into each test's own home.

``exported_home``: a user-model folder holding ``tiny-lm`` (a tiny random Llama GGUF with a byte-level tokenizer,
heads 16 wide as onnxruntime's fused attention needs) with its fp32 and int4 ONNX exports, and ``tiny-music`` (a
tiny music Transformer) with its fp32 export.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from studio.core import paths
from studio.ml.checkpoint import save_model
from studio.ml.export.pipeline import export_model
from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
from studio.ml.text.lm import load_language_model
from tests.ml.tiny_gguf import tiny_model, write_tiny_gguf

LM = "tiny-lm"
MUSIC = "tiny-music"


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("exported-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        models = paths.user_models_dir()
        gguf = write_tiny_gguf(models / "lm" / "Tiny-LM.gguf", tiny_model(seed=3, max_seq_len=4096, dim=64))
        load_language_model(gguf, name=LM)  # writes the sidecar that lists it in the store
        export_model(LM, "fp32")
        export_model(LM, "int4")
        torch.manual_seed(0)
        config = MusicTransformerConfig.tiny()
        save_model(MusicTransformer(config).eval(), "music-transformer", config, models / "music" / "tiny.safetensors",
                   {"name": MUSIC, "modality": "music", "family": "transformer"})
        export_model(MUSIC, "fp32")
    return models


@pytest.fixture
def exported_home(exported_models: Path, studio_home: Path) -> Path:
    """This test's user-model folder, holding copies of the exported tiny models."""
    target = paths.user_models_dir()
    shutil.copytree(exported_models, target, dirs_exist_ok=True)
    return target
