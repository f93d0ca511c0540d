"""A read-only piano roll: notes per part in colours, bar and beat lines, muted parts faded, a playhead.

Notes are the ``music.*`` payload's dicts ``{"part", "pitch", "start", "duration", "velocity"}`` in beats.
The visible beat range follows the waveform above it, and time runs across the full width exactly as in the
waveform (octave names sit under the notes at the left edge, not in a gutter), so bar lines line up. The parts'
colours are named in the workspace's parts row, not in a legend over the notes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from studio.core.music_theory import pitch_name

LABEL_WIDTH = 34
BACKGROUND = QColor("#15181d")
BLACK_KEY_ROW = QColor("#181b21")
BAR_LINE = QColor("#3a404d")
BEAT_LINE = QColor("#22262e")
LABEL = QColor("#6f7889")
PLAYHEAD = QColor("#ffd43b")
PART_COLOURS = {
    "melody": QColor("#ff922b"),
    "lead": QColor("#ff922b"),
    "chords": QColor("#748ffc"),
    "harmony": QColor("#748ffc"),
    "pad": QColor("#9775fa"),
    "bass": QColor("#51cf66"),
    "drums": QColor("#adb5bd"),
    "arp": QColor("#22b8cf"),
}
_SPARE_COLOURS = (QColor("#f783ac"), QColor("#ffd43b"), QColor("#3bc9db"), QColor("#e599f7"))
_BLACK_KEYS = {1, 3, 6, 8, 10}


def part_colour(part: str, index: int = 0) -> QColor:
    return PART_COLOURS.get(part, _SPARE_COLOURS[index % len(_SPARE_COLOURS)])


class PianoRoll(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(120)
        self._notes: list[Mapping[str, Any]] = []
        self._parts: list[str] = []
        self._audible: set[str] = set()
        self._beats_per_bar = 4.0
        self._total_beats = 0.0
        self._view = (0.0, 0.0)
        self._playhead: float | None = None
        self._pitch_range = (60, 72)

    @property
    def parts(self) -> list[str]:
        return list(self._parts)

    def set_notes(self, notes: Iterable[Mapping[str, Any]], total_beats: float, beats_per_bar: float) -> None:
        self._notes = [dict(n) for n in notes]
        self._parts = list(dict.fromkeys(str(n["part"]) for n in self._notes))
        self._audible = set(self._parts)
        self._beats_per_bar = float(beats_per_bar)
        self._total_beats = float(total_beats) or max((n["start"] + n["duration"] for n in self._notes), default=0.0)
        self._view = (0.0, self._total_beats)
        pitches = [int(n["pitch"]) for n in self._notes]
        self._pitch_range = (min(pitches) - 2, max(pitches) + 2) if pitches else (60, 72)
        self._playhead = None
        self.update()

    def clear(self) -> None:
        self.set_notes([], 0.0, 4.0)

    def set_audible(self, parts: Iterable[str]) -> None:
        self._audible = set(parts)
        self.update()

    def set_visible_beats(self, start: float, end: float) -> None:
        if end > start:
            self._view = (start, end)
            self.update()

    def set_playhead(self, beats: float | None) -> None:
        self._playhead = beats
        self.update()

    # --- painting ---------------------------------------------------------------------------------
    def beat_to_x(self, beat: float) -> float:
        """The pixel column of ``beat``, mapped as the waveform maps its seconds (0 .. width)."""
        start, end = self._view
        return (beat - start) / max(1e-9, end - start) * self.width()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if not self._notes:
            painter.setPen(LABEL)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Generated clips show their notes here")
            painter.end()
            return
        low, high = self._pitch_range
        row = self.height() / (high - low + 1)
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.75))
        painter.setFont(font)
        for pitch in range(low, high + 1):
            y = (high - pitch) * row
            if pitch % 12 in _BLACK_KEYS:
                painter.fillRect(QRectF(0, y, self.width(), row), BLACK_KEY_ROW)
            if pitch % 12 == 0 and row * 12 >= 18:
                painter.setPen(LABEL)
                painter.drawText(QRectF(2, y, LABEL_WIDTH, row), Qt.AlignmentFlag.AlignVCenter, pitch_name(pitch))
        start, end = self._view
        beat = float(int(start))
        px_per_beat = self.width() / max(1e-9, end - start)
        while beat <= end:
            bar_line = abs(beat / self._beats_per_bar - round(beat / self._beats_per_bar)) < 1e-6
            if bar_line or px_per_beat >= 6:
                painter.setPen(BAR_LINE if bar_line else BEAT_LINE)
                x = round(self.beat_to_x(beat)) + 0.5  # the waveform's rounding: the same pixel column
                painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
            beat += 1.0
        for index, part in enumerate(self._parts):
            colour = QColor(part_colour(part, index))
            if part not in self._audible:
                colour.setAlpha(55)
            painter.setPen(QPen(colour.darker(160), 1))
            for note in (n for n in self._notes if n["part"] == part):
                x0, x1 = self.beat_to_x(note["start"]), self.beat_to_x(note["start"] + note["duration"])
                if x1 < 0 or x0 > self.width():
                    continue
                fill = QColor(colour)
                if part in self._audible:
                    fill.setAlpha(int(120 + 135 * min(1.0, float(note.get("velocity", 100)) / 127)))
                painter.setBrush(fill)
                y = (high - int(note["pitch"])) * row
                painter.drawRoundedRect(QRectF(x0, y + 0.5, max(2.0, x1 - x0 - 1), max(2.0, row - 1)), 2, 2)
        if self._playhead is not None:
            x = self.beat_to_x(self._playhead)
            painter.setPen(QPen(PLAYHEAD, 1.5))
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.end()
