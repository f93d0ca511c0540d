"""The Copy workspace: a limit-aware ad-copy editor plus a brief form that generates copy with a language model.

The editor holds one ad in the plain-text layout of :mod:`studio.core.ad_formats`. Generated variants stream into
it (``copy.generate`` PARTIAL payloads) as one undoable step; Left/Right step through the variants. Ctrl+Z goes
through the workspace ``undo_stack``, which mirrors the editor document's own undo steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QTextCursor, QTextDocument, QUndoCommand
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.ad_formats import FORMATS, AdFormat, LineInfo, format_ad, parse_ad, problems
from studio.core.copy_brief import brief_from_dict, load_brief, save_brief
from studio.core.copy_export import PIN_POSITIONS, AdSet, export_ads, import_ads
from studio.core.copy_formats import FRAMEWORKS, GENERATION_FORMATS
from studio.core.defaults import copy_defaults
from studio.core.errors import StudioError
from studio.core.formats.text import read_text
from studio.core.jobs import EventType, JobSpec
from studio.core.paths import resources_dir
from studio.core.safe_write import write_atomic
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui import dialogs
from studio.ui.icons import icon
from studio.ui.jobs import run_job
from studio.ui.widgets.limit_editor import LimitEditor
from studio.ui.widgets.seed_box import SeedBox
from studio.ui.workspaces.base import SidePanel, Workspace

#: Formats the editor offers: every generation format, then free text.
EDITOR_FORMATS: dict[str, AdFormat] = {**GENERATION_FORMATS, **FORMATS}
TEXT_FILTER = "Text (*.txt *.md);;All files (*)"
OPEN_FILTER = "Copy (*.txt *.md *.csv *.json);;All files (*)"
EXPORT_FILTER = "CSV for ad tools (*.csv);;Markdown (*.md);;JSON with recipe (*.json)"
NO_MODEL = "No language model installed: run `bash packaging/setup.sh setup`"
FRAMEWORK_LABELS = {"none": "None", "aida": "AIDA", "pas": "PAS", "bab": "BAB", "fab": "FAB", "4p": "4P"}


class _DocumentStep(QUndoCommand):
    """One undo step of the editor's document, mirrored on the workspace undo stack."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__("Edit copy")
        self._document = document
        self._pushed = False

    def redo(self) -> None:
        if self._pushed:  # QUndoStack.push() calls redo() once; the document has already done it
            self._document.redo()
        self._pushed = True

    def undo(self) -> None:
        self._document.undo()


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


class BriefForm(QGroupBox):
    """The brief fields; reads and writes the brief JSON shape of :mod:`studio.core.copy_brief`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Brief", parent)
        self.product = QLineEdit()
        self.product.setPlaceholderText("What you are advertising")
        self.features = QPlainTextEdit()
        self.features.setPlaceholderText("One feature per line")
        self.features.setFixedHeight(72)
        self.audience = QLineEdit()
        self.audience.setPlaceholderText("e.g. home baristas")
        self.tone = QLineEdit()
        self.tone.setPlaceholderText("e.g. warm, playful")
        self.must_use = QLineEdit()
        self.must_use.setPlaceholderText("Comma-separated keywords")
        self.banned = QLineEdit()
        self.banned.setPlaceholderText("Comma-separated words or phrases (free* bans freebie)")
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for label, widget in (("Product", self.product), ("Features", self.features), ("Audience", self.audience),
                              ("Tone", self.tone), ("Must use", self.must_use), ("Banned", self.banned)):
            form.addRow(label, widget)
        for field in self._line_fields():  # a long entry shows its beginning once typed, and whole as a tooltip
            field.editingFinished.connect(lambda f=field: self._show_start(f))

    def _line_fields(self) -> tuple[QLineEdit, ...]:
        return self.product, self.audience, self.tone, self.must_use, self.banned

    @staticmethod
    def _show_start(field: QLineEdit) -> None:
        field.setCursorPosition(0)
        field.setToolTip(field.text())

    def data(self) -> dict[str, Any]:
        return {
            "product": self.product.text().strip(),
            "features": [line.strip() for line in self.features.toPlainText().splitlines() if line.strip()],
            "audience": self.audience.text().strip(),
            "tone": self.tone.text().strip(),
            "must_use": _split_list(self.must_use.text()),
            "banned": _split_list(self.banned.text()),
        }

    def set_data(self, data: dict[str, Any]) -> None:
        self.product.setText(data.get("product", ""))
        self.features.setPlainText("\n".join(data.get("features", [])))
        self.audience.setText(data.get("audience", ""))
        self.tone.setText(data.get("tone", ""))
        self.must_use.setText(", ".join(data.get("must_use", [])))
        self.banned.setText(", ".join(data.get("banned", [])))
        for field in self._line_fields():
            self._show_start(field)


class CopyWorkspace(Workspace):
    title = "Copy"
    welcome = ("<b>Copy</b>: fill in the brief on the right, pick an ad format above the editor and generate; every "
               "line shows its characters against the platform's limit. Export CSV for your ad tool with Ctrl+E.",
               "Try it: a coffee-subscription ad")

    def __init__(self, engine: Engine, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(engine, settings, parent)
        self.path: Path | None = None
        self._variants: list[dict[str, list[str]]] = []
        self._shown = 0
        self._recipe: dict[str, Any] = {}
        self._streaming = False
        self._unfinished: set[tuple[int, str, int]] = set()  # (variant, field, index) of lines still being written
        self._line_job: tuple[int, str, int, str] | None = None  # (job id, field, index, the line before)
        self._line_streaming = False
        # per variant: each line's angle, the slots filled from the brief itself, and Google pins
        self._angles: list[dict[str, dict[int, str]]] = []
        self._fallback: list[dict[str, set[int]]] = []
        self._pins: list[dict[str, dict[int, int]]] = []
        self._locks: dict[str, set[int]] = {}  # slots of the shown ad kept as they are when generating again

        self.editor = LimitEditor()
        self.editor.analysis_changed.connect(self._update_summary)
        document = self.editor.document()
        document.undoCommandAdded.connect(lambda: self.undo_stack.push(_DocumentStep(document)))
        self.format_combo = QComboBox()
        for name, fmt in EDITOR_FORMATS.items():
            self.format_combo.addItem(fmt.title, name)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.summary = QLabel()
        self.summary.setObjectName("hint")
        self.variant_label = QLabel("")
        self.variant_label.setObjectName("hint")
        self.previous_button = self._tool_button("previous", "Previous variant (Left)", lambda: self.step_result(-1))
        self.next_button = self._tool_button("next", "Next variant (Right)", lambda: self.step_result(1))
        rewrite = QAction("Rewrite this line with the model", self)
        rewrite.triggered.connect(self.rewrite_current_line)
        lock = QAction("Lock this line (kept when you generate again)", self)
        lock.triggered.connect(self.toggle_lock)
        pin = QAction("Pin this line to the next position (Google ads)", self)
        pin.triggered.connect(self.cycle_pin)
        self.editor.context_actions = [rewrite, lock, pin]
        self.editor.line_marks = self._line_marks
        self.editor.line_note = self._line_note

        header = QFrame()
        header.setObjectName("toolbarRow")
        row = QHBoxLayout(header)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(QLabel("Format"))
        row.addWidget(self.format_combo)
        row.addSpacing(12)
        row.addWidget(self.summary, 1)
        row.addWidget(self.previous_button)
        row.addWidget(self.variant_label)
        row.addWidget(self.next_button)
        editor_side = QWidget()
        editor_layout = QVBoxLayout(editor_side)
        editor_layout.setContentsMargins(0, 0, 0, 0)
        editor_layout.setSpacing(0)
        editor_layout.addWidget(header)
        editor_layout.addWidget(self.editor, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(editor_side)
        splitter.addWidget(self._build_panel())
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([700, 390])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        self._on_format_changed()
        document.clearUndoRedoStacks()  # the empty skeleton is where history starts
        document.setModified(False)
        self.undo_stack.clear()
        self._update_variant_nav()
        self.request_models()

    # --- panel ---------------------------------------------------------------------------------------
    def _tool_button(self, icon_name: str, tip: str, slot: Any) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(icon_name))
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def _build_panel(self) -> SidePanel:
        self.brief_form = BriefForm()
        load = QPushButton(icon("open"), "Load brief…")
        load.clicked.connect(self._load_brief_dialog)
        save = QPushButton(icon("save"), "Save brief…")
        save.clicked.connect(self._save_brief_dialog)
        brief_buttons = QHBoxLayout()
        brief_buttons.addWidget(load)
        brief_buttons.addWidget(save)
        self.brief_form.layout().addRow(brief_buttons)

        settings_box = QGroupBox("Generation")
        self.model_combo = QComboBox()
        self._model_chosen = False  # the user picked a model: the format's default no longer replaces it
        self.model_combo.activated.connect(lambda _index: setattr(self, "_model_chosen", True))
        self.model_warning = QLabel(NO_MODEL)
        self.model_warning.setObjectName("warning")
        self.model_warning.setWordWrap(True)
        self.model_warning.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_warning.hide()
        self.preparation_note = QLabel("")  # first run: the language model is being prepared in the background
        self.preparation_note.setObjectName("hint")
        self.preparation_note.setWordWrap(True)
        self.preparation_note.hide()
        self.framework_combo = QComboBox()
        for name in FRAMEWORKS:
            self.framework_combo.addItem(FRAMEWORK_LABELS.get(name, name.upper()), name)
        self.variants_spin = QSpinBox()
        self.variants_spin.setRange(1, 10)
        self.variants_spin.setValue(3)
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.1, 2.0)
        self.temperature_spin.setSingleStep(0.05)
        self.temperature_spin.setValue(copy_defaults().temperature)  # the CLI's defaults too
        self.top_p_spin = QDoubleSpinBox()
        self.top_p_spin.setRange(0.05, 1.0)
        self.top_p_spin.setSingleStep(0.05)
        self.top_p_spin.setValue(copy_defaults().top_p)
        self.seed_spin = SeedBox()
        form = QFormLayout(settings_box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        model_cell = QVBoxLayout()
        model_cell.setContentsMargins(0, 0, 0, 0)
        model_cell.addWidget(self.model_combo)
        model_cell.addWidget(self.model_warning)
        model_cell.addWidget(self.preparation_note)
        form.addRow("Model", model_cell)
        form.addRow("Framework", self.framework_combo)
        form.addRow("Variants", self.variants_spin)
        form.addRow("Boldness", self.temperature_spin)
        form.addRow("Word range", self.top_p_spin)
        self.temperature_spin.setToolTip("Higher: bolder, more surprising wording; lower: safer, plainer "
                                         "(sampling temperature)")
        self.top_p_spin.setToolTip("Lower: only the likeliest words; higher: a wider choice of words "
                                   "(nucleus sampling, top-p)")
        form.addRow("Seed", self.seed_spin.row())

        self.generate_button = QPushButton(icon("generate"), "Generate copy")
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Generate with the format chosen above the editor (Ctrl+Enter)")
        self.generate_button.clicked.connect(self.generate)
        self.rewrite_button = QPushButton("Rewrite current line")
        self.rewrite_button.setToolTip("Ask the model for a new version of the line under the cursor")
        self.rewrite_button.clicked.connect(self.rewrite_current_line)

        panel = QWidget()
        self.generation_panel = QVBoxLayout(panel)
        self.generation_panel.setContentsMargins(12, 8, 12, 12)
        self.generation_panel.addWidget(self.brief_form)
        self.generation_panel.addWidget(settings_box)
        self.generation_panel.addWidget(self.generate_button)
        self.generation_panel.addWidget(self.rewrite_button)
        self.generation_panel.addStretch(1)
        return SidePanel(panel, 390)

    # --- format and ad ----------------------------------------------------------------------------------
    @property
    def ad_format(self) -> AdFormat:
        return EDITOR_FORMATS[self.format_combo.currentData()]

    def set_format(self, name: str) -> None:
        index = self.format_combo.findData(name)
        if index < 0:
            raise StudioError(f"unknown ad format {name!r}")
        self.format_combo.setCurrentIndex(index)

    def _on_format_changed(self) -> None:
        default = copy_defaults(self.ad_format.name).model if self.ad_format.name in GENERATION_FORMATS else ""
        if default and not self._model_chosen and self.model_combo.findData(default) >= 0:
            self.model_combo.setCurrentIndex(self.model_combo.findData(default))
        previous = self.editor.ad_format
        self.editor.set_format(self.ad_format)
        text = self.editor.toPlainText()
        if not text.strip() or text == format_ad({}, previous):
            self._replace_text(format_ad({}, self.ad_format))  # an empty skeleton of the new format

    def current_ad(self) -> dict[str, list[str]]:
        return parse_ad(self.editor.toPlainText(), self.ad_format)

    def set_ad(self, ad: dict[str, list[str]]) -> None:
        """Show ``ad`` (field -> lines) in the editor as one undoable step."""
        self._replace_text(format_ad(ad, self.ad_format))

    def _replace_text(self, text: str, join_previous: bool = False) -> None:
        if text == self.editor.toPlainText():
            return
        line = self.editor.textCursor().blockNumber()
        cursor = QTextCursor(self.editor.document())
        if join_previous:
            cursor.joinPreviousEditBlock()
        else:
            cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        self._put_cursor_on_line(line)

    def _put_cursor_on_line(self, number: int) -> None:
        block = self.editor.document().findBlockByNumber(min(number, self.editor.document().blockCount() - 1))
        cursor = QTextCursor(block)
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock)
        self.editor.setTextCursor(cursor)

    def _update_summary(self, _lines: list) -> None:
        found = problems(self.current_ad(), self.ad_format)
        over = len(self.editor.over_limit_lines())
        if not found:
            self.summary.setText("Ready to export")
            self.summary.setStyleSheet("color: #69db7c;")
        else:
            head = f"{over} line{'s' if over != 1 else ''} over the limit · " if over else ""
            self.summary.setText(head + found[0] + (f" (+{len(found) - 1} more)" if len(found) > 1 else ""))
            self.summary.setToolTip("\n".join(found))
            self.summary.setStyleSheet("color: #ff8a80;" if over else "color: #f0b65a;")

    # --- variants ---------------------------------------------------------------------------------------
    def step_result(self, delta: int) -> None:
        if len(self._variants) < 2:
            return
        self._variants[self._shown] = self.current_ad()
        self._shown = (self._shown + delta) % len(self._variants)
        self.set_ad(self._variants[self._shown])
        self._update_variant_nav()

    def _update_variant_nav(self) -> None:
        several = len(self._variants) > 1
        for widget in (self.previous_button, self.next_button, self.variant_label):
            widget.setVisible(several)
        self.variant_label.setText(f"Variant {self._shown + 1}/{len(self._variants)}")

    # --- angles, locks and pins -----------------------------------------------------------------------
    def _shown_marks(self, store: list) -> Any:
        return store[self._shown] if self._shown < len(store) else {}

    def _line_marks(self, info: LineInfo) -> str:
        """Beside the role: "L" locked, "P1".."P3" pinned, "*" a line taken from the brief (no candidate passed)."""
        if info.field is None:
            return ""
        marks = []
        if info.index in self._locks.get(info.field, set()):
            marks.append("L")
        pin = self._shown_marks(self._pins).get(info.field, {}).get(info.index)
        if pin:
            marks.append(f"P{pin}")
        if info.index in self._shown_marks(self._fallback).get(info.field, set()):
            marks.append("*")
        return " ".join(marks)

    def _line_note(self, info: LineInfo) -> str:
        if info.field is None:
            return ""
        notes = []
        angle = self._shown_marks(self._angles).get(info.field, {}).get(info.index)
        if angle:
            notes.append(f"Angle: {angle}")
        if info.index in self._shown_marks(self._fallback).get(info.field, set()):
            notes.append("Taken from your brief: no written line for this slot passed the checks")
        if info.index in self._locks.get(info.field, set()):
            notes.append("Locked: kept when you generate again")
        pin = self._shown_marks(self._pins).get(info.field, {}).get(info.index)
        if pin:
            notes.append(f"Pinned to position {pin}")
        return "\n".join(notes)

    def _current_slot(self) -> LineInfo | None:
        info = self.editor.line_info(self.editor.textCursor().blockNumber())
        if info is None or info.kind != "item" or info.field is None:
            self.status_message.emit("Put the cursor on a line of copy first")
            return None
        return info

    def toggle_lock(self) -> None:
        """Lock or unlock the line under the cursor: a locked line is kept as it is when you generate again."""
        info = self._current_slot()
        if info is None:
            return
        locked = self._locks.setdefault(info.field, set())
        locked.symmetric_difference_update({info.index})
        state = "locked: it stays when you generate again" if info.index in locked else "unlocked"
        self.status_message.emit(f"{info.role} {state}")
        self.editor.update_gutter()

    def cycle_pin(self) -> None:
        """Pin the line under the cursor to the next position (headlines 1-3, descriptions 1-2), then unpin."""
        info = self._current_slot()
        if info is None:
            return
        positions = PIN_POSITIONS.get(self.ad_format.name, {}).get(info.field)
        if not positions:
            self.status_message.emit(f"{self.ad_format.title} lines of this kind cannot be pinned")
            return
        while len(self._pins) <= self._shown:
            self._pins.append({})
        pins = self._pins[self._shown].setdefault(info.field, {})
        position = pins.get(info.index, 0) + 1
        if position > positions:
            pins.pop(info.index, None)
            self.status_message.emit(f"{info.role} unpinned")
        else:
            pins[info.index] = position
            self.status_message.emit(f"{info.role} pinned to position {position}")
        self.editor.update_gutter()

    def _locked_params(self) -> dict[str, dict[str, str]]:
        ad = self.current_ad()
        return {name: {str(i): ad[name][i] for i in sorted(slots) if i < len(ad.get(name, []))}
                for name, slots in self._locks.items() if slots}

    # --- generation -----------------------------------------------------------------------------------
    def request_models(self) -> None:
        run_job(self.engine, JobSpec("models.list", {"modality": "copy"}), on_done=self._set_models,
                on_fail=lambda _message: self._set_models([]))

    def refresh_models(self) -> None:
        self.request_models()

    def _set_models(self, models: list[dict[str, Any]]) -> None:
        chosen = self.model_combo.currentData() if self._model_chosen else None
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for entry in models:
            self.model_combo.addItem(entry["name"], entry["name"])
        self.model_combo.blockSignals(False)
        pending = self.take_pending_model()
        self._model_chosen = self._model_chosen or bool(pending)  # "Use in workspace" is a choice too
        wanted = pending or chosen or copy_defaults(self.ad_format.name).model
        if self.model_combo.findData(wanted) >= 0:
            self.model_combo.setCurrentIndex(self.model_combo.findData(wanted))
        has_model = self.model_combo.count() > 0
        self.model_combo.setVisible(has_model)
        self.model_warning.setVisible(not has_model)
        self.generate_button.setEnabled(has_model and not self._streaming)
        self.rewrite_button.setEnabled(has_model)

    def shared_text(self) -> str:
        """Edit > Send text to …: the selected words, else every line of the ad on screen, one a line."""
        selected = self.editor.textCursor().selectedText().replace("\u2029", "\n")
        return selected or "\n".join(line for lines in self.current_ad().values() for line in lines)

    def show_preparation(self, text: str, done: bool = False) -> None:
        """Say under the model list that the language model is being prepared (first start), and that copy can be
        written meanwhile, a little slower."""
        if not done:
            text += ". You can write copy now; it comes a little slower until this is done."
        self.preparation_note.setText(text)
        self.preparation_note.show()
        if done:
            QTimer.singleShot(20_000, self.preparation_note.hide)

    def _job_params(self) -> dict[str, Any] | None:
        """The brief and settings, validated; None (with a message) when they cannot be used."""
        if self.ad_format.name not in GENERATION_FORMATS:
            self.status_message.emit("Choose an ad format to generate (free text has no fields to write)")
            return None
        try:
            brief = brief_from_dict(self.brief_form.data()).to_dict()
        except StudioError as exc:
            self.status_message.emit(str(exc))
            return None
        return {"brief": brief, "format": self.ad_format.name, "framework": self.framework_combo.currentData(),
                "variants": self.variants_spin.value(), "temperature": round(self.temperature_spin.value(), 3),
                "top_p": round(self.top_p_spin.value(), 3)}

    def generate(self) -> None:
        if self.model_combo.count() == 0:
            self.status_message.emit(NO_MODEL)
            return
        params = self._job_params()
        if params is None:
            return
        if self._variants:
            self._variants[self._shown] = self.current_ad()
        locked = self._locked_params()
        if locked:
            params["locked"] = locked
        spec = JobSpec("copy.generate", params, self.seed_spin.next_seed(), self.model_combo.currentData())
        call = run_job(self.engine, spec, on_partial=self._stream,
                       on_done=lambda payload: self._finish_generation(EventType.FINISHED, payload),
                       on_fail=lambda _message: self._finish_generation(EventType.FAILED),
                       on_cancel=lambda: self._finish_generation(EventType.CANCELLED))
        self.active_job = call.job_id
        self._streaming = False
        self.generate_button.setEnabled(False)
        self.format_combo.setEnabled(False)  # streamed lines are laid out in the job's format
        self.status_message.emit(f"Generating {params['variants']} variant(s) with {spec.model} (seed {spec.seed})…")

    def run_example(self) -> None:
        self.load_brief(resources_dir() / "briefs" / "examples" / "coffee-subscription.json")
        self.generate()

    def rewrite_current_line(self) -> None:
        """Regenerate the line under the cursor (``copy.line``) given the other lines of its field."""
        info = self.editor.line_info(self.editor.textCursor().blockNumber())
        if info is None or info.kind != "item" or info.field is None:
            self.status_message.emit("Put the cursor on a line of copy to rewrite it")
            return
        if self.model_combo.count() == 0:
            self.status_message.emit(NO_MODEL)
            return
        params = self._job_params()
        if params is None:
            return
        params.update(field=info.field, index=info.index, existing=self.current_ad()[info.field])
        for key in ("variants", "temperature", "top_p"):
            params.pop(key)
        spec = JobSpec("copy.line", params, self.seed_spin.next_seed(), self.model_combo.currentData())
        lines = self.current_ad()[info.field]
        before = lines[info.index] if info.index < len(lines) else ""
        self._line_job = (spec.job_id, info.field, info.index, before)
        self._line_streaming = False
        call = run_job(self.engine, spec, on_partial=lambda payload: self._set_line(str(payload["text"])),
                       on_done=self._finish_line, on_fail=lambda _message: self._finish_line(None),
                       on_cancel=lambda: self._finish_line(None))  # partials: the new line as it is written
        self.active_job = call.job_id

    def _stream(self, payload: dict[str, Any]) -> None:
        variant, name, index = int(payload["variant"]), str(payload["field"]), int(payload["index"])
        if not self._streaming:  # first token of this job: start a fresh result set and one undo step
            self._variants = []
            self._shown = 0
            self._angles, self._fallback = [], []
        while len(self._variants) <= variant:
            self._variants.append({spec.name: [] for spec in self.ad_format.fields})
        lines = self._variants[variant].setdefault(name, [])
        while len(lines) <= index:
            lines.append("")
        lines[index] = str(payload["text"])
        (self._unfinished.discard if payload.get("done", True) else self._unfinished.add)((variant, name, index))
        if payload.get("done") and "angle" in payload:
            self._note_angle(variant, name, index, payload)
        if variant == self._shown:
            self._replace_text(format_ad(self._variants[variant], self.ad_format), join_previous=self._streaming)
            self._streaming = True
        self._update_variant_nav()

    def _finish_generation(self, state: EventType, payload: Any = None) -> None:
        """The generation ended (``state`` FINISHED with its ``payload``, FAILED or CANCELLED)."""
        self.active_job = None
        if state is EventType.FINISHED:
            ads = [{str(k): [str(s) for s in v] for k, v in ad.items()} for ad in payload["ads"]]
            self._recipe = dict(payload.get("recipe", {}))
            self._angles = [{name: dict(enumerate(lines)) for name, lines in ad.items()}
                            for ad in payload.get("angles", [])]
            self._fallback = [{name: set(slots) for name, slots in ad.items()}
                              for ad in payload.get("fallback", [])]
            if ads:
                self._variants = ads
                self._shown = min(self._shown, len(ads) - 1)
                self._replace_text(format_ad(ads[self._shown], self.ad_format), join_previous=self._streaming)
            from_brief = sum(len(slots) for ad in self._fallback for slots in ad.values())
            note = (f"; {from_brief} line(s) marked * are taken from your brief (no written line passed the checks)"
                    if from_brief else "")
            self.status_message.emit(f"{len(ads)} variant(s) generated; Left/Right to compare{note}")
        elif self._unfinished:
            self._drop_unfinished_lines(state is EventType.CANCELLED)
        self._unfinished.clear()
        self._streaming = False
        self.generate_button.setEnabled(self.model_combo.count() > 0)
        self.format_combo.setEnabled(True)
        self._update_variant_nav()

    def _set_line(self, text: str) -> None:
        """Put ``text`` on the line being rewritten; the whole rewrite is one undo step."""
        _, name, index, _ = self._line_job
        ad = self.current_ad()
        if index < len(ad.get(name, [])) and ad[name][index] != text:
            ad[name][index] = text
            self._replace_text(format_ad(ad, self.ad_format), join_previous=self._line_streaming)
            self._line_streaming = True

    def _note_angle(self, variant: int, name: str, index: int, payload: dict[str, Any]) -> None:
        """Remember a finished line's angle and whether it was taken from the brief (the marks in the gutter)."""
        while len(self._angles) <= variant:
            self._angles.append({})
            self._fallback.append({})
        self._angles[variant].setdefault(name, {})[index] = str(payload.get("angle", ""))
        fallback = self._fallback[variant].setdefault(name, set())
        (fallback.add if payload.get("fallback") else fallback.discard)(index)

    def _drop_unfinished_lines(self, cancelled: bool) -> None:
        """A stopped generation leaves half-written lines ("EDUCAT"): they go, and the header then says what
        the ad still lacks."""
        self._variants[self._shown] = self.current_ad()
        for variant, name, index in sorted(self._unfinished, reverse=True):
            lines = self._variants[variant].get(name, []) if variant < len(self._variants) else []
            if index < len(lines):
                del lines[index]
        self._replace_text(format_ad(self._variants[self._shown], self.ad_format), join_previous=self._streaming)
        count = len(self._unfinished)
        self.status_message.emit(f"Generation {'cancelled' if cancelled else 'failed'}: {count} unfinished "
                                 f"line{'s' if count != 1 else ''} removed; the ads are incomplete")

    def _finish_line(self, payload: dict[str, Any] | None) -> None:
        """The rewrite ended: its line (``payload``), or None when it failed or was cancelled (the old line back)."""
        self._set_line(str(payload["text"]) if payload is not None else self._line_job[3])
        if payload is not None:
            _, name, index, _ = self._line_job
            self._note_angle(self._shown, name, index, payload)
        self._line_job = None
        self._line_streaming = False
        self.active_job = None

    # --- files ---------------------------------------------------------------------------------------
    def open_path(self, path: Path) -> None:
        """.txt/.md: the text as is; .csv/.json: an ad export (all its ads become variants)."""
        path = Path(path)
        try:
            if path.suffix.lower() in (".csv", ".json"):
                adset = import_ads(path)
                self.set_format(adset.format)
                self._variants = adset.ads or [{}]
                self._recipe = adset.recipe
                self._shown = 0
                text = format_ad(self._variants[0], self.ad_format)
            else:
                text = read_text(path).replace("\r\n", "\n").replace("\r", "\n")
                self._variants, self._recipe = [], {}
        except StudioError as exc:
            self.status_message.emit(str(exc))
            return
        self.editor.setPlainText(text)
        self.editor.document().setModified(False)
        self.undo_stack.clear()
        self.path = path if path.suffix.lower() in (".txt", ".md") else None
        self._update_variant_nav()
        self.status_message.emit(f"Opened {path.name}")

    def open_dialog(self) -> None:
        path = dialogs.ask_open_path(self, "copy", "Open copy", self._folder(), OPEN_FILTER)
        if path:
            self.open_path(path)

    def save_to(self, path: Path) -> None:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_text(self.editor.toPlainText() + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            self.status_message.emit(f"Could not save {path.name}: {exc.strerror or exc}")
            return
        self.path = path
        self.editor.document().setModified(False)
        self.status_message.emit(f"Saved {path}")

    def save(self) -> None:
        if self.path is not None:
            self.save_to(self.path)
            return
        path = dialogs.ask_save_path(self, "copy", "Save copy", self._folder(), "copy.txt", TEXT_FILTER)
        if path:
            self.save_to(path)

    def export_to(self, path: Path) -> None:
        """All variants (the shown one as edited) as CSV, Markdown or JSON; refused while a line is over the limit,
        and only after a warning while an ad is incomplete (too few lines)."""
        if self.ad_format.name not in GENERATION_FORMATS:
            self.status_message.emit("Free text cannot be exported as ads: choose an ad format")
            return
        ads = list(self._variants) or [self.current_ad()]
        ads[self._shown if self._variants else 0] = self.current_ad()
        incomplete = [f"Ad {n}: {problem}" for n, ad in enumerate(ads, 1) for problem in problems(ad, self.ad_format)
                      if "of at least" in problem]
        if incomplete and not dialogs.confirm(
                self, "Export incomplete ads?",
                "The ad platform will refuse these ads until they are complete:\n\n" + "\n".join(incomplete[:8])
                + (f"\n… and {len(incomplete) - 8} more" if len(incomplete) > 8 else ""), "Export anyway"):
            self.status_message.emit("Export cancelled: " + incomplete[0])
            return
        try:
            pins = [self._pins[n] if n < len(self._pins) else {} for n in range(len(ads))]
            written = export_ads(Path(path), AdSet(self.ad_format.name, ads, self._recipe,
                                                   pins if any(pins) else []))
        except (StudioError, OSError) as exc:
            self.status_message.emit(str(exc))
            return
        self.status_message.emit(f"Exported {len(ads)} ad(s) to {written}")

    def export(self) -> None:
        path = dialogs.ask_save_path(self, "copy-export", "Export ads", self._folder(), "ads.csv", EXPORT_FILTER)
        if path:
            self.export_to(path)

    def _folder(self) -> Path:
        return self.path.parent if self.path else self.settings.resolved_output_dir

    # --- unsaved work -------------------------------------------------------------------------------
    def unsaved_work(self) -> str:
        text = self.editor.toPlainText()
        if not self.editor.document().isModified() or not text.strip() or text == format_ad({}, self.ad_format):
            return ""
        return f"changes to {self.path.name}" if self.path else "the ad copy in the editor"

    def close_document(self) -> None:
        self.editor.setPlainText(format_ad({}, self.ad_format))
        self.editor.document().clearUndoRedoStacks()
        self.editor.document().setModified(False)
        self.undo_stack.clear()
        self.path, self._variants, self._recipe, self._shown = None, [], {}, 0
        self._update_variant_nav()
        self.status_message.emit("New, empty ad.")

    def revision(self) -> object:
        return self.editor.document().revision()

    def autosave(self, folder: Path) -> None:
        variants = list(self._variants)
        if variants:
            variants[self._shown] = self.current_ad()
        state = {"format": self.ad_format.name, "path": str(self.path or ""), "variants": variants,
                 "shown": self._shown, "recipe": self._recipe, "text": self.editor.toPlainText()}
        write_atomic(folder / "copy.json", json.dumps(state, ensure_ascii=False), "the unsaved ad copy")

    def restore_autosave(self, folder: Path) -> bool:
        try:
            state = json.loads((folder / "copy.json").read_text(encoding="utf-8"))
            self.set_format(str(state["format"]))
            text, variants, shown = str(state["text"]), list(state["variants"]), int(state["shown"])
        except (OSError, ValueError, KeyError, TypeError, StudioError):
            return False
        self._replace_text(text)  # undoable and unsaved, as it was
        self._variants, self._shown = variants, min(shown, max(0, len(variants) - 1))
        self._recipe = dict(state.get("recipe") or {})
        self.path = Path(state["path"]) if state.get("path") else None
        self._update_variant_nav()
        self.status_message.emit("Restored the ad copy you had not saved when Studio closed.")
        return True

    # --- brief files ----------------------------------------------------------------------------------
    def load_brief(self, path: Path) -> None:
        try:
            brief = load_brief(Path(path))
        except StudioError as exc:
            self.status_message.emit(str(exc))
            return
        self.brief_form.set_data(brief.to_dict())
        self.status_message.emit(f"Loaded brief {Path(path).name}")

    def save_brief(self, path: Path) -> None:
        try:
            save_brief(Path(path), brief_from_dict(self.brief_form.data()))
        except (StudioError, OSError) as exc:
            self.status_message.emit(str(exc))
            return
        self.status_message.emit(f"Saved brief {Path(path).name}")

    def _load_brief_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Load brief", str(self._folder()), "Brief (*.json)")
        if name:
            self.load_brief(Path(name))

    def _save_brief_dialog(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save brief", str(self._folder() / "brief.json"),
                                              "Brief (*.json)")
        if name:
            self.save_brief(Path(name))
