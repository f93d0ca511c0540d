"""The Train workspace: from a folder of the user's own assets to a registered model, without a terminal.

Training runs in a child process (studio.engine.training_process) running the same `studio train` command as the
CLI; this widget only builds the command, follows its JSON events and shows them.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.jobs import JobSpec
from studio.core.modalities import get as get_modality
from studio.core.modalities import trainable
from studio.core.modality import TrainChoice, Training
from studio.core.paths import resources_dir
from studio.core.plain_words import metric_name, quality_figures, technical_figures, without_cli_flags
from studio.core.settings import Settings
from studio.core.training_events import (
    TrainingError,
    TrainingEvent,
    TrainingFinished,
    TrainingInfo,
    TrainingPaused,
    TrainingProgress,
)
from studio.engine.client import Engine
from studio.engine.training_process import TrainingProcess
from studio.ui.jobs import run_job
from studio.ui.widgets.loss_plot import LossPlot
from studio.ui.workspaces.base import Workspace

PRESETS = ("quick", "balanced", "best")
NEW_MODEL = ""  # the base choice "nothing: train a new model"


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``: the size of a wait, not a clock."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA --:--"
    seconds = int(seconds)
    return f"ETA {seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainWorkspace(Workspace):
    title = "Train"
    welcome = ("<b>Train</b>: teach a model your own sprites, brand voice or tunes. Choose what and where your data "
               "is, inspect it (you see what is rejected and why), pick a preset with its time estimate, start.",
               "Try it: inspect example brand-voice lines")
    use_model = Signal(str, str)  # modality, model name: switch the generation workspace to it
    run_ended = Signal(str, str)  # state, message
    activity = Signal(str)  # what the run is doing, for the status bar ("" when no run is going on)

    def __init__(self, engine: Engine, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(engine, settings, parent)
        self.process = TrainingProcess(self)
        self.process.event.connect(self._on_event)
        self.process.log_line.connect(lambda line: self._log(without_cli_flags(line)))
        self.process.ended.connect(self._on_ended)
        self.last_event: TrainingEvent | None = None
        self.finished_model: str = ""
        self.run_modality: str = ""  # the modality of the run started last (the combo may change since)
        self.run_state = "idle"  # idle | running | paused | stopped (cancelled or failed) | finished
        self._build()
        self._on_modality()
        self._set_state("idle")

    # --- layout --------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.modality = QComboBox()
        for modality in trainable():
            self.modality.addItem(modality.label, modality.name)
        self.modality.currentIndexChanged.connect(self._on_modality)
        self.family = QComboBox()
        self.family.currentIndexChanged.connect(lambda _: self.refresh_base_models())
        self.base = QComboBox()
        self.base.currentIndexChanged.connect(lambda _: self.estimate())
        self.data_path = QLineEdit()
        self.data_path.setPlaceholderText(self.training.data_hint)
        browse_folder = QPushButton("Folder…")
        browse_folder.clicked.connect(self._choose_folder)
        browse_file = QPushButton("File…")
        browse_file.clicked.connect(self._choose_file)
        self.grid = QSpinBox()
        self.grid.setRange(0, 512)
        self.grid.setSpecialValueText("not a sheet")
        self.grid.setSuffix(" px")
        self.inspect_button = QPushButton("Inspect data")
        self.inspect_button.clicked.connect(self.inspect)
        self.found = QLabel("No data inspected yet.")
        self.found.setWordWrap(True)
        self.rejected = QListWidget()
        self.rejected.setMaximumHeight(90)
        self.augment_button = QPushButton("Preview augmentations")
        self.augment_button.clicked.connect(self.preview_augmentations)
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.preset.currentTextChanged.connect(lambda _: self.estimate())
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.name = QLineEdit()
        self.name.setPlaceholderText(self.training.name_hint)
        self.name.textEdited.connect(self._on_name_edited)
        self.licence = QLineEdit()
        self.licence.setPlaceholderText("e.g. my own work, CC0, CC-BY-4.0")
        self.max_steps = QSpinBox()
        self.max_steps.setRange(0, 10_000_000)
        self.max_steps.setSpecialValueText("preset")

        data_row = QVBoxLayout()  # the field gets the whole width: its hint and a chosen path stay readable
        browse_row = QHBoxLayout()
        browse_row.addWidget(browse_folder)
        browse_row.addWidget(browse_file)
        browse_row.addStretch(1)
        data_row.addWidget(self.data_path)
        data_row.addLayout(browse_row)
        form = QFormLayout()
        form.addRow("What", self.modality)
        form.addRow("Model", self.family)
        form.addRow("Start from", self.base)
        form.addRow("Data", data_row)
        form.addRow("Sheet grid", self.grid)
        form.addRow(self.inspect_button)
        form.addRow(self.found)
        form.addRow("Rejected", self.rejected)
        form.addRow(self.augment_button)
        form.addRow("Preset", self.preset)
        form.addRow(self.estimate_label)
        form.addRow("Name", self.name)
        form.addRow("Data licence", self.licence)
        form.addRow("Max steps", self.max_steps)
        setup_box = QGroupBox("Set up")
        setup_box.setLayout(form)
        setup = QWidget()
        setup_column = QVBoxLayout(setup)
        setup_column.setContentsMargins(0, 0, 0, 0)
        setup_column.addWidget(setup_box)
        setup_column.addStretch(1)

        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button.clicked.connect(self.cancel)
        controls = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.resume_button, self.cancel_button):
            controls.addWidget(button)

        self.progress = QProgressBar()
        self.eta = QLabel(format_eta(None))
        self.plot = LossPlot()
        self.sample = QLabel("Samples appear here during training.")
        self.sample.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample.setWordWrap(True)  # the per-modality hints are long sentences
        self.sample.setMinimumSize(256, 256)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.export_button = QPushButton("Export ONNX")
        self.export_button.clicked.connect(self.export)
        self.use_button = QPushButton("Use in workspace")
        self.use_button.clicked.connect(self._use)
        finish = QHBoxLayout()
        finish.addWidget(self.result, 1)
        finish.addWidget(self.export_button)
        finish.addWidget(self.use_button)

        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.eta)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.plot)
        top.addWidget(self.sample)
        top.setSizes([500, 300])
        right = QVBoxLayout()
        right.addLayout(controls)
        right.addLayout(progress_row)
        right.addWidget(top, 3)
        right.addLayout(finish)
        right.addWidget(self.log_view, 1)
        right_widget = QWidget()
        right_widget.setLayout(right)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(setup)
        splitter.addWidget(right_widget)
        splitter.setSizes([360, 700])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    # --- state ---------------------------------------------------------------------------------------
    @property
    def modality_key(self) -> str:
        return str(self.modality.currentData() or trainable()[0].name)

    @property
    def training(self) -> Training:
        """How the chosen modality trains (what this form shows and which command it builds)."""
        training = get_modality(self.modality_key).training
        assert training is not None  # the combo lists trainable modalities only
        return training

    def _on_modality(self) -> None:
        training = self.training
        self.family.clear()
        for family in training.families:
            self.family.addItem(family.label, family.key)
        self.grid.setEnabled(training.sheet_grid)
        self.augment_button.setEnabled(training.preview is not None)
        self.base.setToolTip(training.base_tooltip)
        self.data_path.setPlaceholderText(training.data_hint)
        self.name.setPlaceholderText(training.name_hint)
        if self.sample.pixmap().isNull():
            self.sample.setText(training.sample_hint)
        self.refresh_base_models()

    def base_arch(self) -> tuple[str, str]:
        """(architecture of the models this run can start from, the one to list first)."""
        family = self.training.family(str(self.family.currentData()))
        return family.arch, self.training.first_base or family.arch

    def refresh_base_models(self) -> None:
        """Ask the engine which models this run can start from (adapters are not bases)."""
        if self.family.count() == 0:
            return
        wanted = self.base_arch()
        if self.base.property("arch") != wanted[0]:  # another kind of model: the old list must not be picked
            self.base.clear()
        run_job(self.engine, JobSpec("models.list", {"modality": self.modality_key}),
                on_done=lambda models: self._set_base_models(models, wanted), on_fail=self._say)

    def _set_base_models(self, models: list[dict[str, Any]], wanted: tuple[str, str]) -> None:
        if wanted != self.base_arch():
            return  # the user switched modality or family since this list was asked for
        arch, first = wanted
        chosen = self.base.currentData()
        names = sorted((m["name"] for m in models if m.get("arch") == arch and not m.get("base_model")),
                       key=lambda name: (name != first, name))
        self.base.blockSignals(True)
        self.base.clear()
        self.base.setProperty("arch", arch)
        for name in names:
            self.base.addItem(name, name)
        if self.training.from_scratch:
            self.base.addItem("Nothing: train a new model", NEW_MODEL)
        if chosen is not None and self.base.findData(chosen) >= 0:
            self.base.setCurrentIndex(self.base.findData(chosen))
        self.base.blockSignals(False)
        if not names and not self.training.from_scratch:
            self._say(self.training.needs_base)
        if self.data_path.text().strip():
            self.estimate()

    def _set_state(self, state: str) -> None:
        """One place decides which buttons make sense: a paused run can be resumed or closed, not started again;
        a finished one has nothing to resume; a new name starts afresh (or resumes a run paused at an earlier
        session, when it has a checkpoint)."""
        self.run_state = state
        named = bool(self.name.text().strip())
        self.activity.emit({"running": f"Training {self.name.text().strip()}: starting",
                            "paused": f"Training {self.name.text().strip()}: paused"}.get(state, ""))
        self.start_button.setEnabled(state not in ("running", "paused"))
        self.pause_button.setEnabled(state == "running")
        self.resume_button.setEnabled(state in ("paused", "stopped") or (state == "idle" and named))
        self.cancel_button.setEnabled(state in ("running", "paused"))
        done = state == "finished" and bool(self.finished_model)
        self.export_button.setEnabled(done and self._run_training().exportable)
        self.use_button.setEnabled(done)

    def _run_training(self) -> Training:
        """How the run started last trains (the combo may have changed since)."""
        return get_modality(self.run_modality).training or self.training if self.run_modality else self.training

    def _on_name_edited(self) -> None:
        if self.run_state in ("idle", "finished", "stopped"):
            self._set_state("idle")

    def _say(self, text: str) -> None:
        self.status_message.emit(text)
        self._log(text)

    def _log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training data folder")
        if folder:
            self.data_path.setText(folder)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training data file")
        if path:
            self.data_path.setText(path)

    # --- data ---------------------------------------------------------------------------------------
    def _data_params(self) -> dict[str, Any]:
        return {"modality": self.modality_key, "path": self.data_path.text().strip(), "grid": self.grid.value()}

    def inspect(self) -> None:
        if not self.data_path.text().strip():
            self._say("Choose a data folder or file first.")
            return
        self.found.setText("Inspecting…")
        self.rejected.clear()  # the previous inspection's rejections are not this one's
        run_job(self.engine, JobSpec("data.inspect", self._data_params()), on_done=self._on_inspected,
                on_fail=self._on_inspect_failed)

    def _on_inspected(self, report: dict[str, Any]) -> None:
        counts = ", ".join(f"{k}: {v}" for k, v in report.get("counts", {}).items())
        self.found.setText(f"Found {report['usable']} usable item(s) ({counts or 'no categories'}); "
                           f"{len(report.get('rejected', []))} rejected.")
        self.rejected.clear()
        for item in report.get("rejected", []):
            self.rejected.addItem(f"{item['file']}: {item['reason']}")
        self.estimate()

    def _on_inspect_failed(self, message: str) -> None:
        self.found.setText(message)
        self._say(message)

    def run_example(self) -> None:
        self.modality.setCurrentIndex(self.modality.findData("copy"))
        self.data_path.setText(str(resources_dir() / "briefs" / "examples" / "brand-voice-brewly.txt"))
        self.name.setText("brewly-voice")
        self.inspect()

    def preview_augmentations(self) -> None:
        run_job(self.engine, JobSpec("data.augment_preview", self._data_params(), seed=0),
                on_done=lambda r: self._show_sample(r["path"]), on_fail=self._say)

    def estimate(self) -> None:
        """Measure a few real training steps of the preset (in the engine) and show time and memory."""
        params = {**self._data_params(), "family": self.family.currentData(), "preset": self.preset.currentText(),
                  "max_steps": self.max_steps.value()}
        if self.base.currentData() is not None:  # else the task's default: what the CLI starts from
            params["base"] = self.base.currentData()
        self.estimate_label.setText("Measuring a few training steps…")
        run_job(self.engine, JobSpec("train.estimate", params), on_done=self._on_estimate,
                on_fail=lambda m: self.estimate_label.setText(f"No estimate: {m}"))

    def _on_estimate(self, estimate: dict[str, Any]) -> None:
        detail = f"\n{estimate['detail']}." if estimate.get("detail") else ""
        self.estimate_label.setText(
            f"About {format_duration(estimate['seconds'])} on {estimate['device']} ({estimate['steps']} steps of "
            f"{estimate['step_ms']:.0f} ms), ~{estimate['memory_mb']:.0f} MB memory.{detail}"
        )

    # --- running -------------------------------------------------------------------------------------
    def train_args(self, resume: bool = False) -> list[str]:
        """The ``studio train`` arguments of the form, as the chosen modality builds them."""
        choice = TrainChoice(family=str(self.family.currentData()), data=self.data_path.text().strip(),
                             preset=self.preset.currentText(), name=self.name.text().strip(),
                             base=self.base.currentData(), grid=self.grid.value(),
                             licence=self.licence.text().strip(), max_steps=self.max_steps.value(),
                             threads=self.settings.model_threads, resume=resume)
        return self.training.command(choice)

    def start(self, resume: bool = False) -> None:
        if not self.name.text().strip():
            self._say("Give the model a name first.")
            return
        if not self.data_path.text().strip():
            self._say("Choose the training data first.")
            return
        if not self.training.from_scratch and not self.base.currentData():
            self._say(self.training.needs_base)
            return
        if not resume:
            self.plot.clear_curves()
        self.finished_model = ""
        self.run_modality = self.modality_key
        self.result.setText("")
        self.process.start(self.train_args(resume))
        self._set_state("running")
        self._say(("Resuming" if resume else "Starting") + f" training of {self.name.text().strip()}…")

    def resume(self) -> None:
        self.start(resume=True)

    def pause(self) -> None:
        self.process.pause()
        self._say("Pausing at the next step (a checkpoint is saved)…")

    def cancel(self) -> None:
        if self.run_state == "paused":  # nothing runs: close the paused run, its checkpoint stays on disk
            self._set_state("idle")
            self._say(f"Closed the paused run {self.name.text().strip()}; its checkpoint is kept, so Resume with "
                      "the same name still continues it.")
            return
        self.process.cancel()

    def _on_event(self, event: TrainingEvent) -> None:
        self.last_event = event
        if isinstance(event, TrainingProgress):
            step, total = event.step, max(1, event.total)
            self.progress.setMaximum(total)
            self.progress.setValue(step)
            self.activity.emit(f"Training {self.name.text().strip()}: step {step:,} of {total:,}")
            self.eta.setText(format_eta(event.eta_s))
            if event.loss:
                self.plot.add_point(step, {metric_name(k): v for k, v in event.loss.items()
                                           if k not in ("lr", "progress")})
            if event.sample_path:
                self._show_sample(event.sample_path)
        elif isinstance(event, TrainingFinished):
            self.finished_model = event.model or self.name.text().strip()
            metrics = dict(event.metrics)
            quality = ", ".join(text for text, _ in quality_figures(metrics))
            card = event.card
            evaluation = event.evaluation
            judged = (f"\nAgainst your sprites: difference {evaluation['fid']:.2f} (lower is better), "
                      f"{evaluation['near_copy_fraction']:.1%} near copies of them.") if evaluation else ""
            self.result.setText(f"Model {self.finished_model} is ready. {quality}{judged}"
                                + (f"\nCard: {card}" if card else ""))
            self.result.setToolTip("\n".join(filter(None, [
                technical_figures(metrics), f"FID {evaluation['fid']:.3f} (sprite-encoder features), near-copy "
                f"fraction {evaluation['near_copy_fraction']:.3f}" if evaluation else ""])))
        elif isinstance(event, TrainingError):
            self._say(without_cli_flags(event.message or "training failed"))
        elif isinstance(event, TrainingInfo | TrainingPaused):
            self._log(without_cli_flags(event.message))

    def _show_sample(self, path: str) -> None:
        pixmap = QPixmap(path)
        if not pixmap.isNull():
            size = min(self.sample.width(), self.sample.height())
            self.sample.setPixmap(pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                                Qt.TransformationMode.FastTransformation))

    def _on_ended(self, state: str, message: str) -> None:
        self._set_state({"paused": "paused", "finished": "finished"}.get(state, "stopped"))
        message = without_cli_flags(message)
        self._say(message)
        self.run_ended.emit(state, message)
        if state == "finished" and self.finished_model:
            offer = "export it to ONNX or use it now" if self._run_training().exportable else "use it now"
            self._say(f"{self.finished_model} is ready: {offer}.")

    def export(self) -> None:
        if self.finished_model:
            run_job(self.engine, JobSpec("models.export_onnx", {"name": self.finished_model}),
                    on_done=lambda r: self._say(f"ONNX export written to {r['folder']}"), on_fail=self._say)

    def _use(self) -> None:
        if self.finished_model:
            self.use_model.emit(self.run_modality, self.finished_model)

    def shutdown(self) -> None:
        """Called by the main window on close: pause a running training so it can be resumed later."""
        if self.process.running:
            self.process.pause()
            if not self.process.wait(10_000):
                self.process.cancel()
                self.process.wait(2_000)
