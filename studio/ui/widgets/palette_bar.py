"""The drawing palette: the current colour, a grid of swatches, bundled palettes, .hex/.gpl files, from image."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.formats.palette import bundled_palettes, load_palette, save_palette
from studio.ui.widgets.pixel_canvas import checker_brush

DEFAULT_PALETTE = "pico-8"
PALETTE_FILTER = "Palettes (*.hex *.gpl)"


class ColorSwatch(QWidget):
    """The current colour over a checkerboard (so transparency shows); click to open the colour picker."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._color = QColor(0, 0, 0)
        self._checker = checker_brush(5)
        self.setFixedSize(40, 40)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Drawing colour: click to pick any colour (with alpha)")

    @property
    def color(self) -> QColor:
        return QColor(self._color)

    def set_color(self, color: QColor) -> None:
        self._color = QColor(color)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        inner = self.rect().adjusted(2, 2, -2, -2)
        painter.fillRect(inner, self._checker)
        painter.fillRect(inner, self._color)
        painter.setPen(QPen(QColor("#d8dbe0"), 2))
        painter.drawRect(self.rect().adjusted(1, 1, -1, -1))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.clicked.emit()


class SwatchGrid(QWidget):
    """Palette colours as a wrapping grid of cells; the cell matching the current colour is outlined."""

    color_chosen = Signal(QColor)
    CELL = 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colors = np.zeros((0, 3), dtype=np.uint8)
        self._current: QColor | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)

    @property
    def colors(self) -> np.ndarray:
        return self._colors.copy()

    def set_colors(self, colors: np.ndarray) -> None:
        self._colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        self.updateGeometry()
        self.update()

    def set_current(self, color: QColor) -> None:
        self._current = QColor(color)
        self.update()

    def _columns(self) -> int:
        return max(1, self.width() // self.CELL)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        columns = max(1, width // self.CELL)
        return max(1, math.ceil(len(self._colors) / columns)) * self.CELL

    def sizeHint(self) -> QSize:
        return QSize(16 * self.CELL, self.heightForWidth(16 * self.CELL))

    def cell_rect(self, i: int) -> QRect:
        columns = self._columns()
        return QRect((i % columns) * self.CELL, (i // columns) * self.CELL, self.CELL - 2, self.CELL - 2)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        for i, (r, g, b) in enumerate(self._colors.tolist()):
            rect = self.cell_rect(i)
            painter.fillRect(rect, QColor(r, g, b))
            current = self._current
            if current is not None and (current.red(), current.green(), current.blue()) == (r, g, b):
                painter.setPen(QPen(QColor("#ffffff"), 2))
                painter.drawRect(rect.adjusted(1, 1, -1, -1))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        i = (pos.y() // self.CELL) * self._columns() + pos.x() // self.CELL
        if pos.x() < self._columns() * self.CELL and 0 <= i < len(self._colors):
            r, g, b = (int(v) for v in self._colors[i])
            self.color_chosen.emit(QColor(r, g, b))

    def resizeEvent(self, event: object) -> None:
        self.setMinimumHeight(self.heightForWidth(self.width()))


class PaletteBar(QWidget):
    """Current colour + palette swatches; emits ``color_chosen`` and asks the owner for 'palette from image'."""

    color_chosen = Signal(QColor)
    from_image_requested = Signal()
    error = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("paletteBar")
        self.swatch = ColorSwatch()
        self.grid = SwatchGrid()
        self.choice = QComboBox()
        self.choice.setToolTip("Drawing palette")
        self._bundled = bundled_palettes()
        for name in self._bundled:
            self.choice.addItem(name)
        load = QPushButton("Load…")
        load.setToolTip("Load a .hex or GIMP .gpl palette")
        from_image = QPushButton("From image")
        from_image.setToolTip("Take up to 16 colours from the canvas")
        save = QPushButton("Save…")
        save.setToolTip("Save this palette as .hex or .gpl")
        self.swatch.clicked.connect(self.pick_color)
        self.grid.color_chosen.connect(self.color_chosen)
        self.choice.activated.connect(lambda _i: self._use_bundled(self.choice.currentText()))
        load.clicked.connect(self._load_dialog)
        save.clicked.connect(self._save_dialog)
        from_image.clicked.connect(self.from_image_requested)

        buttons = QVBoxLayout()
        buttons.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(self.choice, 1)
        top.addWidget(load)
        bottom = QHBoxLayout()
        bottom.addWidget(from_image, 1)
        bottom.addWidget(save)
        buttons.addLayout(top)
        buttons.addLayout(bottom)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.swatch, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.grid, 1)
        layout.addLayout(buttons)
        if DEFAULT_PALETTE in self._bundled:
            self._use_bundled(DEFAULT_PALETTE)

    def colors(self) -> np.ndarray:
        return self.grid.colors

    def set_colors(self, colors: np.ndarray, name: str) -> None:
        """Show ``colors`` as the drawing palette called ``name`` (added to the list if new)."""
        self.grid.set_colors(colors)
        if self.choice.findText(name) < 0:
            self.choice.addItem(name)
        self.choice.setCurrentText(name)

    def set_current(self, color: QColor) -> None:
        self.swatch.set_color(color)
        self.grid.set_current(color)

    def load_file(self, path: Path) -> bool:
        """Load a palette file; a bad file is reported through ``error`` and leaves the palette as it was."""
        try:
            colors = load_palette(Path(path))
        except StudioError as exc:
            self.error.emit(str(exc))
            return False
        self.set_colors(colors, Path(path).stem)
        return True

    def pick_color(self) -> None:
        color = QColorDialog.getColor(
            self.swatch.color, self, "Drawing colour", QColorDialog.ColorDialogOption.ShowAlphaChannel
        )
        if color.isValid():
            self.color_chosen.emit(color)

    def _use_bundled(self, name: str) -> None:
        if name in self._bundled:
            self.load_file(self._bundled[name])

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load palette", "", PALETTE_FILTER)
        if path:
            self.load_file(Path(path))

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save palette", f"{self.choice.currentText()}.hex",
                                              PALETTE_FILTER)
        if not path:
            return
        try:
            save_palette(Path(path), self.colors(), name=self.choice.currentText())
        except (StudioError, OSError) as exc:
            self.error.emit(f"could not save the palette: {exc}")
