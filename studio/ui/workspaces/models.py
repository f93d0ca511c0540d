"""The model manager: every bundled, trained and imported model in one table, with its card and actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.defaults import default_model
from studio.core.jobs import JobSpec
from studio.core.modalities import all_modalities
from studio.core.plain_words import family_words, quality_figures, source_words, technical_figures
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui.jobs import run_job
from studio.ui.workspaces.base import Workspace

COLUMNS = ("Name", "Makes", "Kind", "From", "Size", "Quality", "Licence")
MODALITIES = (("All", ""), *((m.label, m.name) for m in all_modalities()), ("Quality judges", "eval"))
MAKES = {key: label for label, key in MODALITIES if key}


def format_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"


def format_metrics(metrics: dict[str, Any]) -> str:
    """The figures that say how good a model is, in plain words (every figure is in the cell's tooltip)."""
    return ", ".join(text for text, _ in quality_figures(metrics)[:2])


def plain_summary(model: dict[str, Any]) -> str:
    """Markdown a user reads before the technical card: what it is, where it comes from, how good it is."""
    kind = family_words(str(model.get("family", "")), str(model.get("modality", "")))
    lines = [f"**{kind}**, {source_words(str(model.get('source', '')))}."]
    lines += [f"- {text} ({tip})" for text, tip in quality_figures(model.get("metrics") or {})]
    return "\n".join(lines) + "\n\n*The technical card follows.*\n\n---\n\n"


class ModelManagerWorkspace(Workspace):
    title = "Models"
    welcome = ("<b>Models</b>: every model that comes with Studio, that you trained or imported, with its card: what "
               "it makes, how it was made, how good it is. Select one and press Use to generate with it.",
               "Try it: read the sprite GAN's card")
    #: (modality, model name): the main window switches the generation workspace to this model
    use_model = Signal(str, str)

    def __init__(self, engine: Engine, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(engine, settings, parent)
        self.models: list[dict[str, Any]] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_card)
        self.filter = QComboBox()
        for label, key in MODALITIES:
            self.filter.addItem(label, key)
        self.filter.currentIndexChanged.connect(lambda _: self._fill())
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(False)
        self.status = QLabel()
        self.buttons: dict[str, QPushButton] = {}
        actions = (
            ("Refresh", self.refresh),
            ("Import…", self.open_dialog),
            ("Use", self._use),
            ("Rename…", self._rename),
            ("Delete", self._delete),
            ("Verify", self._verify),
            ("Export ONNX", self.export),
        )
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.filter)
        for label, slot in actions:
            button = QPushButton(label)
            button.clicked.connect(slot)
            self.buttons[label] = button
            bar.addWidget(button)
        bar.addStretch(1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.card)
        splitter.setSizes([300, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self._update_buttons()
        self._show_card()  # says what selecting a model shows
        self.refresh()

    # --- data ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        run_job(self.engine, JobSpec("models.list"), on_done=self._on_list, on_fail=self._fail)

    def _on_list(self, models: list[dict[str, Any]]) -> None:
        self.models = models
        self._fill()

    def _visible(self) -> list[dict[str, Any]]:
        wanted = self.filter.currentData()
        return [m for m in self.models if not wanted or m["modality"] == wanted]

    def _fill(self) -> None:
        visible = self._visible()
        self.table.setRowCount(len(visible))
        for row, model in enumerate(visible):
            cells = (model["name"], MAKES.get(model["modality"], model["modality"]),
                     family_words(model["family"], model["modality"]).split(":")[0], source_words(model["source"]),
                     format_size(model["size_bytes"]), format_metrics(model["metrics"]), model.get("licence", ""))
            tips = ("", model["modality"], family_words(model["family"], model["modality"]), model["source"], "",
                    technical_figures(model["metrics"]), model.get("licence", ""))
            for column, (text, tip) in enumerate(zip(cells, tips, strict=True)):
                item = QTableWidgetItem(str(text))
                item.setToolTip(tip)
                self.table.setItem(row, column, item)
        self.status.setText(f"{len(visible)} model(s)")
        self._update_buttons()

    def selected(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        visible = self._visible()
        return visible[rows[0].row()] if rows and rows[0].row() < len(visible) else None

    def select_name(self, name: str) -> None:
        for row, model in enumerate(self._visible()):
            if model["name"] == name:
                self.table.selectRow(row)

    def _update_buttons(self) -> None:
        model = self.selected()
        for label in ("Use", "Verify", "Export ONNX"):
            self.buttons[label].setEnabled(model is not None)
        editable = model is not None and model["source"] != "bundled"
        self.buttons["Rename…"].setEnabled(editable)
        self.buttons["Delete"].setEnabled(editable)

    def _show_card(self) -> None:
        self._update_buttons()
        model = self.selected()
        if model is None:
            self.card.setPlainText("Select a model to read what it makes, where it comes from and how good it is.")
            return
        card = Path(model["card_path"]) if model.get("card_path") else None
        if card is not None and card.exists():
            self.card.setSearchPaths([str(card.parent)])
            self.card.setMarkdown(plain_summary(model) + card.read_text(encoding="utf-8", errors="replace"))
        else:
            self.card.setMarkdown(
                plain_summary(model) + f"# {model['name']}\n\nNo model card. Architecture `{model['arch']}`, "
                f"file `{model['path']}`."
            )

    # --- actions ---------------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status_message.emit(text)

    def _fail(self, message: str) -> None:
        self._say(message)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a model", "", "Models (*.safetensors *.onnx *.gguf);;All files (*)"
        )
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path) -> None:
        self._say(f"Importing {Path(path).name}…")
        run_job(self.engine, JobSpec("models.import", {"path": str(path)}),
                on_done=lambda r: (self._say(f"Imported {r['name']}"), self.refresh()), on_fail=self._fail)

    def run_example(self) -> None:
        self.filter.setCurrentIndex(0)
        self.select_name(default_model("sprite"))

    def _use(self) -> None:
        model = self.selected()
        if model:
            self.use_model.emit(model["modality"], model["name"])

    def _rename(self) -> None:
        model = self.selected()
        if model is None:
            return
        new, ok = QInputDialog.getText(self, "Rename model", "New name:", text=model["name"])
        if ok and new and new != model["name"]:
            self.rename(model["name"], new)

    def rename(self, name: str, new_name: str) -> None:
        run_job(self.engine, JobSpec("models.rename", {"name": name, "new_name": new_name}),
                on_done=lambda r: (self._say(f"Renamed to {r['name']}"), self.refresh()), on_fail=self._fail)

    def _delete(self) -> None:
        model = self.selected()
        if model is None:
            return
        answer = QMessageBox.question(self, "Delete model", f"Delete {model['name']} and its files?")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(model["name"])

    def delete(self, name: str) -> None:
        run_job(self.engine, JobSpec("models.delete", {"name": name}),
                on_done=lambda r: (self._say(f"Deleted {name}"), self.refresh()), on_fail=self._fail)

    def _verify(self) -> None:
        model = self.selected()
        if model:
            run_job(self.engine, JobSpec("models.verify", {"name": model["name"]}),
                    on_done=lambda r: self._say(f"{r['name']}: files verified"), on_fail=self._fail)

    def export(self) -> None:
        model = self.selected()
        if model is None:
            return
        self._say(f"Exporting {model['name']} to ONNX…")
        run_job(self.engine, JobSpec("models.export_onnx", {"name": model["name"]}),
                on_done=lambda r: self._say(f"ONNX export written to {r['folder']}"), on_fail=self._fail)
