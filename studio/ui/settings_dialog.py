"""Edit > Settings: device, runtime, output folder, metadata, CPU threads; saved with ``save_settings``. Below them,
This machine: the report of ``studio doctor`` (what each workspace runs on and why) and a button that measures
each workspace's speed."""

from __future__ import annotations

import os

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.jobs import JobSpec
from studio.core.machine_report import MachineReport, report_lines
from studio.core.settings import DEVICES, RUNTIMES, Settings, save_settings
from studio.engine.client import Engine
from studio.ui.jobs import run_job

DEVICE_LABELS = {"auto": "Automatic (GPU when present)", "cuda": "NVIDIA GPU (CUDA)", "cpu": "CPU"}
RUNTIME_LABELS = {"auto": "Automatic", "torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
RESTART_FIELDS = ("device", "runtime", "cpu_threads")


class SettingsDialog(QDialog):
    """Edits a copy; :meth:`accept` writes it into ``settings`` in place and saves it."""

    def __init__(self, settings: Settings, parent: QWidget | None = None, engine: Engine | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(480)
        self._settings = settings
        self.restart_needed = False
        self.device = QComboBox()
        for value in DEVICES:
            self.device.addItem(DEVICE_LABELS[value], value)
        self.runtime = QComboBox()
        for value in RUNTIMES:
            self.runtime.addItem(RUNTIME_LABELS[value], value)
        self.output_dir = QLineEdit()
        self.output_dir.setPlaceholderText(str(settings.resolved_output_dir))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.output_dir, 1)
        folder_row.addWidget(browse)
        self.write_metadata = QCheckBox("Write the recipe (model, seed, settings) into saved files")
        self.cpu_threads = QSpinBox()
        self.cpu_threads.setRange(0, max(1, os.cpu_count() or 1))
        self.cpu_threads.setSpecialValueText("Automatic (all cores but one)")
        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("Runtime", self.runtime)
        form.addRow("Output folder", folder_row)
        form.addRow("Metadata", self.write_metadata)
        form.addRow("CPU threads", self.cpu_threads)
        note = QLabel("Device, runtime and thread changes take effect the next time Studio starts.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.error = QLabel()  # why the settings could not be saved (a full disk, a read-only folder)
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error)
        if engine is not None:
            layout.addWidget(self._machine_box(engine))
        layout.addWidget(buttons)
        self._load(settings)

    def _machine_box(self, engine: Engine) -> QGroupBox:
        self._engine = engine
        self.setMinimumWidth(640)
        box = QGroupBox("This machine")
        self.machine = QPlainTextEdit()
        self.machine.setReadOnly(True)
        self.machine.setMinimumHeight(220)
        self.measure = QPushButton("Measure speed")
        self.measure.setToolTip("Time each workspace's usual job on its default model (about a minute on a laptop "
                                "CPU); the same as `studio doctor --measure`")
        self.measure.clicked.connect(self._measure)
        self.measure_note = QLabel("")
        self.measure_note.setObjectName("hint")
        row = QHBoxLayout()
        row.addWidget(self.measure)
        row.addWidget(self.measure_note, 1)
        inner = QVBoxLayout(box)
        inner.addWidget(self.machine)
        inner.addLayout(row)
        engine.machine_report.connect(self.show_report)
        if engine.report is not None:
            self.show_report(engine.report)
        else:
            self.machine.setPlainText("Checking this machine…")
        return box

    def show_report(self, report: MachineReport) -> None:
        self.machine.setPlainText("\n".join(report_lines(report)))

    def _measure(self) -> None:
        self.measure.setEnabled(False)
        self.measure_note.setText("Measuring each workspace… (the status bar shows progress)")

        def done(report: MachineReport) -> None:
            self._engine.set_report(report)
            self._measured("")

        run_job(self._engine, JobSpec("system.speed"), on_done=done, on_fail=self._measured,
                on_cancel=lambda: self._measured("cancelled"))

    def _measured(self, problem: str) -> None:
        self.measure.setEnabled(True)
        self.measure_note.setText(f"Not measured: {problem}" if problem else "Measured.")

    def _load(self, settings: Settings) -> None:
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        self.runtime.setCurrentIndex(max(0, self.runtime.findData(settings.runtime)))
        self.output_dir.setText(settings.output_dir)
        self.write_metadata.setChecked(settings.write_metadata)
        self.cpu_threads.setValue(settings.cpu_threads)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_dir.text()
                                                  or str(self._settings.resolved_output_dir))
        if folder:
            self.output_dir.setText(folder)

    def needs_restart(self) -> bool:
        """Whether the edited values differ from the running ones in a field the engine reads at start."""
        edited = self.edited()
        return any(getattr(edited, name) != getattr(self._settings, name) for name in RESTART_FIELDS)

    def edited(self) -> Settings:
        values = dict(vars(self._settings))
        values.update(device=self.device.currentData(), runtime=self.runtime.currentData(),
                      output_dir=self.output_dir.text().strip(), write_metadata=self.write_metadata.isChecked(),
                      cpu_threads=self.cpu_threads.value())
        edited = Settings(**values)
        edited.validate()
        return edited

    def accept(self) -> None:
        """Save, then apply; a failed save says why, keeps the dialog open and changes nothing."""
        edited = self.edited()
        try:
            save_settings(edited)
        except StudioError as exc:
            self.error.setText(f"The settings were not saved: {exc}")
            self.error.show()
            return
        self.restart_needed = self.needs_restart()
        for name, value in vars(edited).items():
            setattr(self._settings, name, value)
        super().accept()
