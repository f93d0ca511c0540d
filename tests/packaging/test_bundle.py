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
