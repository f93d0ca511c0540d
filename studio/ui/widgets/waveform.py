"""Waveform view: min/max peaks per pixel column from a precomputed pyramid, zoom, scroll, loop selection, playhead.

Drawing cost does not depend on the clip's length: :class:`PeakPyramid` keeps min/max (and sum of squares for an RMS
band) per block of 64, 128, 256, ... samples, so a repaint reduces 4-8 blocks per column with numpy and draws
one vertical line per pixel column. The waveform layer is cached in a pixmap; playhead moves and selection changes
repaint over the cached layer only.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, QIODevice, QLineF, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QWidget

BASE_BLOCK = 64
RULER_HEIGHT = 22
MAX_PIXELS_PER_SAMPLE = 16
MIN_SELECTION_PX = 3

BACKGROUND = QColor("#15181d")
LANE_LINE = QColor("#272b33")
BAR_LINE = QColor("#21252d")
PEAK_COLOUR = QColor("#4263eb")
RMS_COLOUR = QColor("#91a7ff")
RULER_BG = QColor("#1b1e24")
RULER_TICK = QColor("#4d5563")
RULER_TEXT = QColor("#8b93a3")
SELECTION_FILL = QColor(92, 124, 250, 55)
SELECTION_EDGE = QColor("#748ffc")
PLAYHEAD = QColor("#ffd43b")
EMPTY_TEXT = QColor("#5d6573")


class PeakPyramid:
    """Per channel: min, max and sum of squares per block of ``BASE_BLOCK * 2**level`` samples."""

    def __init__(self, samples: np.ndarray) -> None:
        data = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(len(samples), -1).T)
        self.samples = data  # (channels, frames)
        self.frames = data.shape[1]
        blocks = -(-self.frames // BASE_BLOCK)
        padded = np.pad(data, ((0, 0), (0, blocks * BASE_BLOCK - self.frames)), mode="edge")
        shaped = padded.reshape(data.shape[0], blocks, BASE_BLOCK)
        squares = np.einsum("cbk,cbk->cb", shaped, shaped, dtype=np.float64)
        squares[:, -1] -= float(BASE_BLOCK * blocks - self.frames) * padded[:, -1].astype(np.float64) ** 2
        self.levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
            (shaped.min(axis=2), shaped.max(axis=2), squares)
        ]
        while self.levels[-1][0].shape[1] > 1:
            lo, hi, sq = self.levels[-1]
            if lo.shape[1] % 2:
                lo, hi = np.pad(lo, ((0, 0), (0, 1)), mode="edge"), np.pad(hi, ((0, 0), (0, 1)), mode="edge")
                sq = np.pad(sq, ((0, 0), (0, 1)))
            self.levels.append((
                np.minimum(lo[:, 0::2], lo[:, 1::2]),
                np.maximum(hi[:, 0::2], hi[:, 1::2]),
                sq[:, 0::2] + sq[:, 1::2],
            ))

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    def columns(self, start: float, samples_per_px: float, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mins, maxs, rms), each (channels, n) for the first n <= width columns that hold audio."""
        n = int(min(width, math.ceil((self.frames - start) / samples_per_px))) if start < self.frames else 0
        if n <= 0:
            empty = np.zeros((self.channels, 0), np.float32)
            return empty, empty, empty
        edges = start + samples_per_px * np.arange(n + 1)
        if samples_per_px < 4 * BASE_BLOCK:  # at most ~1,000 samples per column: exact, and still cheap
            return self._from_samples(edges)
        # 4-8 blocks per column: a column's edges are off by at most a quarter column, for little work
        level = min(int(math.log2(samples_per_px / (4 * BASE_BLOCK))), len(self.levels) - 1)
        block = BASE_BLOCK << level
        lo, hi, sq = self.levels[level]
        end = min(lo.shape[1], max(1, math.ceil(edges[-1] / block)))  # blocks past the last column are not shown
        lo, hi, sq = lo[:, :end], hi[:, :end], sq[:, :end]
        idx = np.minimum((edges[:-1] // block).astype(np.int64), end - 1)
        starts, inverse = np.unique(idx, return_inverse=True)
        rms = np.sqrt(np.add.reduceat(sq, starts, axis=1) / (block * np.diff(np.append(starts, end))))
        return (np.minimum.reduceat(lo, starts, axis=1)[:, inverse],
                np.maximum.reduceat(hi, starts, axis=1)[:, inverse], rms[:, inverse])

    def _from_samples(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Columns straight from the samples (zoomed in); each column also spans the next column's first sample
        so the trace stays connected."""
        first = np.minimum(edges[:-1].astype(np.int64), self.frames - 1)
        last = np.minimum(np.maximum(edges[1:].astype(np.int64), first + 1), self.frames - 1)
        span = slice(int(first[0]), int(last[-1]) + 1)
        window = self.samples[:, span]
        offsets = first - span.start
        ends = last - span.start
        if (np.diff(offsets) > 0).all():
            mins = np.minimum(np.minimum.reduceat(window, offsets, axis=1), window[:, ends])
            maxs = np.maximum(np.maximum.reduceat(window, offsets, axis=1), window[:, ends])
            counts = np.diff(np.append(offsets, window.shape[1]))
            rms = np.sqrt(np.add.reduceat(window.astype(np.float64) ** 2, offsets, axis=1) / counts)
        else:  # several columns per sample: connect each sample to the next; no RMS band at this zoom
            mins = np.minimum(window[:, offsets], window[:, ends])
            maxs = np.maximum(window[:, offsets], window[:, ends])
            rms = np.zeros_like(mins)
        return mins, maxs, rms


_PATH_ELEMENT = np.dtype([("type", ">i4"), ("x", ">f8"), ("y", ">f8")])


def column_lines(xs: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> QPainterPath:
    """A path of vertical segments (x, top) -> (x, bottom), one per pixel column, built without a Python loop.

    The path is deserialised from QPainterPath's documented QDataStream layout (element count, then type/x/y per
    element, then the current-subpath index and the fill rule), the same trick pyqtgraph's ``arrayToQPath`` uses.
    """
    n = len(xs)
    elements = np.empty(2 * n, dtype=_PATH_ELEMENT)
    elements["type"][0::2] = 0  # QPainterPath.MoveToElement
    elements["type"][1::2] = 1  # QPainterPath.LineToElement
    elements["x"][0::2] = elements["x"][1::2] = xs
    elements["y"][0::2] = top
    elements["y"][1::2] = bottom
    raw = np.array([2 * n], ">i4").tobytes() + elements.tobytes() + np.array([max(0, 2 * n - 2), 0], ">i4").tobytes()
    data = QByteArray(raw)
    path = QPainterPath()
    QDataStream(data, QIODevice.OpenModeFlag.ReadOnly) >> path
    return path


@dataclass(frozen=True)
class _Tempo:
    bpm: float
    beats_per_bar: float

    @property
    def bar_seconds(self) -> float:
        return self.beats_per_bar * 60.0 / self.bpm


_TIME_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)


def format_time(seconds: float, step: float = 1.0) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    decimals = 0 if step >= 1 else min(3, math.ceil(-math.log10(step)))
    return f"{int(minutes)}:{secs:0{3 + decimals if decimals else 2}.{decimals}f}"


class WaveformView(QAbstractScrollArea):
    """Shows a clip; the horizontal scroll bar's value is the first visible pixel column at the current zoom."""

    selection_changed = Signal(object)  # (start_s, end_s) or None, also while dragging
    selection_committed = Signal(object)  # the same, once the mouse is released
    seek_requested = Signal(float)
    view_changed = Signal(float, float)  # visible (start_s, end_s)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QAbstractScrollArea.Shape.NoFrame)
        self.setMinimumHeight(140)
        self.viewport().setMouseTracking(False)
        self.horizontalScrollBar().valueChanged.connect(self._on_scroll)
        self._pyramid: PeakPyramid | None = None
        self._rate = 0
        self._spp = 1.0
        self._selection: tuple[float, float] | None = None
        self._playhead = 0.0
        self._tempo: _Tempo | None = None
        self._drag_anchor: float | None = None
        self._press_x = 0.0
        self._cache: QPixmap | None = None
        self._cache_key: tuple = ()

    # --- data ---------------------------------------------------------------------------------------
    def set_audio(self, samples: np.ndarray | None, rate: int) -> None:
        """Show a clip (frames x channels, or 1-D); None clears the view."""
        self._pyramid = PeakPyramid(samples) if samples is not None and len(samples) else None
        self._rate = int(rate)
        self._selection = None
        self._playhead = 0.0
        self._cache = None
        self.zoom_fit()
        self.selection_changed.emit(None)

    def set_tempo(self, bpm: float | None, beats_per_bar: float = 4.0) -> None:
        """With a tempo the ruler counts bars; without, seconds."""
        self._tempo = _Tempo(float(bpm), float(beats_per_bar)) if bpm else None
        self._invalidate()

    @property
    def has_audio(self) -> bool:
        return self._pyramid is not None

    @property
    def duration(self) -> float:
        return self._pyramid.frames / self._rate if self._pyramid else 0.0

    @property
    def channels(self) -> int:
        return self._pyramid.channels if self._pyramid else 0

    # --- view ---------------------------------------------------------------------------------------
    @property
    def samples_per_pixel(self) -> float:
        return self._spp

    def visible_range(self) -> tuple[float, float]:
        if not self._pyramid:
            return 0.0, 0.0
        start = self._start_sample()
        end = min(self._pyramid.frames, start + self._spp * self.viewport().width())
        return start / self._rate, end / self._rate

    def zoom_fit(self) -> None:
        self._set_zoom(self._max_spp(), 0.0)

    def zoom_in(self) -> None:
        self.zoom(0.5)

    def zoom_out(self) -> None:
        self.zoom(2.0)

    def zoom(self, factor: float, anchor_x: float | None = None) -> None:
        """Scale samples-per-pixel by ``factor`` keeping the time under ``anchor_x`` (default: centre) in place."""
        if not self._pyramid:
            return
        x = self.viewport().width() / 2 if anchor_x is None else anchor_x
        anchor_sample = self._start_sample() + x * self._spp
        spp = min(self._max_spp(), max(1.0 / MAX_PIXELS_PER_SAMPLE, self._spp * factor))
        self._set_zoom(spp, anchor_sample - x * spp)

    def set_visible_range(self, start_s: float, end_s: float) -> None:
        if not self._pyramid or end_s <= start_s:
            return
        spp = (end_s - start_s) * self._rate / max(1, self.viewport().width())
        self._set_zoom(min(self._max_spp(), max(1.0 / MAX_PIXELS_PER_SAMPLE, spp)), start_s * self._rate)

    def _max_spp(self) -> float:
        if not self._pyramid:
            return 1.0
        return max(1.0 / MAX_PIXELS_PER_SAMPLE, self._pyramid.frames / max(1, self.viewport().width()))

    def _set_zoom(self, spp: float, start_sample: float) -> None:
        self._spp = spp
        bar = self.horizontalScrollBar()
        total = math.ceil(self._pyramid.frames / spp) if self._pyramid else 0
        bar.blockSignals(True)
        bar.setRange(0, max(0, total - self.viewport().width()))
        bar.setPageStep(max(1, self.viewport().width()))
        bar.setSingleStep(max(1, self.viewport().width() // 20))
        bar.setValue(round(max(0.0, start_sample) / spp))
        bar.blockSignals(False)
        self._on_scroll()

    def _start_sample(self) -> float:
        return self.horizontalScrollBar().value() * self._spp

    def _on_scroll(self, _value: int = 0) -> None:
        self._invalidate()
        self.view_changed.emit(*self.visible_range())

    def _invalidate(self) -> None:
        self._cache = None
        self.viewport().update()

    # --- coordinates --------------------------------------------------------------------------------
    def x_to_time(self, x: float) -> float:
        if not self._pyramid:
            return 0.0
        return min(self.duration, max(0.0, (self._start_sample() + x * self._spp) / self._rate))

    def time_to_x(self, seconds: float) -> float:
        return (seconds * self._rate - self._start_sample()) / self._spp

    # --- selection and playhead ---------------------------------------------------------------------
    def selection(self) -> tuple[float, float] | None:
        return self._selection

    def set_selection(self, start_s: float, end_s: float) -> None:
        lo, hi = sorted((min(self.duration, max(0.0, start_s)), min(self.duration, max(0.0, end_s))))
        self._selection = (lo, hi) if hi > lo else None
        self.viewport().update()
        self.selection_changed.emit(self._selection)

    def clear_selection(self) -> None:
        if self._selection is not None:
            self._selection = None
            self.viewport().update()
            self.selection_changed.emit(None)

    @property
    def playhead(self) -> float:
        return self._playhead

    def set_playhead(self, seconds: float, follow: bool = True) -> None:
        """Move the playhead; with ``follow`` the view pages along when it leaves the visible range."""
        old_x = self.time_to_x(self._playhead)
        self._playhead = min(self.duration, max(0.0, seconds))
        start, end = self.visible_range()
        if follow and self._pyramid and not start <= self._playhead <= end:
            self._set_zoom(self._spp, self._playhead * self._rate - 0.1 * self.viewport().width() * self._spp)
            return
        new_x = self.time_to_x(self._playhead)
        height = self.viewport().height()
        for x in (old_x, new_x):
            self.viewport().update(QRect(int(x) - 2, 0, 5, height))

    # --- events -------------------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        fit = self._pyramid is not None and self._spp >= self._max_spp_for(event.oldSize().width())
        super().resizeEvent(event)
        if fit:
            self.zoom_fit()
        else:
            self._set_zoom(min(self._spp, self._max_spp()), self._start_sample())

    def _max_spp_for(self, width: int) -> float:
        if not self._pyramid or width <= 0:
            return math.inf
        return max(1.0 / MAX_PIXELS_PER_SAMPLE, self._pyramid.frames / width) * 0.999

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = delta.y() / 120
            if steps:
                self.zoom(0.8**steps, event.position().x())
            event.accept()
            return
        amount = delta.x() or delta.y()
        bar = self.horizontalScrollBar()
        bar.setValue(bar.value() - int(amount / 120 * bar.singleStep() * 3))
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self._pyramid:
            return super().mousePressEvent(event)
        self._press_x = event.position().x()
        self._drag_anchor = self.x_to_time(self._press_x)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_anchor is None:
            return super().mouseMoveEvent(event)
        if abs(event.position().x() - self._press_x) >= MIN_SELECTION_PX:
            self.set_selection(self._drag_anchor, self.x_to_time(event.position().x()))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_anchor is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mouseReleaseEvent(event)
        if abs(event.position().x() - self._press_x) >= MIN_SELECTION_PX:
            self.set_selection(self._drag_anchor, self.x_to_time(event.position().x()))
        else:
            self.clear_selection()
            self.set_playhead(self._drag_anchor, follow=False)
            self.seek_requested.emit(self._drag_anchor)
        self._drag_anchor = None
        self.selection_committed.emit(self._selection)
        event.accept()

    # --- painting -----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        viewport = self.viewport()
        painter = QPainter(viewport)
        key = (viewport.width(), viewport.height(), self._spp, self.horizontalScrollBar().value(),
               id(self._pyramid), self._tempo)
        if self._cache is None or key != self._cache_key:
            self._cache = self._render_layer(viewport.width(), viewport.height())
            self._cache_key = key
        painter.drawPixmap(event.rect(), self._cache, event.rect())
        if self._pyramid:
            self._paint_overlay(painter, viewport.height())
        painter.end()

    def _render_layer(self, width: int, height: int) -> QPixmap:
        pixmap = QPixmap(max(1, width), max(1, height))
        pixmap.fill(BACKGROUND)
        painter = QPainter(pixmap)
        painter.fillRect(0, 0, width, RULER_HEIGHT, RULER_BG)
        if not self._pyramid:
            painter.setPen(EMPTY_TEXT)
            painter.drawText(QRect(0, RULER_HEIGHT, width, height - RULER_HEIGHT), Qt.AlignmentFlag.AlignCenter,
                             "Open a WAV, FLAC or OGG file (Ctrl+O), drop one here, or generate a clip")
            painter.end()
            return pixmap
        self._paint_grid(painter, width, height)
        self._paint_peaks(painter, width, height)
        painter.end()
        return pixmap

    def _lanes(self, height: int) -> list[tuple[float, float]]:
        """(centre y, half height) per channel."""
        lane = (height - RULER_HEIGHT) / max(1, self.channels)
        return [(RULER_HEIGHT + lane * (i + 0.5), lane * 0.46) for i in range(self.channels)]

    def _paint_peaks(self, painter: QPainter, width: int, height: int) -> None:
        mins, maxs, rms = self._pyramid.columns(self._start_sample(), self._spp, width)
        xs = np.arange(mins.shape[1], dtype=np.float64) + 0.5
        for channel, (centre, half) in enumerate(self._lanes(height)):
            painter.setPen(LANE_LINE)
            painter.drawLine(QLineF(0, centre, width, centre))
            top = centre - np.clip(maxs[channel], -1, 1) * half
            bottom = np.maximum(centre - np.clip(mins[channel], -1, 1) * half, top + 1)  # silence: a 1 px line
            level = np.minimum(rms[channel], 1.0) * half
            inner_top = np.clip(centre - level, top, bottom)
            inner_bottom = np.clip(centre + level, inner_top, bottom)
            # peaks outside the RMS band and the band itself: every pixel is drawn once
            painter.setPen(QPen(PEAK_COLOUR, 0))
            painter.drawPath(column_lines(np.concatenate([xs, xs]), np.concatenate([top, inner_bottom]),
                                          np.concatenate([inner_top, bottom])))
            band = inner_bottom > inner_top + 0.5
            if band.any():
                painter.setPen(QPen(RMS_COLOUR, 0))
                painter.drawPath(column_lines(xs[band], inner_top[band], inner_bottom[band]))

    def _paint_grid(self, painter: QPainter, width: int, height: int) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        start, end = self.visible_range()
        px_per_s = self._rate / self._spp
        if self._tempo:
            bar_s = self._tempo.bar_seconds
            step_bars = 1
            while step_bars * bar_s * px_per_s < 48:
                step_bars *= 2
            ticks = [(n * bar_s, str(n + 1)) for n in range(int(start // bar_s), int(end // bar_s) + 1)
                     if n % step_bars == 0]
        else:
            step = next((s for s in _TIME_STEPS if s * px_per_s >= 70), _TIME_STEPS[-1])
            ticks = [(n * step, format_time(n * step, step)) for n in range(int(start // step), int(end // step) + 1)]
        for seconds, label in ticks:
            x = round(self.time_to_x(seconds)) + 0.5
            if x < -1 or x > width:
                continue
            painter.setPen(BAR_LINE)
            painter.drawLine(QLineF(x, RULER_HEIGHT, x, height))
            painter.setPen(RULER_TICK)
            painter.drawLine(QLineF(x, RULER_HEIGHT - 7, x, RULER_HEIGHT))
            painter.setPen(RULER_TEXT)
            painter.drawText(QPointF(x + 4, RULER_HEIGHT - 8), label)
        painter.setPen(LANE_LINE)
        painter.drawLine(QLineF(0, RULER_HEIGHT - 0.5, width, RULER_HEIGHT - 0.5))

    def _paint_overlay(self, painter: QPainter, height: int) -> None:
        if self._selection:
            x0, x1 = (self.time_to_x(t) for t in self._selection)
            painter.fillRect(QRectF(x0, 0, x1 - x0, height), SELECTION_FILL)
            painter.setPen(QPen(SELECTION_EDGE, 1))
            painter.drawLine(QLineF(x0, 0, x0, height))
            painter.drawLine(QLineF(x1, 0, x1, height))
        x = self.time_to_x(self._playhead)
        painter.setPen(QPen(PLAYHEAD, 1.5))
        painter.drawLine(QLineF(x, 0, x, height))
        painter.setBrush(PLAYHEAD)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawPolygon([QPointF(x - 5, 0), QPointF(x + 5, 0), QPointF(x, 7)])


def benchmark_repaint(seconds: float = 180.0, rate: int = 44_100, width: int = 1600, height: int = 320,
                      repeats: int = 40) -> dict:
    """Repaint timing on a synthetic stereo clip of ``seconds`` (for ``studio bench``; tests never assert it).

    ``full_repaint_ms``: the waveform layer is redrawn (after a scroll or zoom) at several zoom levels;
    ``playhead_repaint_ms``: the cached layer plus selection and playhead (what playback costs per frame).
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    envelope = 0.5 + 0.4 * np.sin(2 * np.pi * 0.25 * t)
    left = envelope * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.shape, dtype=np.float32)
    right = envelope * np.sin(2 * np.pi * 331 * t) + 0.05 * rng.standard_normal(t.shape, dtype=np.float32)
    samples = np.stack([left, right], axis=1).astype(np.float32)

    view = WaveformView()
    view.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    view.resize(width, height)
    view.show()
    app.processEvents()
    started = time.perf_counter()
    view.set_audio(samples, rate)
    pyramid_ms = (time.perf_counter() - started) * 1000
    view.set_selection(seconds * 0.25, seconds * 0.3)
    image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32_Premultiplied)

    def render_ms() -> tuple[float, float]:
        """(wall, CPU) milliseconds of one repaint; CPU time is what a loaded machine cannot inflate."""
        wall, cpu = time.perf_counter(), time.thread_time()
        view.viewport().render(image)
        return (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000

    full: list[tuple[float, float]] = []
    for visible in (seconds, 30.0, 2.0, 0.02):
        view.set_visible_range(seconds / 3, seconds / 3 + visible)
        for _ in range(repeats // 4):
            view._invalidate()  # what a scroll or zoom does
            full.append(render_ms())
    playhead: list[tuple[float, float]] = []
    view.zoom_fit()
    render_ms()
    for i in range(repeats):
        view.set_playhead(seconds * i / repeats, follow=False)
        playhead.append(render_ms())
    view.deleteLater()
    app.processEvents()

    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"mean": round(float(np.mean(ordered)), 3), "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
                "max": round(ordered[-1], 3)}

    full_cpu = stats([cpu for _, cpu in full])
    return {
        "seconds": seconds, "rate": rate, "channels": 2, "width": width, "height": height,
        "pyramid_ms": round(pyramid_ms, 2),
        "full_repaint_ms": stats([wall for wall, _ in full]), "full_repaint_cpu_ms": full_cpu,
        "playhead_repaint_ms": stats([wall for wall, _ in playhead]),
        "playhead_repaint_cpu_ms": stats([cpu for _, cpu in playhead]),
        "budget_ms": 16.0, "within_budget": full_cpu["p95"] < 16.0,
    }
