"""The sprite generation settings: model, category, words, palette, pixel-art finish, tiling, seed, count,
diffusion steps and guidance.

It knows the payload contract of ``sprite.generate`` (the params it builds) and how to restore a recipe read
from a PNG; it runs no jobs itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import paths
from studio.core.formats.palette import bundled_palettes
from studio.core.plain_words import family_words, quality_figures, source_words, technical_figures
from studio.core.recipe import palette_choice, real_number, whole_number
from studio.core.sprite_tags import PromptReading, TagVocabulary
from studio.ui.widgets.seed_box import MAX_SEED, SeedBox
from studio.ui.widgets.word_field import WordField

AUTO_SIZES = (4, 8, 16, 32)
LOAD_FILE = "__load__"
FROM_WORDS = "__words__"  # the category entry that lets the words decide


def family_of(model: dict[str, Any] | None) -> str:
    """'gan', 'vae' or 'diffusion' (or the raw family) for a ``models.list`` entry."""
    family = str((model or {}).get("family", "")).lower()
    for known in ("vae", "diffusion", "gan"):
        if known in family:
            return known
    return "diffusion" if "ddpm" in family else family


def no_model_help() -> str:
    return (
        "<b>No sprite model is installed.</b><br>"
        "Train one on your own sprites in the <i>Train</i> workspace, or import a model file in the <i>Models</i> "
        "workspace, or copy a <code>.safetensors</code> model with its "
        f"<code>.json</code> into<br><code>{paths.user_models_dir()}</code>, then press Refresh.<br>"
        "The canvas, palettes and post-processing work without a model."
    )


class SpritePanel(QWidget):
    """Generation settings. ``model_changed`` fires with the chosen model's entry (or None)."""

    model_changed = Signal(object)
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._models: list[dict[str, Any]] = []
        self.model = QComboBox()
        self.model.setToolTip("Sprite model (family in brackets)")
        self.model_info = QLabel()
        self.model_info.setObjectName("hint")
        self.model_info.setWordWrap(True)  # family, source and metrics can be longer than the panel is wide
        self.refresh = QToolButton()
        self.refresh.setText("Refresh")
        self.refresh.setToolTip("Look for installed models again")
        self.notice = QLabel(no_model_help())
        self.notice.setObjectName("warning")
        self.notice.setWordWrap(True)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice.hide()
        self.category = QComboBox()
        self.prompt = WordField()
        self.prompt.setToolTip("Words the model knows, e.g. 'skeleton', 'red potion', 'stone wall'. Type to see "
                               "them completed; unknown words are named below and left out.")
        self.prompt_hint = QLabel()
        self.prompt_hint.setObjectName("hint")
        self.prompt_hint.setWordWrap(True)
        self.finish = QCheckBox("Pixel-art finish")
        self.finish.setChecked(True)
        self.finish.setToolTip("Limited palette (up to 16 colours, or the palette chosen above), flat shading without "
                               "noise, crisp alpha, no stray specks. Off: the model's raw output.")
        self.outline = QCheckBox("Outline")
        self.outline.setToolTip("A 1-px outline around the silhouette, in the sprite's darkest colour")
        self.tile = QCheckBox("Tile seamlessly")
        self.tile.setToolTip("Floor and wall tiles drawn to repeat without seams (see the 3×3 tile preview)")
        self.palette_combo = QComboBox()
        self.seed = SeedBox()
        self.count = QSpinBox()
        self.count.setRange(1, 256)
        self.count.setValue(16)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(10)  # as `studio generate sprite`, the model cards and the benchmark
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 20.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(2.0)
        self._fill_palettes()
        for combo in (self.model, self.category, self.palette_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)

        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.refresh)
        form = self._form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Model", model_row)
        form.addRow("", self.model_info)
        form.addRow("Category", self.category)
        form.addRow("Words", self.prompt)
        form.addRow("", self.prompt_hint)
        form.addRow("Palette", self.palette_combo)
        finish_row = QHBoxLayout()
        for box in (self.finish, self.outline):
            finish_row.addWidget(box)
        finish_row.addStretch(1)
        form.addRow("", finish_row)
        form.addRow("", self.tile)
        form.addRow("Seed", self.seed.row())
        form.addRow("Count", self.count)
        form.addRow("Detail steps", self.steps)
        form.addRow("Stick to category", self.guidance)
        self.steps.setToolTip("More steps: more detail, slower (DDIM sampling steps)")
        self.guidance.setToolTip("Higher: more typical of the category, less varied (classifier-free guidance "
                                 "scale)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.notice)
        layout.addLayout(form)

        self.model.currentIndexChanged.connect(self._on_model)
        self.category.currentIndexChanged.connect(self._on_category)
        self.prompt.reading_changed.connect(self._on_reading)
        self.finish.toggled.connect(self.outline.setEnabled)
        self.refresh.clicked.connect(self.refresh_requested)
        self.palette_combo.activated.connect(self._on_palette_activated)
        self._on_model()

    # --- models -------------------------------------------------------------------------------------
    def set_models(self, models: list[dict[str, Any]]) -> None:
        """Fill the model list with the sprite models of a ``models.list`` payload; keeps the choice if it can."""
        previous = self.model.currentData()
        self._models = [m for m in models if m.get("modality") == "sprite"]
        self.model.blockSignals(True)
        self.model.clear()
        for entry in self._models:  # the name alone fits the panel; the family is said under it and in the tooltip
            self.model.addItem(entry["name"], entry["name"])
            self.model.setItemData(self.model.count() - 1, family_words(family_of(entry)),
                                   Qt.ItemDataRole.ToolTipRole)
        self.model.view().setMinimumWidth(self.model.view().sizeHintForColumn(0) + 24)
        index = self.model.findData(previous)
        self.model.setCurrentIndex(max(index, 0) if self._models else -1)
        self.model.blockSignals(False)
        self.notice.setVisible(not self._models)
        self._on_model()

    def show_problem(self, message: str) -> None:
        """The model list could not be read: say so where the models would be."""
        self.notice.setText(f"<b>Could not list models:</b> {message}<br><br>{no_model_help()}")
        self.notice.show()

    def current_model(self) -> dict[str, Any] | None:
        name = self.model.currentData()
        return next((m for m in self._models if m["name"] == name), None)

    def select_model(self, name: str) -> bool:
        index = self.model.findData(name)
        if index >= 0:
            self.model.setCurrentIndex(index)
        return index >= 0

    @property
    def family(self) -> str:
        return family_of(self.current_model())

    def _on_model(self) -> None:
        entry = self.current_model()
        previous = self.category.currentData()
        self.category.blockSignals(True)
        self.category.clear()
        categories = list((entry or {}).get("categories") or [])
        for name in categories:
            self.category.addItem(name, name)
        vocabulary = TagVocabulary.from_dict((entry or {}).get("tags"))
        if len(vocabulary):
            self.category.addItem("Any (the words decide)", FROM_WORDS)
        self.category.setEnabled(bool(categories))
        index = self.category.findData(previous)
        if index >= 0:
            self.category.setCurrentIndex(index)
        self.category.blockSignals(False)
        self.prompt.set_vocabulary(vocabulary)
        self._on_category()
        diffusion = self.family == "diffusion"
        self._form.setRowVisible(self.steps, diffusion)
        self._form.setRowVisible(self.guidance, diffusion)
        if entry is None:
            self.model_info.setText("")
            self._form.setRowVisible(self.model_info, False)
        else:
            metrics = entry.get("metrics") or {}
            quality = [text for text, _ in quality_figures(metrics)]
            self.model_info.setText(" · ".join([family_words(self.family), source_words(entry.get("source", "")),
                                                *quality]))
            self.model_info.setToolTip(f"{entry['name']} ({self.family})\n{technical_figures(metrics)}".strip())
            self._form.setRowVisible(self.model_info, True)
        self.model_changed.emit(entry)

    def _on_category(self) -> None:
        tiles = set((self.current_model() or {}).get("tile_categories") or [])
        self.tile.setEnabled(self.category.currentData() in tiles)
        if not self.tile.isEnabled():
            self.tile.setChecked(False)
        self._on_reading(self.prompt.reading())

    def _on_reading(self, reading: PromptReading) -> None:
        """Say what the model will draw: the words it uses, those it does not know, and the category."""
        if not self.prompt.isEnabled():
            self.prompt_hint.setText("")
            self._form.setRowVisible(self.prompt_hint, False)
            return
        parts = []
        if reading.tags:
            parts.append("Uses: " + ", ".join(reading.tags) + ".")
        elif not self.prompt.text().strip():
            parts.append("No words: the category alone." if self.category.currentData() != FROM_WORDS
                         else "Type a few words, or pick a category.")
        explained = reading.explain()
        if explained:
            parts.append(explained)
        if reading.tags and self.category.currentData() == FROM_WORDS:
            parts.append("The words pick the category.")
        self.prompt_hint.setText(" ".join(parts))
        self._form.setRowVisible(self.prompt_hint, bool(parts))

    # --- palettes -----------------------------------------------------------------------------------
    def _fill_palettes(self) -> None:
        self.palette_combo.addItem("None (model colours)", "none")
        for n in AUTO_SIZES:
            self.palette_combo.addItem(f"Automatic, {n} colours", f"auto-{n}")
        for name in bundled_palettes():
            self.palette_combo.addItem(name, name)
        self.palette_combo.addItem("Load file…", LOAD_FILE)

    def _on_palette_activated(self, index: int) -> None:
        if self.palette_combo.itemData(index) != LOAD_FILE:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Palette for generation", "", "Palettes (*.hex *.gpl)")
        if path:
            self.set_palette(path)
        else:
            self.palette_combo.setCurrentIndex(0)

    def set_palette(self, value: str) -> None:
        """Choose a palette spec ('none', 'auto-N', a bundled name or a file path), adding files as needed."""
        index = self.palette_combo.findData(value)
        if index < 0:
            index = self.palette_combo.count() - 1  # before "Load file…"
            self.palette_combo.insertItem(index, Path(value).name, value)
        self.palette_combo.setCurrentIndex(index)

    # --- params and recipes -----------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """``sprite.generate`` params, as the payload contract names them."""
        category = self.category.currentData()
        return {
            "category": None if category == FROM_WORDS else category,
            "prompt": self.prompt.text() if self.prompt.isEnabled() else "",
            "count": self.count.value(),
            "palette": self.palette_combo.currentData() or "none",
            "steps": self.steps.value(),
            "guidance": self.guidance.value(),
            "tile": self.tile.isChecked(),
            "finish": {"enabled": self.finish.isChecked(), "outline": self.outline.isChecked()},
        }

    def apply_recipe(self, recipe: dict[str, Any]) -> list[str]:
        """Restore a sprite's recipe (count 1 reproduces that very sprite); returns what could not be restored."""
        problems = []
        params = recipe.get("params")
        params = params if isinstance(params, dict) else {}
        model = recipe.get("model")
        if model and not self.select_model(str(model)):
            problems.append(f"model {model!r} is not installed")
        category = params.get("category")
        if category:
            if self.category.findData(str(category)) >= 0:
                self.category.setCurrentIndex(self.category.findData(str(category)))
            else:
                problems.append(f"category {category!r} is not offered by this model")
        if isinstance(params.get("prompt"), str):
            self.prompt.setText(params["prompt"][:2000])
        finish = params.get("finish")
        if isinstance(finish, dict):
            self.finish.setChecked(finish.get("enabled", True) is not False)
            self.outline.setChecked(finish.get("outline") is True)
        self.tile.setChecked(params.get("tile") is True and self.tile.isEnabled())
        seed = whole_number(recipe.get("seed"), 0, MAX_SEED)
        if seed is not None:
            self.seed.setValue(seed)
        self.count.setValue(1)
        palette, problem = palette_choice(params.get("palette"))
        if palette is not None:
            self.set_palette(palette)
        problems += [problem] if problem else []
        steps = whole_number(params.get("steps"), self.steps.minimum(), self.steps.maximum())
        if steps is not None:
            self.steps.setValue(steps)
        guidance = real_number(params.get("guidance"), self.guidance.minimum(), self.guidance.maximum())
        if guidance is not None:
            self.guidance.setValue(guidance)
        return problems
