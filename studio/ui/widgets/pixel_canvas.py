"""The pixel canvas: an RGBA image drawn at an integer zoom over a checkerboard, with drawing tools and undo.

Every edit is a QUndoCommand on the stack given to the canvas: one command per stroke (the pixels of one drag
are merged), per fill, per whole-image replacement (open, generated result, post-processing, resize).
The canvas also carries the recipe of its image, so undoing a replacement restores the recipe with it.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QUndoCommand,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from studio.core.errors import BadInputError
from studio.core.sprite_ops import check_rgba, fill_region

MAX_SIDE = 256
MIN_ZOOM, MAX_ZOOM = 1, 64
MARGIN = 24
GRID_MIN_ZOOM = 4
BROWSE_ID = 1701  # consecutive "open result" replacements merge into one undo step


class Tool(enum.Enum):
    PENCIL = "pencil"
    ERASER = "eraser"
    FILL = "fill"
    EYEDROPPER = "eyedropper"
    SELECT = "select"


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """A QImage that owns a copy of the pixels (straight alpha, RGBA8888)."""
    array = np.ascontiguousarray(rgba, dtype=np.uint8)
    height, width = array.shape[:2]
    return QImage(array.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


def checker_brush(square: int = 8) -> QBrush:
    """The transparent-background checkerboard, in screen pixels."""
    tile = QPixmap(2 * square, 2 * square)
    tile.fill(QColor("#5a5d63"))
    painter = QPainter(tile)
    painter.fillRect(0, 0, square, square, QColor("#45484d"))
    painter.fillRect(square, square, square, square, QColor("#45484d"))
    painter.end()
    return QBrush(tile)


def line_points(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """Bresenham: every pixel from (x0, y0) to (x1, y1), so fast drags leave no gaps."""
    points = []
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        points.append((x0, y0))
        if (x0, y0) == (x1, y1):
            return points
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def rect_between(a: tuple[int, int], b: tuple[int, int]) -> QRect:
    """The pixel rectangle with corners ``a`` and ``b`` included, whichever way it was dragged."""
    left, right = sorted((a[0], b[0]))
    top, bottom = sorted((a[1], b[1]))
    return QRect(left, top, right - left + 1, bottom - top + 1)


class PixelEditCommand(QUndoCommand):
    """Some pixels changed: their coordinates with the values before and after."""

    def __init__(self, canvas: PixelCanvas, text: str, ys: np.ndarray, xs: np.ndarray,
                 before: np.ndarray, after: np.ndarray) -> None:
        super().__init__(text)
        self._canvas, self._ys, self._xs, self._before, self._after = canvas, ys, xs, before, after

    def redo(self) -> None:
        self._canvas.write_pixels(self._ys, self._xs, self._after)

    def undo(self) -> None:
        self._canvas.write_pixels(self._ys, self._xs, self._before)


class ReplaceImageCommand(QUndoCommand):
    """The whole image (and its recipe) replaced; ``merge`` makes consecutive browse steps one undo step."""

    def __init__(self, canvas: PixelCanvas, text: str, image: np.ndarray, recipe: dict[str, Any] | None,
                 merge: bool = False) -> None:
        super().__init__(text)
        self._canvas = canvas
        self._before = (canvas.image.copy(), canvas.recipe)
        self._after = (image.copy(), recipe)
        self._merge = merge

    def id(self) -> int:
        return BROWSE_ID if self._merge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, ReplaceImageCommand) or not (self._merge and other._merge):
            return False
        self._after = other._after
        self.setText(other.text())
        return True

    def redo(self) -> None:
        self._canvas.set_image(*self._after)

    def undo(self) -> None:
        self._canvas.set_image(*self._before)


class PixelCanvas(QWidget):
    """Draws and edits one RGBA image. Coordinates in signals are image pixels."""

    color_changed = Signal(QColor)  # the drawing colour changed (eyedropper, set_color)
    image_changed = Signal()
    selection_changed = Signal()
    zoom_changed = Signal(int)
    hover_changed = Signal(int, int)  # (-1, -1) when the pointer leaves the image

    def __init__(self, undo_stack: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = undo_stack
        self._image = np.zeros((32, 32, 4), dtype=np.uint8)
        self._qimage = rgba_to_qimage(self._image)
        self.recipe: dict[str, Any] | None = None
        self._zoom = 12
        self._color = QColor(0, 0, 0, 255)
        self.tool = Tool.PENCIL
        self.show_grid = True
        self._selection: QRect | None = None
        self._hover: tuple[int, int] | None = None
        self._stroke: dict[tuple[int, int], np.ndarray] | None = None
        self._stroke_value = np.zeros(4, dtype=np.uint8)
        self._last: tuple[int, int] | None = None
        self._anchor: tuple[int, int] | None = None
        self._checker = checker_brush()
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    # --- image and state ---------------------------------------------------------------------------
    @property
    def image(self) -> np.ndarray:
        """The current pixels (read-only view; edit through commands)."""
        view = self._image.view()
        view.flags.writeable = False
        return view

    @property
    def image_size(self) -> tuple[int, int]:
        return self._image.shape[1], self._image.shape[0]

    def set_image(self, rgba: np.ndarray, recipe: dict[str, Any] | None = None) -> None:
        """Show ``rgba`` without an undo step (commands and initial set-up use this)."""
        rgba = check_rgba(rgba)
        if rgba.shape[0] > MAX_SIDE or rgba.shape[1] > MAX_SIDE:
            raise BadInputError(f"the canvas holds up to {MAX_SIDE}x{MAX_SIDE} pixels, "
                                f"not {rgba.shape[1]}x{rgba.shape[0]}")
        resized = rgba.shape != self._image.shape
        self._image = rgba.copy()
        self.recipe = recipe
        if resized:
            self._selection = None
            self.selection_changed.emit()
            self.updateGeometry()
        self._refresh()

    def replace_image(self, rgba: np.ndarray, text: str, recipe: dict[str, Any] | None = None,
                      merge: bool = False) -> None:
        """Replace the whole image (and its recipe) as one undoable step."""
        rgba = check_rgba(rgba)
        if rgba.shape[0] > MAX_SIDE or rgba.shape[1] > MAX_SIDE:
            raise BadInputError(f"the canvas holds up to {MAX_SIDE}x{MAX_SIDE} pixels, "
                                f"not {rgba.shape[1]}x{rgba.shape[0]}")
        self.undo_stack.push(ReplaceImageCommand(self, text, rgba, recipe, merge))

    def new_canvas(self, width: int, height: int) -> None:
        """An empty transparent image, as an undoable step."""
        self._check_size(width, height)
        self.replace_image(np.zeros((height, width, 4), dtype=np.uint8), f"New {width}x{height} canvas")

    def resize_canvas(self, width: int, height: int) -> None:
        """Change the canvas size keeping the picture centred (cropped or padded with transparency)."""
        self._check_size(width, height)
        old_w, old_h = self.image_size
        out = np.zeros((height, width, 4), dtype=np.uint8)
        dx, dy = (width - old_w) // 2, (height - old_h) // 2
        sx, sy = max(0, -dx), max(0, -dy)
        tx, ty = max(0, dx), max(0, dy)
        w, h = min(old_w - sx, width - tx), min(old_h - sy, height - ty)
        out[ty : ty + h, tx : tx + w] = self._image[sy : sy + h, sx : sx + w]
        self.replace_image(out, f"Resize canvas to {width}x{height}", self.recipe)

    @staticmethod
    def _check_size(width: int, height: int) -> None:
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise BadInputError(f"canvas size must be 1 to {MAX_SIDE} pixels a side, not {width}x{height}")

    def write_pixels(self, ys: np.ndarray, xs: np.ndarray, values: np.ndarray) -> None:
        self._image[ys, xs] = values
        self._refresh()

    def _refresh(self) -> None:
        self._qimage = rgba_to_qimage(self._image)
        self.update()
        self.image_changed.emit()

    @property
    def color(self) -> QColor:
        return QColor(self._color)

    def set_color(self, color: QColor) -> None:
        if color != self._color:
            self._color = QColor(color)
            self.color_changed.emit(QColor(color))

    def set_tool(self, tool: Tool) -> None:
        self.tool = tool

    def set_show_grid(self, show: bool) -> None:
        self.show_grid = show
        self.update()

    # --- selection -----------------------------------------------------------------------------------
    @property
    def selection(self) -> QRect | None:
        return QRect(self._selection) if self._selection is not None else None

    def set_selection(self, rect: QRect | None) -> None:
        if rect is not None:
            rect = rect.intersected(QRect(0, 0, *self.image_size))
            rect = rect if not rect.isEmpty() else None
        self._selection = rect
        self.selection_changed.emit()
        self.update()

    def selection_mask(self) -> np.ndarray | None:
        """HxW bool, True inside the selection (the region to redraw), or None without a selection."""
        if self._selection is None:
            return None
        mask = np.zeros(self._image.shape[:2], dtype=bool)
        r = self._selection
        mask[r.top() : r.bottom() + 1, r.left() : r.right() + 1] = True
        return mask

    # --- zoom and geometry ---------------------------------------------------------------------------
    @property
    def zoom(self) -> int:
        return self._zoom

    def set_zoom(self, zoom: int) -> None:
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, int(zoom)))
        if zoom != self._zoom:
            self._zoom = zoom
            self.updateGeometry()
            self.update()
            self.zoom_changed.emit(zoom)

    def zoom_to_fit(self, area: QSize) -> None:
        width, height = self.image_size
        fit = min((area.width() - 2 * MARGIN) // width, (area.height() - 2 * MARGIN) // height)
        self.set_zoom(max(MIN_ZOOM, min(fit, 32)))

    def sizeHint(self) -> QSize:
        width, height = self.image_size
        return QSize(width * self._zoom + 2 * MARGIN, height * self._zoom + 2 * MARGIN)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def image_rect(self) -> QRect:
        """Where the image is drawn, in widget coordinates (centred)."""
        width, height = self.image_size
        w, h = width * self._zoom, height * self._zoom
        return QRect(max(MARGIN, (self.width() - w) // 2), max(MARGIN, (self.height() - h) // 2), w, h)

    def pixel_at(self, pos: QPoint) -> tuple[int, int]:
        rect = self.image_rect()
        return (pos.x() - rect.x()) // self._zoom, (pos.y() - rect.y()) // self._zoom

    def widget_point(self, x: int, y: int) -> QPoint:
        """The centre of image pixel (x, y) in widget coordinates (for tests and tooltips)."""
        rect = self.image_rect()
        return QPoint(rect.x() + x * self._zoom + self._zoom // 2, rect.y() + y * self._zoom + self._zoom // 2)

    def _inside(self, x: int, y: int) -> bool:
        width, height = self.image_size
        return 0 <= x < width and 0 <= y < height

    # --- painting --------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#1b1c1f"))
        rect = self.image_rect()
        painter.setBrushOrigin(rect.topLeft())
        painter.fillRect(rect, self._checker)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(rect, self._qimage)
        if self.show_grid and self._zoom >= GRID_MIN_ZOOM:
            self._paint_grid(painter, rect)
        painter.setPen(QPen(QColor("#0c0c0e"), 1))
        painter.drawRect(rect.adjusted(-1, -1, 0, 0))
        if self._hover is not None and self.tool is not Tool.SELECT:
            x, y = self._hover
            painter.setPen(QPen(QColor(255, 255, 255, 160), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect.x() + x * self._zoom, rect.y() + y * self._zoom, self._zoom - 1, self._zoom - 1)
        if self._selection is not None:
            self._paint_selection(painter, rect)
        painter.end()

    def _paint_grid(self, painter: QPainter, rect: QRect) -> None:
        width, height = self.image_size
        painter.setPen(QPen(QColor(255, 255, 255, 26), 1))
        for i in range(1, width):
            x = rect.x() + i * self._zoom
            painter.drawLine(x, rect.top(), x, rect.bottom())
        for j in range(1, height):
            y = rect.y() + j * self._zoom
            painter.drawLine(rect.left(), y, rect.right(), y)

    def _paint_selection(self, painter: QPainter, rect: QRect) -> None:
        s = self._selection
        area = QRect(rect.x() + s.x() * self._zoom, rect.y() + s.y() * self._zoom,
                     s.width() * self._zoom - 1, s.height() * self._zoom - 1)
        painter.fillRect(area, QColor(95, 179, 255, 40))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor("#ffffff"), 1))
        painter.drawRect(area)
        dashed = QPen(QColor("#101010"), 1, Qt.PenStyle.CustomDashLine)
        dashed.setDashPattern([4, 4])
        painter.setPen(dashed)
        painter.drawRect(area)

    # --- input --------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        x, y = self.pixel_at(event.position().toPoint())
        button = event.button()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return super().mousePressEvent(event)
        if self.tool is Tool.SELECT:
            self._anchor = (x, y)
            self.set_selection(QRect(x, y, 1, 1))
        elif self.tool is Tool.EYEDROPPER:
            self._pick(x, y)
        elif self.tool is Tool.FILL:
            self._fill(x, y, self._value_for(button))
        else:  # pencil or eraser: a stroke may start outside the image and enter it
            self._stroke = {}
            self._stroke_value = self._value_for(button)
            self._last = (x, y)
            self._paint_points([(x, y)])
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        x, y = self.pixel_at(event.position().toPoint())
        hover = (x, y) if self._inside(x, y) else None
        if hover != self._hover:
            self._hover = hover
            self.hover_changed.emit(*(hover or (-1, -1)))
            self.update()
        if self._stroke is not None and self._last is not None:
            self._paint_points(line_points(*self._last, x, y))
            self._last = (x, y)
        elif self._anchor is not None:
            self.set_selection(rect_between(self._anchor, (x, y)))
        elif self.tool is Tool.EYEDROPPER and event.buttons() & Qt.MouseButton.LeftButton:
            self._pick(x, y)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._stroke is not None:
            self._finish_stroke()
        self._anchor = None
        event.accept()

    def leaveEvent(self, event: Any) -> None:
        self._hover = None
        self.hover_changed.emit(-1, -1)
        self.update()
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() // 120 or (1 if event.angleDelta().y() > 0 else -1)
            self.set_zoom(self._zoom + steps * max(1, self._zoom // 8))
            event.accept()
        else:
            event.ignore()

    # --- tools --------------------------------------------------------------------------------------
    def _value_for(self, button: Qt.MouseButton) -> np.ndarray:
        """Pencil paints the colour, the eraser (or the right button) paints transparency."""
        if self.tool is Tool.ERASER or button == Qt.MouseButton.RightButton:
            return np.zeros(4, dtype=np.uint8)
        c = self._color
        return np.array([c.red(), c.green(), c.blue(), c.alpha()], dtype=np.uint8)

    def _paint_points(self, points: list[tuple[int, int]]) -> None:
        assert self._stroke is not None
        changed = False
        for x, y in points:
            if not self._inside(x, y) or np.array_equal(self._image[y, x], self._stroke_value):
                continue
            self._stroke.setdefault((y, x), self._image[y, x].copy())
            self._image[y, x] = self._stroke_value
            changed = True
        if changed:
            self._refresh()

    def _finish_stroke(self) -> None:
        stroke, self._stroke, self._last = self._stroke, None, None
        if not stroke:
            return
        ys = np.array([p[0] for p in stroke], dtype=np.intp)
        xs = np.array([p[1] for p in stroke], dtype=np.intp)
        before = np.array(list(stroke.values()), dtype=np.uint8)
        after = self._image[ys, xs].copy()
        name = "Erase" if not after[:, 3].any() else "Draw"
        self.undo_stack.push(PixelEditCommand(self, f"{name} {len(ys)} px", ys, xs, before, after))

    def _fill(self, x: int, y: int, value: np.ndarray) -> None:
        if not self._inside(x, y) or np.array_equal(self._image[y, x], value):
            return
        ys, xs = np.nonzero(fill_region(self._image, x, y))
        before = self._image[ys, xs].copy()
        after = np.broadcast_to(value, before.shape).copy()
        self.undo_stack.push(PixelEditCommand(self, f"Fill {len(ys)} px", ys, xs, before, after))

    def _pick(self, x: int, y: int) -> None:
        if self._inside(x, y):
            r, g, b, a = (int(v) for v in self._image[y, x])
            self.set_color(QColor(r, g, b, a))
