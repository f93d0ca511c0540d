"""The pixel canvas: drawing with the mouse, one undo step per stroke, fill, eyedropper, selection, zoom."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QUndoStack, QWheelEvent
from PySide6.QtWidgets import QApplication

from studio.core.errors import BadInputError
from studio.ui.widgets.palette_bar import PaletteBar
from studio.ui.widgets.pixel_canvas import PixelCanvas, Tool, line_points
from tests.qt.sprite_fakes import make_sprite

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def canvas(qtbot):
    stack = QUndoStack()
    widget = PixelCanvas(stack)
    widget.stack = stack  # keep the stack alive with the widget
    qtbot.addWidget(widget)
    widget.resize(widget.sizeHint())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def drag(qtbot, canvas: PixelCanvas, points: list[tuple[int, int]], button=LEFT) -> None:
    qtbot.mousePress(canvas, button, NONE, canvas.widget_point(*points[0]))
    for x, y in points[1:]:
        qtbot.mouseMove(canvas, canvas.widget_point(x, y))
    qtbot.mouseRelease(canvas, button, NONE, canvas.widget_point(*points[-1]))


def test_a_drag_draws_a_gapless_line_as_one_undo_step(qtbot, canvas) -> None:
    canvas.set_color(QColor(255, 0, 77))
    drag(qtbot, canvas, [(2, 3), (9, 3), (9, 8)])  # two fast moves: Bresenham fills the gaps
    painted = canvas.image[..., 3] > 0
    expected = np.zeros((32, 32), dtype=bool)
    expected[3, 2:10] = True
    expected[3:9, 9] = True
    assert np.array_equal(painted, expected)
    assert canvas.image[3, 5].tolist() == [255, 0, 77, 255]
    assert canvas.undo_stack.count() == 1
    canvas.undo_stack.undo()
    assert not canvas.image.any()
    canvas.undo_stack.redo()
    assert np.array_equal(canvas.image[..., 3] > 0, expected)


def test_right_button_and_eraser_clear_pixels(qtbot, canvas) -> None:
    canvas.set_image(make_sprite(3))
    before = canvas.image.copy()
    opaque = np.argwhere(before[..., 3] > 0)
    y, x = (int(v) for v in opaque[0])
    drag(qtbot, canvas, [(x, y)], button=RIGHT)
    assert canvas.image[y, x].tolist() == [0, 0, 0, 0]
    y2, x2 = (int(v) for v in opaque[-1])
    canvas.set_tool(Tool.ERASER)
    drag(qtbot, canvas, [(x2, y2)])
    assert canvas.image[y2, x2, 3] == 0
    assert canvas.undo_stack.count() == 2
    canvas.undo_stack.undo()
    canvas.undo_stack.undo()
    assert np.array_equal(canvas.image, before)


def test_strokes_that_change_nothing_leave_no_undo_step(qtbot, canvas) -> None:
    canvas.set_tool(Tool.ERASER)
    drag(qtbot, canvas, [(1, 1), (5, 5)])
    assert canvas.undo_stack.count() == 0


def test_fill_covers_the_connected_area_only(qtbot, canvas) -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:, 4] = (0, 0, 0, 255)  # a wall splits the image
    canvas.set_image(rgba)
    canvas.set_tool(Tool.FILL)
    canvas.set_color(QColor(41, 173, 255))
    qtbot.mouseClick(canvas, LEFT, NONE, canvas.widget_point(1, 1))
    assert (canvas.image[:, :4] == (41, 173, 255, 255)).all()
    assert (canvas.image[:, 5:] == 0).all()
    assert canvas.undo_stack.count() == 1
    canvas.undo_stack.undo()
    assert np.array_equal(canvas.image, rgba)


def test_eyedropper_picks_the_pixel_colour(qtbot, canvas) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[2, 1] = (10, 200, 30, 128)
    canvas.set_image(rgba)
    canvas.set_tool(Tool.EYEDROPPER)
    with qtbot.waitSignal(canvas.color_changed, timeout=1000) as blocker:
        qtbot.mouseClick(canvas, LEFT, NONE, canvas.widget_point(1, 2))
    assert blocker.args[0] == QColor(10, 200, 30, 128)
    assert canvas.color == QColor(10, 200, 30, 128)
    assert canvas.undo_stack.count() == 0


def test_rectangle_selection_gives_the_inpainting_mask(qtbot, canvas) -> None:
    canvas.set_tool(Tool.SELECT)
    drag(qtbot, canvas, [(10, 4), (3, 7), (5, 9)])
    assert canvas.selection is not None
    assert (canvas.selection.x(), canvas.selection.y(), canvas.selection.width(), canvas.selection.height()) == (
        5, 4, 6, 6)
    mask = canvas.selection_mask()
    assert mask.shape == (32, 32)
    assert mask.sum() == 36
    assert mask[4:10, 5:11].all()
    canvas.set_selection(None)
    assert canvas.selection_mask() is None


def test_ctrl_wheel_zooms_in_whole_steps(qtbot, canvas) -> None:
    start = canvas.zoom

    def wheel(delta: int, modifiers) -> None:
        pos = QPointF(canvas.widget_point(4, 4))
        event = QWheelEvent(pos, canvas.mapToGlobal(pos), QPoint(0, 0), QPoint(0, delta), Qt.MouseButton.NoButton,
                            modifiers, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(canvas, event)

    wheel(120, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == start + max(1, start // 8)
    wheel(-120, Qt.KeyboardModifier.ControlModifier)
    wheel(-120, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom < start
    zoom = canvas.zoom
    wheel(120, NONE)  # without Ctrl the wheel scrolls (left to the scroll area)
    assert canvas.zoom == zoom


def test_rendering_is_nearest_neighbour_with_grid_from_zoom_4(qtbot, canvas) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[1, 2] = (255, 0, 77, 255)
    canvas.set_image(rgba)
    canvas.set_zoom(10)
    canvas.resize(canvas.sizeHint())
    image = canvas.grab().toImage()
    rect = canvas.image_rect()
    inside = [image.pixelColor(rect.x() + 2 * 10 + dx, rect.y() + 10 + dy) for dx in (1, 5, 8) for dy in (1, 5, 8)]
    assert all(c == QColor(255, 0, 77) for c in inside)  # a crisp block, no smoothing
    grid_line = QPoint(rect.x() + 10, rect.y() + 35)
    with_grid = image.pixelColor(grid_line)
    canvas.set_show_grid(False)
    assert canvas.grab().toImage().pixelColor(grid_line) != with_grid
    canvas.set_show_grid(True)
    canvas.set_zoom(2)
    canvas.resize(canvas.sizeHint())
    grid_on = canvas.grab().toImage()
    canvas.set_show_grid(False)
    assert canvas.grab().toImage() == grid_on  # below 4x no grid is drawn


def test_new_and_resize_canvas_are_undoable_and_bounded(qtbot, canvas) -> None:
    canvas.set_image(make_sprite(1))
    original = canvas.image.copy()
    canvas.resize_canvas(48, 16)
    assert canvas.image_size == (48, 16)
    assert np.array_equal(canvas.image[:, 8:40], original[8:24])
    canvas.new_canvas(64, 64)
    assert canvas.image_size == (64, 64) and not canvas.image.any()
    canvas.undo_stack.undo()
    canvas.undo_stack.undo()
    assert np.array_equal(canvas.image, original)
    with pytest.raises(BadInputError, match="256"):
        canvas.new_canvas(257, 32)
    with pytest.raises(BadInputError, match="256"):
        canvas.replace_image(np.zeros((300, 300, 4), np.uint8), "too big")
    assert canvas.undo_stack.count() == 2


def test_canvas_with_a_sprite_and_palette_screenshot(qtbot, canvas, save_screenshot) -> None:
    canvas.set_image(make_sprite(7))
    canvas.set_zoom(14)
    canvas.resize(canvas.sizeHint())
    bar = PaletteBar()
    qtbot.addWidget(bar)
    bar.resize(520, 60)
    with qtbot.waitSignal(bar.color_chosen, timeout=1000) as blocker:
        qtbot.mouseClick(bar.grid, LEFT, NONE, bar.grid.cell_rect(8).center())
    assert blocker.args[0] == QColor(0xFF, 0x00, 0x4D)  # PICO-8 colour 8
    path = save_screenshot(canvas, "sprite_canvas")
    assert path.stat().st_size > 0


def test_line_points_cover_every_step() -> None:
    assert line_points(0, 0, 3, 1) == [(0, 0), (1, 0), (2, 1), (3, 1)]
    assert line_points(2, 2, 2, 2) == [(2, 2)]
    assert len(line_points(5, 0, 0, 5)) == 6
