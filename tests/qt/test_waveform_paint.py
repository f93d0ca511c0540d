"""The waveform's peak pyramid and painting. Repaint time is measured by ``benchmark_repaint`` (``studio bench``),
never asserted here."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from studio.ui.widgets.waveform import (
    BASE_BLOCK,
    PEAK_COLOUR,
    RMS_COLOUR,
    RULER_HEIGHT,
    PeakPyramid,
    WaveformView,
    benchmark_repaint,
    column_lines,
)


@pytest.fixture
def signal():
    rng = np.random.default_rng(3)
    return rng.uniform(-1, 1, size=(100_003, 2)).astype(np.float32)


@pytest.mark.parametrize("blocks_per_px", [4, 5, 8, 64])
def test_pyramid_columns_equal_brute_force_min_max_on_block_aligned_columns(signal, blocks_per_px):
    pyramid = PeakPyramid(signal)
    spp = BASE_BLOCK * blocks_per_px
    mins, maxs, rms = pyramid.columns(0.0, spp, 200)
    columns = min(200, -(-len(signal) // spp))
    assert mins.shape == maxs.shape == rms.shape == (2, columns)
    for c in range(columns):
        chunk = signal[c * spp:(c + 1) * spp]
        np.testing.assert_array_equal(mins[:, c], chunk.min(axis=0))
        np.testing.assert_array_equal(maxs[:, c], chunk.max(axis=0))
        if len(chunk) == spp:
            np.testing.assert_allclose(rms[:, c], np.sqrt((chunk.astype(np.float64) ** 2).mean(axis=0)), rtol=1e-5)


@pytest.mark.parametrize("spp", [0.25, 1.0, 7.5, 101.4])
def test_zoomed_in_columns_come_from_the_samples_and_stay_connected(signal, spp):
    pyramid = PeakPyramid(signal)
    start = 1000.0
    mins, maxs, _ = pyramid.columns(start, spp, 120)
    for c in range(120):
        first = int(start + c * spp)
        last = max(int(start + (c + 1) * spp), first + 1)
        chunk = signal[first:last + 1]  # includes the next column's first sample
        np.testing.assert_array_equal(mins[:, c], chunk.min(axis=0))
        np.testing.assert_array_equal(maxs[:, c], chunk.max(axis=0))


def test_columns_stop_at_the_end_of_the_clip(signal):
    pyramid = PeakPyramid(signal)
    mins, _, _ = pyramid.columns(len(signal) - 10 * 512, 512, 1000)
    assert mins.shape[1] == 10
    assert pyramid.columns(len(signal) + 5, 512, 100)[0].shape == (2, 0)


def test_column_lines_path_has_one_vertical_segment_per_column():
    xs = np.array([0.5, 1.5, 2.5])
    path = column_lines(xs, np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0]))
    assert path.elementCount() == 6
    points = [(path.elementAt(i).x, path.elementAt(i).y, path.elementAt(i).isMoveTo()) for i in range(6)]
    assert points == [(0.5, 1.0, True), (0.5, 10.0, False), (1.5, 2.0, True), (1.5, 20.0, False),
                      (2.5, 3.0, True), (2.5, 30.0, False)]


def test_painting_shows_a_loud_left_channel_and_a_silent_right_one(qtbot):
    rate = 8000
    t = np.arange(rate * 2) / rate
    samples = np.stack([0.9 * np.sin(2 * np.pi * 400 * t), np.zeros_like(t)], axis=1).astype(np.float32)
    view = WaveformView()
    qtbot.addWidget(view)
    view.resize(400, 240)
    view.show()
    qtbot.waitExposed(view)
    view.set_audio(samples, rate)
    image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32)
    view.viewport().render(image)
    height = view.viewport().height()
    lane = (height - RULER_HEIGHT) / 2
    colours = {PEAK_COLOUR.rgb(), RMS_COLOUR.rgb()}

    def drawn_rows(x: int, top: float, bottom: float) -> int:
        return sum(QColor(image.pixel(x, y)).rgb() in colours for y in range(int(top), int(bottom)))

    left_rows = drawn_rows(200, RULER_HEIGHT, RULER_HEIGHT + lane)
    right_rows = drawn_rows(200, RULER_HEIGHT + lane, height)
    assert left_rows > 0.7 * lane  # 0.9 full scale fills most of the lane's 92 %
    assert 1 <= right_rows <= 2  # silence: the 1 px line


def test_benchmark_reports_repaint_times():
    result = benchmark_repaint(seconds=5, width=600, height=200, repeats=8)
    assert result["seconds"] == 5 and result["width"] == 600
    for key in ("full_repaint_ms", "full_repaint_cpu_ms", "playhead_repaint_ms", "playhead_repaint_cpu_ms"):
        assert set(result[key]) == {"mean", "p95", "max"}
        assert 0 < result[key]["mean"] <= result[key]["max"]
    assert result["within_budget"] == (result["full_repaint_cpu_ms"]["p95"] < result["budget_ms"])
