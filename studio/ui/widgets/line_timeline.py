"""A strip under a waveform with one block per line of a script, where that line is heard: it follows the
waveform's zoom and scroll, and clicking a block selects the line's span on the waveform (and plays from there)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from studio.core.voice import LineTiming
from studio.ui.widgets.waveform import WaveformView

BLOCK = QColor("#3d6fa8")
CURRENT = QColor("#e0a040")
TEXT = QColor("#e8ebf0")


class LineTimeline(QWidget):
    line_clicked = Signal(int)  # index into the timings

    def __init__(self, waveform: WaveformView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.waveform = waveform
        self.timings: tuple[LineTiming, ...] = ()
        self.current = -1
        waveform.view_changed.connect(lambda *_: self.update())
        self.setMinimumHeight(26)
        self.setToolTip("Each block is one line of the script, where it is heard; click one to select it")

    def sizeHint(self) -> QSize:
        return QSize(400, 26)

    def set_timings(self, timings: Sequence[LineTiming]) -> None:
        self.timings = tuple(timings)
        self.current = -1
        self.update()

    def set_current(self, seconds: float) -> None:
        """Highlight the line heard at ``seconds`` (the playhead)."""
        index = next((i for i, t in enumerate(self.timings) if t.start <= seconds < t.end), -1)
        if index != self.current:
            self.current = index
            self.update()

    def block(self, index: int) -> QRectF:
        timing = self.timings[index]
        left, right = self.waveform.time_to_x(timing.start), self.waveform.time_to_x(timing.end)
        return QRectF(left, 2, max(2.0, right - left), self.height() - 4)

    def index_at(self, x: float) -> int:
        return next((i for i in range(len(self.timings)) if self.block(i).left() <= x <= self.block(i).right()), -1)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position().x())
        if index >= 0:
            self.line_clicked.emit(index)

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.waveform.has_audio:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for index in range(len(self.timings)):
            rect = self.block(index)
            if rect.right() < 0 or rect.left() > self.width():
                continue
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(CURRENT if index == self.current else BLOCK)
            painter.drawRoundedRect(rect, 3, 3)
            painter.setPen(TEXT)
            label = f"{self.timings[index].number}  {self.timings[index].text}"
            painter.drawText(rect.adjusted(4, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             painter.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight,
                                                              max(0, int(rect.width()) - 6)))
        painter.end()
