"""Generated sprites as a grid of crisp thumbnails that fills in while a batch streams in."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QMouseEvent, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from studio.ui.widgets.pixel_canvas import checker_brush, rgba_to_qimage

THUMB = 72


def thumbnail(rgba: np.ndarray, size: int = THUMB) -> QPixmap:
    """``rgba`` enlarged by the largest whole factor that fits (or shrunk nearest-neighbour), on a checkerboard."""
    height, width = rgba.shape[:2]
    factor = size // max(height, width)
    image = rgba_to_qimage(rgba)
    if factor >= 1:
        image = image.scaled(width * factor, height * factor)  # fast transformation = nearest neighbour
    else:
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio)
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor("#1b1c1f"))
    painter = QPainter(pixmap)
    target = QRect((size - image.width()) // 2, (size - image.height()) // 2, image.width(), image.height())
    painter.setBrushOrigin(target.topLeft())
    painter.fillRect(target, checker_brush(4))
    painter.drawImage(target, image)
    painter.end()
    return pixmap


#: Clicks with these keys pick results (for a blend or an export) without opening them on the canvas.
PICK_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier | \
    Qt.KeyboardModifier.MetaModifier


class ResultsGrid(QListWidget):
    """Holds result dicts ``{"index", "rgba", "recipe"}``; a plain click emits ``result_activated(position)``,
    a Ctrl/Shift-click only selects."""

    result_activated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultsGrid")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 14, THUMB + 24))
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setWrapping(True)
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._results: list[dict[str, Any]] = []  # row -> result (rows never move)
        self._click_modifiers = Qt.KeyboardModifier.NoModifier
        self.itemClicked.connect(self._on_clicked)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._click_modifiers = event.modifiers()  # itemClicked is emitted from inside the release
        super().mouseReleaseEvent(event)

    def _on_clicked(self, item: QListWidgetItem) -> None:
        if not self._click_modifiers & PICK_MODIFIERS:
            self.result_activated.emit(self.row(item))

    def clear(self) -> None:
        super().clear()
        self._results.clear()

    def add_result(self, payload: dict[str, Any]) -> int:
        """Add (or replace, when its ``index`` is already shown) one result; returns its position."""
        rgba = np.asarray(payload["rgba"], dtype=np.uint8)
        result = {"index": payload.get("index", self.count()), "rgba": rgba, "recipe": payload.get("recipe")}
        if payload.get("raw") is not None:  # the model's output before the pixel-art finish (undo on the canvas)
            result["raw"] = np.asarray(payload["raw"], dtype=np.uint8)
        position = self.position_of(result["index"])
        item = self.item(position) if position is not None else QListWidgetItem()
        item.setIcon(QIcon(thumbnail(rgba)))
        item.setText(f"#{result['index'] + 1}")
        item.setToolTip(self._describe(result))
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
        if position is None:
            self._results.append(result)
            self.addItem(item)
            position = self.count() - 1
        else:
            self._results[position] = result
        return position

    def position_of(self, index: int) -> int | None:
        return next((row for row, r in enumerate(self._results) if r["index"] == index), None)

    def result(self, position: int) -> dict[str, Any]:
        return self._results[position]

    def results(self) -> list[dict[str, Any]]:
        return list(self._results)

    def selected_positions(self) -> list[int]:
        return sorted(self.row(item) for item in self.selectedItems())

    def step(self, delta: int) -> int | None:
        """Move the current result by ``delta`` (clamped) and activate it; None when the grid is empty."""
        if self.count() == 0:
            return None
        current = self.currentRow()
        position = 0 if current < 0 else max(0, min(self.count() - 1, current + delta))
        self.setCurrentRow(position)
        self.result_activated.emit(position)
        return position

    @staticmethod
    def _describe(result: dict[str, Any]) -> str:
        recipe = result.get("recipe") or {}
        height, width = result["rgba"].shape[:2]
        params = recipe.get("params") or {}
        parts = [f"{width}x{height}"]
        if recipe.get("model"):
            parts.append(f"model {recipe['model']}")
        if params.get("category"):
            parts.append(f"category {params['category']}")
        if "seed" in recipe:
            parts.append(f"seed {recipe['seed']}")
        return ", ".join(parts)
