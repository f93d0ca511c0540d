"""Every workspace fits a 1280x720 window, at 100% and at 200% scaling (2560x1440 pixels), with no text cut off;
the screenshots land in artifacts/screenshots/layout-1x and layout-2x for people to look at."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from tests.conftest import ARTIFACTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scale", [1, 2])
def test_every_workspace_fits_1280x720_without_cut_off_text(scale, studio_home):
    out = ARTIFACTS / "screenshots" / f"layout-{scale}x"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": str(scale),
           "STUDIO_HOME": str(studio_home)}
    done = subprocess.run([sys.executable, "-m", "tests.qt.layout_shots", "--size", "1280x720", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["cut"] == []
    assert report["min_size"][0] <= 1280 and report["min_size"][1] <= 720
    assert report["window"] == [1280, 720]
    for shot in report["shots"]:
        image = QImage(shot)
        assert (image.width(), image.height()) == (1280 * scale, 720 * scale)
