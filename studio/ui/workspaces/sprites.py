"""The Sprites workspace: pixel canvas and tools, generation panel, streaming results, post-processing, export.

Jobs follow the payload contracts of the shared brief: ``sprite.generate``/``variations``/``blend`` stream
``{"index", "rgba", "recipe"}`` dicts as PARTIAL events and finish with the list; ``sprite.inpaint`` finishes
with one such dict, applied to the canvas as an undoable step. Every canvas change goes on ``undo_stack``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QPalette, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.formats import png_meta
from studio.core.formats.images import load_rgba
from studio.core.formats.palette import auto_palette
from studio.core.formats.sheet import Tag, load_sheet, save_sheet
from studio.core.jobs import JobEvent, JobSpec
from studio.core.pixel_finish import FinishOptions, finish_sprite
from studio.core.recipe import recipe_or_problem
from studio.core.safe_write import write_atomic
from studio.core.settings import Settings
from studio.core.sprite_ops import outline, quantize, remove_background, snap_alpha
from studio.engine.client import Engine
from studio.ui import dialogs
from studio.ui.app import dark_palette, style_sheet
from studio.ui.icons import icon
from studio.ui.jobs import run_job
from studio.ui.widgets.elided_label import ElidedLabel
from studio.ui.widgets.palette_bar import PaletteBar
from studio.ui.widgets.pixel_canvas import MAX_SIDE, PixelCanvas, Tool, rgba_to_qimage
from studio.ui.widgets.pixel_icons import pixel_icon
from studio.ui.widgets.results_grid import ResultsGrid
from studio.ui.workspaces.base import SidePanel, Workspace
from studio.ui.workspaces.sprite_panel import FROM_WORDS, SpritePanel
from studio.ui.workspaces.sprite_style import ERROR_COLOR, STYLE

BATCH_JOBS = ("generate", "variations", "blend")
IMAGE_FILTER = "PNG images (*.png);;Images (*.png *.gif *.bmp *.jpg *.jpeg *.webp);;Sprite sheets (*.json)"
SHEET_FILTER = "Sprite sheet, PNG + Aseprite JSON (*.png)"
TOOLS = (
    (Tool.PENCIL, "pencil", "Pencil (B): left paints, right erases"),
    (Tool.ERASER, "eraser", "Eraser (E)"),
    (Tool.FILL, "fill", "Fill (G): same-colour area, 4-connected"),
    (Tool.EYEDROPPER, "eyedropper", "Eyedropper (I)"),
    (Tool.SELECT, "select", "Rectangle selection (M): the region 'Redraw selection' repaints; Ctrl+D clears"),
)
TOOL_KEYS = {Tool.PENCIL: "B", Tool.ERASER: "E", Tool.FILL: "G", Tool.EYEDROPPER: "I", Tool.SELECT: "M"}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f", about {seconds:.0f} s left" if seconds < 90 else f", about {seconds / 60:.0f} min left"


class SizeDialog(QDialog):
    """Asks for a canvas width and height (1..256)."""

    def __init__(self, title: str, width: int, height: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box, value in ((self.width_box, width), (self.height_box, height)):
            box.setRange(1, MAX_SIDE)
            box.setValue(value)
            box.setSuffix(" px")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Width", self.width_box)
        form.addRow("Height", self.height_box)
        form.addRow(buttons)


class SpriteWorkspace(Workspace):
    title = "Sprites"
    welcome = ("<b>Sprites</b>: generate 32×32 pixel-art sprites by category, open one on the canvas (click), edit "
               "it with the tools on the left, then save a PNG (Ctrl+S) or export a sprite sheet (Ctrl+E).",
               "Try it: 16 characters")

    def __init__(self, engine: Engine, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(engine, settings, parent)
        self.setObjectName("spriteWorkspace")
        self.setAcceptDrops(True)
        self._jobs: dict[int, str] = {}  # job id -> purpose ("models", "generate", "inpaint", ...)
        self._path: Path | None = None
        self._models_loaded = False
        self._pending_recipe: dict[str, Any] | None = None

        self.canvas = PixelCanvas(self.undo_stack)
        self.palette_bar = PaletteBar()
        self.results = ResultsGrid()
        self.panel = SpritePanel()
        self._build()
        self._connect()
        if self.palette().color(QPalette.ColorRole.Window).lightness() > 128:
            # no application theme (shown alone, e.g. in tests): carry the app's dark theme ourselves
            self.setPalette(dark_palette())
            self.setStyleSheet(style_sheet() + STYLE)
        else:
            self.setStyleSheet(STYLE)
        self.palette_bar.set_current(self.canvas.color)
        self.refresh_models()

    # --- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.canvas)
        self.scroll.setWidgetResizable(True)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        editor = QWidget()
        editor_layout = QVBoxLayout(editor)
        editor_layout.setContentsMargins(0, 0, 0, 0)
        editor_layout.setSpacing(0)
        editor_layout.addWidget(self._build_canvas_bar())
        editor_layout.addWidget(self.scroll, 1)
        editor_layout.addWidget(self.palette_bar)

        results_box = QWidget()
        results_layout = QVBoxLayout(results_box)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.setSpacing(0)
        results_layout.addWidget(self._build_results_bar())
        results_layout.addWidget(self.results, 1)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(editor)
        self.splitter.addWidget(results_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([520, 200])

        right = SidePanel(self._build_right(), 350)
        right.setFrameShape(QScrollArea.Shape.NoFrame)
        right.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_tools())
        layout.addWidget(self.splitter, 1)
        layout.addWidget(right)

    def _build_tools(self) -> QWidget:
        column = QWidget()
        column.setObjectName("toolColumn")
        layout = QVBoxLayout(column)
        layout.setContentsMargins(4, 8, 4, 8)
        layout.setSpacing(4)
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[Tool, QToolButton] = {}
        for tool, icon_name, tip in TOOLS:
            button = QToolButton()
            button.setIcon(pixel_icon(icon_name))
            button.setIconSize(QSize(24, 24))
            button.setCheckable(True)
            button.setToolTip(tip)
            button.setAutoRaise(True)
            self.tool_group.addButton(button)
            self.tool_buttons[tool] = button
            button.clicked.connect(lambda _=False, t=tool: self.set_tool(t))
            layout.addWidget(button)
            shortcut = QShortcut(QKeySequence(TOOL_KEYS[tool]), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda t=tool: self.set_tool(t))
        layout.addStretch(1)
        self.tool_buttons[Tool.PENCIL].setChecked(True)
        deselect = QShortcut(QKeySequence("Ctrl+D"), self)
        deselect.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        deselect.activated.connect(lambda: self.canvas.set_selection(None))
        return column

    def _build_canvas_bar(self) -> QWidget:
        bar = QFrame()
        bar.setObjectName("toolbarRow")
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(8, 4, 8, 4)
        self.zoom_label = QLabel()
        zoom_out, zoom_in, fit = QToolButton(), QToolButton(), QToolButton()
        for button, name, tip in ((zoom_out, "zoom-out", "Zoom out (Ctrl+wheel)"),
                                  (zoom_in, "zoom-in", "Zoom in (Ctrl+wheel)"), (fit, "zoom-fit", "Zoom to fit")):
            button.setIcon(icon(name))
            button.setToolTip(tip)
        zoom_out.clicked.connect(lambda: self.canvas.set_zoom(self.canvas.zoom - max(1, self.canvas.zoom // 8)))
        zoom_in.clicked.connect(lambda: self.canvas.set_zoom(self.canvas.zoom + max(1, self.canvas.zoom // 8)))
        fit.clicked.connect(self.fit_canvas)
        self.grid_button = QToolButton()
        self.grid_button.setIcon(pixel_icon("grid"))
        self.grid_button.setCheckable(True)
        self.grid_button.setChecked(True)
        self.grid_button.setToolTip("Pixel grid (shown from 4x zoom)")
        self.grid_button.toggled.connect(self.canvas.set_show_grid)
        self.tile_button = QToolButton()
        self.tile_button.setText("3×3")
        self.tile_button.setCheckable(True)
        self.tile_button.setToolTip("Tile preview: the canvas repeated 3×3, to see seams of floor and wall tiles")
        self.size_label = QLabel()
        self.size_label.setObjectName("hint")
        self.hover_label = QLabel()
        self.hover_label.setObjectName("hint")
        new, resize = QPushButton("New…"), QPushButton("Resize…")
        new.setToolTip("New empty canvas (up to 256x256)")
        resize.setToolTip("Change the canvas size, keeping the picture centred")
        new.clicked.connect(lambda: self._ask_size("New canvas", self.canvas.new_canvas))
        resize.clicked.connect(lambda: self._ask_size("Resize canvas", self.canvas.resize_canvas))
        for widget in (zoom_out, self.zoom_label, zoom_in, fit, self.grid_button, self.tile_button):
            layout.addWidget(widget)
        layout.addSpacing(12)
        layout.addWidget(self.size_label)
        layout.addSpacing(12)
        layout.addWidget(self.hover_label)
        layout.addStretch(1)
        layout.addWidget(new)
        layout.addWidget(resize)
        return bar

    def _build_results_bar(self) -> QWidget:
        bar = QFrame()
        bar.setObjectName("toolbarRow")
        layout = QHBoxLayout(bar)
        layout.setContentsMargins(8, 4, 8, 4)
        self.results_label = QLabel("Results")
        hint = QLabel("click: open on the canvas · Ctrl+click: pick one to blend with, or several to export · "
                      "←/→ step")
        hint.setObjectName("hint")
        hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.results_label)
        layout.addSpacing(8)
        layout.addWidget(hint, 1)
        return bar

    @staticmethod
    def _group(layout: QVBoxLayout, title: str) -> QVBoxLayout:
        """A titled group in the side panel; returns the layout to fill."""
        group = QGroupBox(title)
        layout.addWidget(group)
        inner = QVBoxLayout(group)
        inner.setContentsMargins(8, 8, 8, 8)
        inner.setSpacing(6)
        return inner

    def _build_right(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(4)

        section = self._group(layout, "Generate")
        section.addWidget(self.panel)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Generate sprites (Ctrl+Enter)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (Esc)")
        self.cancel_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.generate_button, 2)
        row.addWidget(self.cancel_button, 1)
        section.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.progress.setMinimumWidth(0)
        keep_place = self.progress.sizePolicy()
        keep_place.setRetainSizeWhenHidden(True)  # showing progress must not move the buttons below
        self.progress.setSizePolicy(keep_place)
        self.progress.hide()
        self.status = ElidedLabel(lines=2)  # fixed height: a long message must not move the buttons either
        self.status.setObjectName("hint")
        section.addWidget(self.progress)
        section.addWidget(self.status)

        section = self._group(layout, "From the canvas")
        self.variation_count = QSpinBox()
        self.variation_count.setRange(1, 64)
        self.variation_count.setValue(8)
        self.variation_count.setPrefix("× ")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setValue(0.35)
        self.strength.setToolTip("How far variations may stray from the canvas sprite (0 = identical)")
        self.variation_count.setToolTip("How many variations")
        self.blend_frames = QSpinBox()
        self.blend_frames.setRange(2, 64)
        self.blend_frames.setValue(8)
        self.blend_frames.setSuffix(" frames")
        self.variations_button = QPushButton("Variations")
        self.blend_button = QPushButton("Blend with selected")
        self.redraw_button = QPushButton("Redraw selection")
        strength_label = QLabel("Strength")
        strength_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        grid = QGridLayout()
        grid.addWidget(self.variations_button, 0, 0)
        grid.addWidget(self.variation_count, 0, 1)
        grid.addWidget(strength_label, 1, 0)
        grid.addWidget(self.strength, 1, 1)
        grid.addWidget(self.blend_button, 2, 0)
        grid.addWidget(self.blend_frames, 2, 1)
        grid.addWidget(self.redraw_button, 3, 0, 1, 2)
        section.addLayout(grid)

        section = self._group(layout, "Post-process (undoable)")
        self.quantize_button = QPushButton("Quantise to palette")
        self.quantize_button.setToolTip("Every pixel to its nearest colour of the drawing palette")
        self.outline_button = QPushButton("Outline")
        self.outline_button.setToolTip("1-px outline outside the shape, in the drawing colour")
        self.remove_bg_button = QPushButton("Remove background")
        self.remove_bg_button.setToolTip("Clear the border colour flooded in from the edges")
        self.tolerance = QSpinBox()
        self.tolerance.setRange(0, 255)
        self.tolerance.setValue(8)
        self.tolerance.setPrefix("± ")
        self.tolerance.setToolTip("Colour tolerance of the background flood (0-255)")
        self.snap_button = QPushButton("Snap alpha")
        self.snap_button.setToolTip("Pixel-grid snap: no semi-transparent pixels")
        self.finish_button = QPushButton("Pixel-art finish")
        self.finish_button.setToolTip("Up to 16 colours chosen for this image, flat shading without noise, crisp "
                                      "alpha, no stray specks (what Generate does by default)")
        self.raw_button = QPushButton("Model's raw output")
        self.raw_button.setToolTip("Undo the pixel-art finish of the generated sprite on the canvas: show what the "
                                   "model drew")
        grid = QGridLayout()
        grid.addWidget(self.quantize_button, 0, 0)
        grid.addWidget(self.outline_button, 0, 1)
        grid.addWidget(self.remove_bg_button, 1, 0)
        grid.addWidget(self.tolerance, 1, 1)
        grid.addWidget(self.snap_button, 2, 0)
        grid.addWidget(self.finish_button, 2, 1)
        grid.addWidget(self.raw_button, 3, 0, 1, 2)
        section.addLayout(grid)

        section = self._group(layout, "Export")
        self.export_button = QPushButton("Sprite sheet (PNG + JSON)")
        self.export_button.setToolTip("Results (or the selected ones) as an Aseprite json-hash sheet (Ctrl+E)")
        self.export_each_button = QPushButton("Each result as PNG")
        self.export_each_button.setToolTip("One PNG per result, with its recipe, into a folder you choose")
        self.export_button.setIcon(icon("export"))
        section.addWidget(self.export_button)
        section.addWidget(self.export_each_button)

        self.tile_group = QGroupBox("Tile preview (3×3)")
        self.tile_preview = QLabel()
        self.tile_preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        tile_layout = QVBoxLayout(self.tile_group)
        tile_layout.addWidget(self.tile_preview)
        self.tile_group.hide()
        layout.addWidget(self.tile_group)
        layout.addStretch(1)
        return box

    def _connect(self) -> None:
        self.canvas.color_changed.connect(self.palette_bar.set_current)
        self.canvas.zoom_changed.connect(self._update_canvas_labels)
        self.canvas.image_changed.connect(self._update_canvas_labels)
        self.canvas.selection_changed.connect(self._update_actions)
        self.canvas.hover_changed.connect(self._on_hover)
        self.palette_bar.color_chosen.connect(self.canvas.set_color)
        self.palette_bar.from_image_requested.connect(self.palette_from_canvas)
        self.palette_bar.error.connect(self._error)
        self.results.result_activated.connect(self.open_result)
        self.results.itemSelectionChanged.connect(self._update_actions)
        self.panel.model_changed.connect(lambda _entry: self._update_actions())
        self.panel.refresh_requested.connect(self.refresh_models)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.variations_button.clicked.connect(self.variations)
        self.blend_button.clicked.connect(self.blend)
        self.redraw_button.clicked.connect(self.redraw_selection)
        self.quantize_button.clicked.connect(self.quantize_canvas)
        self.outline_button.clicked.connect(self.outline_canvas)
        self.remove_bg_button.clicked.connect(self.remove_background_canvas)
        self.snap_button.clicked.connect(self.snap_alpha_canvas)
        self.finish_button.clicked.connect(self.finish_canvas)
        self.raw_button.clicked.connect(self.raw_canvas)
        self.tile_button.toggled.connect(self._show_tile_preview)
        self.canvas.image_changed.connect(self._update_tile_preview)
        self.export_button.clicked.connect(self.export)
        self.export_each_button.clicked.connect(self.export_each_dialog)
        self._update_canvas_labels()
        self._update_actions()

    # --- small helpers ------------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(message)
        self.status_message.emit(message)

    def _error(self, message: str) -> None:
        self.status.setStyleSheet(f"color: {ERROR_COLOR};")
        self.status.setText(message)
        self.status_message.emit(message)

    def set_tool(self, tool: Tool) -> None:
        self.canvas.set_tool(tool)
        self.tool_buttons[tool].setChecked(True)

    def fit_canvas(self) -> None:
        self.canvas.zoom_to_fit(self.scroll.viewport().size())

    def _ask_size(self, title: str, apply: Any) -> None:
        width, height = self.canvas.image_size
        dialog = SizeDialog(title, width, height, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            apply(dialog.width_box.value(), dialog.height_box.value())
            self.fit_canvas()

    def _update_canvas_labels(self, *_: Any) -> None:
        width, height = self.canvas.image_size
        self.zoom_label.setText(f"{self.canvas.zoom}×")
        self.size_label.setText(f"{width}×{height}")

    def _on_hover(self, x: int, y: int) -> None:
        if x < 0:
            self.hover_label.setText("")
            return
        r, g, b, a = (int(v) for v in self.canvas.image[y, x])
        self.hover_label.setText(f"{x}, {y}   #{r:02X}{g:02X}{b:02X}{a:02X}")

    def _update_actions(self) -> None:
        has_model = self.panel.current_model() is not None
        family = self.panel.family
        self.generate_button.setEnabled(has_model)
        self.variations_button.setEnabled(family == "vae")
        self.blend_button.setEnabled(family == "vae" and self.results.currentRow() >= 0)
        self.redraw_button.setEnabled(family == "diffusion" and self.canvas.selection is not None)
        self.variations_button.setToolTip("Variations of the canvas sprite (needs a VAE model)")
        self.blend_button.setToolTip("Blend the canvas into the result picked with Ctrl+click (needs a VAE model)")
        self.redraw_button.setToolTip("Repaint the selected region (needs a diffusion model and a selection, M)")

    # --- jobs ---------------------------------------------------------------------------------------
    def _submit(self, purpose: str, spec: JobSpec) -> int:
        self._jobs[spec.job_id] = purpose
        if purpose == "models":
            run_job(self.engine, spec, on_done=self._on_models, on_fail=self.panel.show_problem,
                    on_end=lambda: self._jobs.pop(spec.job_id, None))
            return spec.job_id
        run_job(self.engine, spec, on_started=lambda: self._on_started(purpose),
                on_progress=lambda event: self._on_progress(purpose, event),
                on_partial=lambda payload: self._on_partial(purpose, payload),
                on_done=lambda payload: self._on_finished(purpose, payload),
                on_fail=lambda message: self._error(f"{purpose.capitalize()} failed: {message}"),
                on_cancel=lambda: self._say(f"{purpose.capitalize()} cancelled."),
                on_end=lambda: self._job_ended(spec.job_id))
        self.active_job = spec.job_id
        self.cancel_button.setEnabled(True)
        return spec.job_id

    def refresh_models(self) -> None:
        self._submit("models", JobSpec("models.list", {"modality": "sprite"}))

    def select_model(self, name: str) -> bool:
        """Choose a model by name (used by the model manager's 'use this model')."""
        return self.panel.select_model(name)

    def generate(self) -> None:
        model = self.panel.current_model()
        if model is None:
            self._error("No sprite model is installed: see the note under Generate for how to get one.")
            return
        params = self.panel.params()
        spec = JobSpec("sprite.generate", params, seed=self.panel.seed.next_seed(), model=model["name"])
        self._submit("generate", spec)
        self._say(f"Generating {params['count']} sprite(s) with {model['name']} (seed {spec.seed})…")

    def run_example(self) -> None:
        if self.panel.category.findText("characters") >= 0:
            self.panel.category.setCurrentText("characters")
        self.panel.count.setValue(16)
        self.generate()

    def variations(self) -> None:
        if self._need_family("vae", "Variations"):
            params = {"rgba": self.canvas.image.copy(), "category": self._canvas_category(),
                      "count": self.variation_count.value(), "strength": self.strength.value()}
            self._submit_model_job("variations", "sprite.variations", params)

    def blend(self) -> None:
        if not self._need_family("vae", "Blend"):
            return
        position = self.results.currentRow()
        if position < 0:
            self._error("Blend: select a result to blend the canvas with.")
            return
        other = self.results.result(position)["rgba"]
        if np.array_equal(other, self.canvas.image):
            self._error("Blend: the canvas shows the selected result already; Ctrl+click another result to blend "
                        "the canvas with it.")
            return
        params = {"a": self.canvas.image.copy(), "b": other.copy(),
                  "category": self._canvas_category(), "frames": self.blend_frames.value()}
        self._submit_model_job("blend", "sprite.blend", params)

    def redraw_selection(self) -> None:
        if not self._need_family("diffusion", "Redraw selection"):
            return
        mask = self.canvas.selection_mask()
        if mask is None:
            self._error("Redraw selection: select a region with the selection tool (M) first.")
            return
        params = {"rgba": self.canvas.image.copy(), "mask": mask, "category": self._canvas_category(),
                  "steps": self.panel.steps.value()}
        self._submit_model_job("inpaint", "sprite.inpaint", params)

    def _need_family(self, family: str, action: str) -> bool:
        if self.panel.family != family:
            article = "an" if family[0] in "aeiou" else "a"
            self._error(f"{action} needs {article} {family.upper()} model: choose one under Model.")
            return False
        return True

    def _submit_model_job(self, purpose: str, kind: str, params: dict[str, Any]) -> None:
        model = self.panel.current_model()
        assert model is not None
        self._submit(purpose, JobSpec(kind, params, seed=self.panel.seed.next_seed(), model=model["name"]))
        self._say(f"{purpose.capitalize()}: queued on {model['name']}…")

    def cancel(self) -> None:
        for job_id, purpose in list(self._jobs.items()):
            if purpose != "models":
                self.engine.cancel(job_id)

    def _on_started(self, purpose: str) -> None:
        if purpose in BATCH_JOBS:
            self.results.clear()
            self._update_results_label(purpose)
        self.progress.setValue(0)
        self.progress.show()

    def _on_progress(self, purpose: str, event: JobEvent) -> None:
        self.progress.setValue(int(event.fraction * 1000))
        self._say(f"{event.message or purpose.capitalize()}{format_eta(event.eta_s)}")

    def _on_partial(self, purpose: str, payload: Any) -> None:
        if purpose in BATCH_JOBS:
            self.results.add_result(payload)
            self._update_results_label(purpose)

    def _job_ended(self, job_id: int) -> None:
        self._jobs.pop(job_id, None)
        busy = any(p != "models" for p in self._jobs.values())
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if not busy:
            self.active_job = None

    def _on_models(self, models: list[dict[str, Any]] | None) -> None:
        self.panel.set_models(list(models or []))
        self._models_loaded = True
        if self.pending_model:
            self.select_model(self.take_pending_model())
        if self._pending_recipe is not None:
            self._restore_recipe(self._pending_recipe)
        self._update_actions()

    def _on_finished(self, purpose: str, payload: Any) -> None:
        if purpose in BATCH_JOBS:
            for item in payload or []:
                if self.results.position_of(item.get("index", -1)) is None:
                    self.results.add_result(item)
            self._update_results_label(purpose)
            self._say(f"{purpose.capitalize()}: {self.results.count()} sprite(s) ready. "
                      "Click one to open it on the canvas.")
        elif purpose == "inpaint":
            try:
                self.canvas.replace_image(payload["rgba"], "Redraw selection", payload.get("recipe"))
            except StudioError as exc:
                self._error(str(exc))
                return
            self._say("Selection redrawn (Ctrl+Z to undo).")

    def _update_results_label(self, purpose: str = "") -> None:
        what = {"variations": "variations", "blend": "blend frames"}.get(purpose, "results")
        self.results_label.setText(f"<b>{what.capitalize()}</b> · {self.results.count()}")

    # --- results and canvas -------------------------------------------------------------------------
    def open_result(self, position: int) -> None:
        """Put result ``position`` on the canvas as an undoable replacement (browsing merges into one step)."""
        result = self.results.result(position)
        old_size = self.canvas.image_size
        try:
            self.canvas.replace_image(result["rgba"], f"Open result #{result['index'] + 1}",
                                      result.get("recipe"), merge=True)
        except StudioError as exc:
            self._error(str(exc))
            return
        if self.results.currentRow() != position:
            self.results.setCurrentRow(position)
        if self.canvas.image_size != old_size:
            self.fit_canvas()
        self._update_actions()

    def step_result(self, delta: int) -> None:
        if self.results.step(delta) is None:
            self._say("No results yet.")

    def palette_from_canvas(self) -> None:
        colors = auto_palette(self.canvas.image, 16)
        if len(colors) == 0:
            self._error("The canvas has no opaque pixels to take colours from.")
            return
        self.palette_bar.set_colors(colors, "From image")

    def _apply_op(self, label: str, result: np.ndarray, step: dict[str, Any]) -> None:
        if np.array_equal(result, self.canvas.image):
            self._say(f"{label}: nothing to change.")
            return
        recipe = self.canvas.recipe
        if recipe is not None:
            recipe = {**recipe, "post": [*recipe.get("post", []), step]}
        self.canvas.replace_image(result, label, recipe)
        self._say(f"{label} applied (Ctrl+Z to undo).")

    def quantize_canvas(self) -> None:
        palette = self.palette_bar.colors()
        name = self.palette_bar.choice.currentText()
        self._apply_op(f"Quantise to {name}", quantize(self.canvas.image, palette),
                       {"op": "quantize", "palette": name, "colors": len(palette)})

    def outline_canvas(self) -> None:
        c = self.canvas.color
        color = (c.red(), c.green(), c.blue(), 255) if c.alpha() else (0, 0, 0, 255)
        self._apply_op("Outline", outline(self.canvas.image, color), {"op": "outline", "color": list(color)})

    def remove_background_canvas(self) -> None:
        tolerance = self.tolerance.value()
        self._apply_op("Remove background", remove_background(self.canvas.image, tolerance),
                       {"op": "remove_background", "tolerance": tolerance})

    def snap_alpha_canvas(self) -> None:
        self._apply_op("Snap alpha", snap_alpha(self.canvas.image), {"op": "snap_alpha", "threshold": 128})

    def finish_canvas(self) -> None:
        tile = bool(((self.canvas.recipe or {}).get("params") or {}).get("tile"))
        options = FinishOptions(wrap=tile)
        self._apply_op("Pixel-art finish", finish_sprite(self.canvas.image, options),
                       {"op": "finish", **options.to_dict()})

    def _raw_of_canvas(self) -> np.ndarray | None:
        """The model's raw output of the generated sprite the canvas shows (None when it shows something else)."""
        for position in range(self.results.count()):
            result = self.results.result(position)
            if "raw" in result and np.array_equal(result["rgba"], self.canvas.image):
                return result["raw"]
        return None

    def raw_canvas(self) -> None:
        raw = self._raw_of_canvas()
        if raw is None:
            self._error("The canvas does not show a generated sprite as it came out of the finish.")
            return
        self._apply_op("Model's raw output", raw, {"op": "raw"})

    def _show_tile_preview(self, shown: bool) -> None:
        self.tile_group.setVisible(shown)
        self._update_tile_preview()

    def _update_tile_preview(self) -> None:
        if not self.tile_group.isVisible():
            return
        image = self.canvas.image
        tiled = np.tile(image, (3, 3, 1))
        scale = max(1, 192 // max(tiled.shape[:2]))
        big = np.repeat(np.repeat(tiled, scale, axis=0), scale, axis=1)
        self.tile_preview.setPixmap(QPixmap.fromImage(rgba_to_qimage(np.ascontiguousarray(big))))

    def _canvas_category(self) -> str | None:
        """The category for jobs on the canvas sprite: the one chosen, else the canvas recipe's, else the first."""
        chosen = self.panel.category.currentData()
        if chosen != FROM_WORDS:
            return chosen
        recorded = ((self.canvas.recipe or {}).get("params") or {}).get("category")
        if isinstance(recorded, str) and self.panel.category.findData(recorded) >= 0:
            return recorded
        return self.panel.category.itemData(0)

    # --- files --------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path = dialogs.ask_open_path(self, "sprites", "Open sprite", self.settings.resolved_output_dir, IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: Path) -> None:
        """Open an image on the canvas (restoring a recipe it carries) or a sprite-sheet JSON into the results."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".json":
                self._open_sheet(path)
                return
            rgba = load_rgba(path)
            png = path.suffix.lower() == ".png"
            recipe, problem = recipe_or_problem(png_meta.read_recipe, path) if png else (None, "")
            self.canvas.replace_image(rgba, f"Open {path.name}", recipe)
        except StudioError as exc:
            self._error(str(exc))
            return
        self._path = path if path.suffix.lower() == ".png" else None
        self.fit_canvas()
        if recipe:
            self._restore_recipe(recipe)
        else:
            self._say(f"Opened {path.name} ({rgba.shape[1]}×{rgba.shape[0]}). {problem}".strip())

    def _open_sheet(self, path: Path) -> None:
        sheet = load_sheet(path)
        self.results.clear()
        for i, (_name, rgba) in enumerate(sheet.frames):
            self.results.add_result({"index": i, "rgba": rgba, "recipe": None})
        self._update_results_label()
        self._say(f"Opened sheet {path.name}: {len(sheet.frames)} frames in the results.")

    def _restore_recipe(self, recipe: dict[str, Any]) -> None:
        self._pending_recipe = None if self._models_loaded else recipe
        problems = self.panel.apply_recipe(recipe)
        described = ", ".join(f"{k} {recipe[k]}" for k in ("model", "seed") if k in recipe)
        message = f"Recipe restored ({described}); Generate with count 1 makes this sprite again."
        if problems and self._models_loaded:
            message += " Not restored: " + "; ".join(problems) + "."
        self._say(message)

    def save(self) -> None:
        if self._path is not None:
            self.save_as(self._path)
            return
        path = dialogs.ask_save_path(self, "sprites", "Save sprite", self.settings.resolved_output_dir,
                                     "sprite.png", "PNG images (*.png)")
        if path:
            self.save_as(path)

    def save_as(self, path: Path) -> Path | None:
        """Save the canvas as PNG with its recipe (unless the privacy setting turns metadata off)."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        try:
            png_meta.save_png(path, self.canvas.image, self.canvas.recipe, self.settings.write_metadata)
        except (StudioError, OSError) as exc:
            self._error(f"Could not save {path.name}: {exc}")
            return None
        self._path = path
        self.undo_stack.setClean()
        self._say(f"Saved {path}")
        return path

    # --- unsaved work -------------------------------------------------------------------------------
    def unsaved_work(self) -> str:
        if self.undo_stack.isClean():
            return ""
        return f"changes to {self._path.name}" if self._path else "the sprite on the canvas"

    def close_document(self) -> None:
        self.canvas.set_image(np.zeros((32, 32, 4), dtype=np.uint8))
        self.undo_stack.clear()
        self._path = None
        self.fit_canvas()
        self._say("New 32×32 canvas.")

    def revision(self) -> object:
        return (self.undo_stack.index(), hash(self.canvas.image.tobytes()))

    def autosave(self, folder: Path) -> None:
        png_meta.save_png(folder / "canvas.png", self.canvas.image, self.canvas.recipe)
        write_atomic(folder / "path.txt", str(self._path or ""), "the sprite's file name")

    def restore_autosave(self, folder: Path) -> bool:
        canvas = folder / "canvas.png"
        if not canvas.exists():
            return False
        self.open_path(canvas)
        saved_as = (folder / "path.txt").read_text(encoding="utf-8").strip() if (folder / "path.txt").exists() else ""
        self._path = Path(saved_as) if saved_as else None
        self._say("Restored the sprite you had not saved when Studio closed.")
        return True

    def export(self) -> None:
        """Ctrl+E: the results (or the picked ones) as a sprite sheet, asking where (the folder is remembered)."""
        if not self._export_results():
            self._error("Nothing to export yet: generate sprites first.")
            return
        path = dialogs.ask_save_path(self, "sprites-export", "Export sprite sheet (PNG + JSON)",
                                     self.settings.resolved_output_dir, self._output_path(".png").name,
                                     SHEET_FILTER)
        if path:
            self.export_sheet(path.with_suffix(".png"))

    def export_each_dialog(self) -> None:
        """Every result (or the picked ones) as its own PNG, into a folder the user chooses."""
        if not self._export_results():
            self._error("Nothing to export yet: generate sprites first.")
            return
        folder = dialogs.ask_folder(self, "sprites-export", "Export each result as PNG into…",
                                    self.settings.resolved_output_dir)
        if folder:
            self.export_each(folder / self._output_path("").name)

    def _export_results(self) -> list[dict[str, Any]]:
        positions = self.results.selected_positions()
        chosen = positions if len(positions) > 1 else range(self.results.count())
        return [self.results.result(p) for p in chosen]

    @staticmethod
    def _frame_name(position: int, result: dict[str, Any]) -> str:
        recipe = result.get("recipe") or {}
        category = str((recipe.get("params") or {}).get("category") or "sprite").replace(" ", "_")
        seed = recipe.get("seed")
        return f"{position:03d}_{category}" + (f"_{seed}" if seed is not None else "")

    def _output_path(self, suffix: str) -> Path:
        folder = self.settings.resolved_output_dir
        stem = f"sprites-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = folder / f"{stem}{suffix}", 2
        while path.exists() or path.with_suffix(".json").exists():
            path, n = folder / f"{stem}-{n}{suffix}", n + 1
        return path

    def export_sheet(self, path: Path | None = None, columns: int | None = None) -> tuple[Path, Path] | None:
        """The results (or the selected ones) as a sprite sheet PNG + Aseprite json-hash."""
        results = self._export_results()
        if not results:
            self._error("Nothing to export yet: generate sprites first.")
            return None
        frames = [(self._frame_name(i, r), r["rgba"]) for i, r in enumerate(results)]
        recipe = results[0].get("recipe") or {}
        tag = str((recipe.get("params") or {}).get("category") or "sprites")
        try:
            written = save_sheet(path or self._output_path(".png"), frames, columns,
                                 tags=[Tag(tag, 0, len(frames) - 1)])
        except (StudioError, OSError) as exc:
            self._error(f"Could not export the sheet: {exc}")
            return None
        self._say(f"Exported {len(frames)} frames to {written[0]} (+ .json)")
        return written

    def export_each(self, folder: Path | None = None) -> list[Path]:
        """Every result (or the selected ones) as its own PNG with its recipe."""
        results = self._export_results()
        if not results:
            self._error("Nothing to export yet: generate sprites first.")
            return []
        folder = Path(folder) if folder else self._output_path("")
        written = []
        try:
            for i, result in enumerate(results):
                target = folder / f"{self._frame_name(i, result)}.png"
                written.append(png_meta.save_png(target, result["rgba"], result.get("recipe"),
                                                 self.settings.write_metadata))
        except (StudioError, OSError) as exc:
            self._error(f"Export stopped after {len(written)} file(s): {exc}")
            return written
        self._say(f"Exported {len(written)} PNG(s) to {folder}")
        return written

    # --- drag and drop ------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        local = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if local:
            self.open_path(Path(local[0]))
            event.acceptProposedAction()
