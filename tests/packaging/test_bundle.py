"""The bundle: its smoke test (slow: it builds the CPU bundle, about 10 minutes on 2 cores) and the output checks
that smoke test relies on (fast: a check that cannot fail would pass a broken bundle)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "packaging" / "bundle" / "check_outputs.py"


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=60)


def _sprite(path: Path, size: int = 32, recipe: bool = True) -> None:
    info = PngImagePlugin.PngInfo()
    if recipe:
        info.add_text("parameters", "model: sprite-gan, seed: 7")
    Image.fromarray(np.zeros((size, size, 4), np.uint8)).save(path, pnginfo=info)


def test_sprite_check_wants_every_sprite_32x32_with_its_recipe(tmp_path: Path) -> None:
    for i in range(3):
        _sprite(tmp_path / f"s{i}.png")
    assert _check("sprites", str(tmp_path), "3").returncode == 0
    assert "expected 4" in _check("sprites", str(tmp_path), "4").stderr
    _sprite(tmp_path / "s1.png", recipe=False)
    assert "carries no recipe" in _check("sprites", str(tmp_path), "3").stderr
    _sprite(tmp_path / "s1.png", size=64)
    assert "64x64" in _check("sprites", str(tmp_path), "3").stderr


def test_copy_check_holds_headlines_to_30_characters(tmp_path: Path) -> None:
    ad = tmp_path / "ad.csv"
    ad.write_text("\ufeffHeadline 1,Headline 2,Description 1\nFresh beans,Roasted this week,Good coffee.\n",
                  encoding="utf-8")
    assert "2 headlines" in _check("copy", str(ad)).stdout
    ad.write_text("Headline 1\n" + "x" * 31 + "\n", encoding="utf-8")
    assert "over 30 characters" in _check("copy", str(ad)).stderr


def test_music_check_wants_the_exact_loop_length_and_a_midi_file(tmp_path: Path) -> None:
    import soundfile

    soundfile.write(tmp_path / "clip.wav", np.zeros((44100 * 2, 2), np.float32), 44100, subtype="PCM_16")
    (tmp_path / "clip.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0")
    assert _check("music", str(tmp_path / "clip.wav"), str(tmp_path / "clip.mid"), "2.0").returncode == 0
    assert "expected 2.500" in _check("music", str(tmp_path / "clip.wav"), str(tmp_path / "clip.mid"), "2.5").stderr


@pytest.mark.slow
def test_the_cpu_bundle_builds_and_runs_offline() -> None:
    done = subprocess.run(["bash", str(ROOT / "packaging" / "smoke_bundle.sh")], capture_output=True, text=True,
                          timeout=3600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 16 sprites (GAN) |" in (ROOT / "artifacts" / "bundle-smoke" / "summary.md").read_text()


def test_staging_skips_a_language_model_export_from_an_older_version(studio_home: Path, tmp_path: Path) -> None:
    import importlib.util

    from studio.core import paths
    from studio.core.modalities.copy import BASE_LANGUAGE_MODEL, DEFAULT_COPY_MODEL
    from studio.ml.checkpoint import sha256_file
    from studio.ml.export.pipeline import default_export_dir
    from studio.ml.export.records import graph_entry, write_record
    from studio.ml.runtime.exports import ExportRecord
    from studio.ml.text.lm import load_language_model
    from tests.ml.tiny_gguf import tiny_model, write_tiny_gguf

    name = BASE_LANGUAGE_MODEL
    gguf = write_tiny_gguf(paths.user_models_dir() / "lm" / "Tiny.gguf", tiny_model(seed=1))
    load_language_model(gguf, name=name)  # its sidecar lists it in the store under the default's name
    folder = default_export_dir(DEFAULT_COPY_MODEL, "int4")  # the default adapter's graph is what ships
    folder.mkdir(parents=True)
    (folder / "decoder_with_past.onnx").write_bytes(b"a traced graph")  # what an older version exported
    write_record(ExportRecord(DEFAULT_COPY_MODEL, "llama-lora", "int4", folder,
                              {"decoder_with_past": graph_entry(folder / "decoder_with_past.onnx", 0.0, 0.0)},
                              sha256_file(ROOT / "models" / f"{DEFAULT_COPY_MODEL}.safetensors"), 18, {}))
    spec = importlib.util.spec_from_file_location("stage_models", ROOT / "packaging" / "bundle" / "stage_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    notes = module.stage(tmp_path / "models", ["int4"])
    assert any("no usable int4 export" in n and "older version" in n for n in notes)
    assert not (tmp_path / "models" / "onnx" / DEFAULT_COPY_MODEL / "int4").exists()  # the app makes it on first use
