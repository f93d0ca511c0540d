"""The Voice workspace: a script (typed, opened, or sent from the copy editor with Edit > Send text to Voice) spoken
by an offline voice, with speed, pitch and pauses; the waveform with where each line is heard; playback and export
(WAV/FLAC/OGG with the recipe); and the finished ad spot: the voice-over over a music bed that ducks under it, 15 or
30 s, at the online or broadcast loudness, exported as audio, a project file (``.spot``, which reopens here) and the
copy as text.

Every voice shows its licence; a voice whose commercial use is uncertain says so where it is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.formats.audio import read_audio, write_audio
from studio.core.jobs import JobSpec
from studio.core.music_request import MusicRequest
from studio.core.music_styles import find_style, list_styles
from studio.core.safe_write import write_atomic
from studio.core.settings import Settings
from studio.core.spot import LOUDNESS_PRESETS, SPOT_LENGTHS, SpotRequest, SpotResult, export_spot, read_project
from studio.core.voice import VOICES_MISSING, Speech, VoiceRequest
from studio.engine.client import Engine
from studio.ui import dialogs
from studio.ui.jobs import run_job
from studio.ui.widgets.line_timeline import LineTimeline
from studio.ui.widgets.player import AudioPlayer
from studio.ui.widgets.seed_box import SeedBox
from studio.ui.widgets.waveform import WaveformView, format_time
from studio.ui.workspaces.base import SidePanel, Workspace

AUDIO_FILTER = "WAV (*.wav);;FLAC (*.flac);;Ogg Vorbis (*.ogg)"
OPEN_FILTER = "Spot project or script (*.spot *.txt);;All files (*)"
CLIP_FILTER = "Audio (*.wav *.flac *.ogg)"
EXAMPLE = ("Fresh coffee, delivered to your door every week.\nRoasted this morning, in your cup by Friday.\n"
           "Try Brewly today: your first bag is on us.")
LOUDNESS_LABELS = {"online": "Online (-16 LUFS)", "broadcast": "Broadcast (-23 LUFS, EBU R128)"}


def voice_label(model: dict[str, Any]) -> str:
    """The warning comes first: a narrow list cuts the end of a long label off."""
    label = f"{model['name']} ({model.get('speaker') or model.get('family', '')})"
    return f"⚠ {label}, commercial use uncertain" if model.get("commercial_use") == "uncertain" else label


class VoiceWorkspace(Workspace):
    title = "Voice"
    welcome = ("<b>Voice</b>: a voice-over of your copy, timed line by line, and the finished ad spot with a music "
               "bed. Type a script, or select lines in Copy and use Edit &gt; Send text to Voice.",
               "Try it: speak an example line")

    def __init__(self, engine: Engine, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(engine, settings, parent)
        self.models: list[dict[str, Any]] = []
        self.speech: Speech | None = None
        self.spot: SpotResult | None = None
        self.spot_request: SpotRequest | None = None
        self.saved_text = ""
        self.player = AudioPlayer(self)
        self.player.position_changed.connect(self._on_position)
        self.player.state_changed.connect(lambda state: self.play_button.setText("Pause" if state == "playing"
                                                                                  else "Play"))
        self._build()
        self.refresh_models()

    # --- layout --------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.voice_combo = QComboBox()
        self.voice_combo.currentIndexChanged.connect(self._show_licence)
        self.licence = QLabel("")
        self.licence.setWordWrap(True)
        self.missing = QLabel(VOICES_MISSING)
        self.missing.setWordWrap(True)
        self.missing.setObjectName("warning")
        self.missing.hide()
        self.speed = self._spin(0.5, 2.0, 1.0, 0.05, "×", "1 is the voice's own pace")
        self.pitch = self._spin(-6.0, 6.0, 0.0, 0.5, " st", "Semitones up or down")
        self.line_pause = self._spin(0.0, 3.0, 0.4, 0.05, " s", "Silence between lines")
        self.sentence_pause = self._spin(0.0, 2.0, 0.15, 0.05, " s", "Silence between sentences of a line")
        self.skip = QCheckBox("Leave out what the voice cannot say")
        self.skip.setToolTip("Emoji, symbols and non-Latin letters are listed and left out instead of stopping")
        self.seed = SeedBox()
        self.speak_button = QPushButton("Speak")
        self.speak_button.setToolTip("Speak the script (Ctrl+Enter)")
        self.speak_button.clicked.connect(self.generate)
        voice_form = QFormLayout()
        voice_form.addRow("Voice", self.voice_combo)
        voice_form.addRow(self.licence)
        voice_form.addRow(self.missing)
        voice_form.addRow("Speed", self.speed)
        voice_form.addRow("Pitch", self.pitch)
        voice_form.addRow("Between lines", self.line_pause)
        voice_form.addRow("Between sentences", self.sentence_pause)
        voice_form.addRow(self.skip)
        voice_form.addRow("Seed", self.seed.row())
        voice_form.addRow(self.speak_button)
        voice_box = QGroupBox("Voice-over")
        voice_box.setLayout(voice_form)

        self.length = QComboBox()
        for seconds in SPOT_LENGTHS:
            self.length.addItem(f"{seconds} s", seconds)
        self.length.setCurrentIndex(len(SPOT_LENGTHS) - 1)
        self.loudness = QComboBox()
        for key in LOUDNESS_PRESETS:
            self.loudness.addItem(LOUDNESS_LABELS.get(key, key), key)
        self.style_combo = QComboBox()
        for name in list_styles():
            self.style_combo.addItem(find_style(name).title, name)
        self.style_combo.setCurrentIndex(max(0, self.style_combo.findData("upbeat-jingle")))
        self.music_seed = SeedBox()
        self.clip_path = ""
        self.clip_button = QPushButton("Use a clip…")
        self.clip_button.setToolTip("A clip exported from the Music workspace instead of a new bed")
        self.clip_button.clicked.connect(self._choose_clip)
        self.clip_label = QLabel("A new bed, fitted in whole bars")
        self.clip_label.setWordWrap(True)
        self.loop = QCheckBox("Loop a clip shorter than the spot")
        self.spot_button = QPushButton("Render spot")
        self.spot_button.clicked.connect(self.render_spot)
        self.export_spot_button = QPushButton("Export spot…")
        self.export_spot_button.setEnabled(False)
        self.export_spot_button.clicked.connect(self.export_spot)
        spot_form = QFormLayout()
        spot_form.addRow("Length", self.length)
        spot_form.addRow("Loudness", self.loudness)
        spot_form.addRow("Music", self.style_combo)
        spot_form.addRow("Music seed", self.music_seed.row())
        spot_form.addRow(self.clip_button, self.clip_label)
        spot_form.addRow(self.loop)
        spot_form.addRow(self.spot_button)
        spot_form.addRow(self.export_spot_button)
        spot_box = QGroupBox("Ad spot")
        spot_box.setLayout(spot_form)

        panel = QWidget()
        column = QVBoxLayout(panel)
        column.addWidget(voice_box)
        column.addWidget(spot_box)
        column.addStretch(1)

        self.script = QPlainTextEdit()
        self.script.setPlaceholderText("Type the script here, one line per breath, or send lines from Copy "
                                       "(Edit > Send text to Voice).")
        self.script.textChanged.connect(self._on_script_changed)
        self.count = QLabel("0 characters")
        self.waveform = WaveformView()
        self.waveform.seek_requested.connect(self._seek)
        self.timeline = LineTimeline(self.waveform)
        self.timeline.line_clicked.connect(self._select_line)
        self.lines = QListWidget()
        self.lines.setMaximumHeight(120)
        self.lines.currentRowChanged.connect(self._select_line)
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_play)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.time_label)
        controls.addWidget(self.summary, 1)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.script, 1)
        top_layout.addWidget(self.count, 0, Qt.AlignmentFlag.AlignRight)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.waveform, 1)
        bottom_layout.addWidget(self.timeline)
        bottom_layout.addLayout(controls)
        bottom_layout.addWidget(self.lines)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(top)
        right.addWidget(bottom)
        right.setSizes([260, 420])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(SidePanel(panel, 300))
        layout.addWidget(right, 1)

    @staticmethod
    def _spin(low: float, high: float, value: float, step: float, suffix: str, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setDecimals(2)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setToolTip(tip)
        return spin

    # --- models --------------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        run_job(self.engine, JobSpec("models.list", {"modality": "voice"}), on_done=self._set_models,
                on_fail=self.status_message.emit)

    def _set_models(self, models: list[dict[str, Any]]) -> None:
        self.models = models
        wanted = self.take_pending_model() or self.voice_combo.currentData()
        self.voice_combo.blockSignals(True)
        self.voice_combo.clear()
        for model in models:
            self.voice_combo.addItem(voice_label(model), model["name"])
        if wanted and self.voice_combo.findData(wanted) >= 0:
            self.voice_combo.setCurrentIndex(self.voice_combo.findData(wanted))
        self.voice_combo.blockSignals(False)
        has = bool(models)
        self.missing.setVisible(not has)
        self.voice_combo.setEnabled(has)
        self.speak_button.setEnabled(has)
        self.spot_button.setEnabled(has)
        self._show_licence()

    def current_model(self) -> dict[str, Any] | None:
        name = self.voice_combo.currentData()
        return next((m for m in self.models if m["name"] == name), None)

    def _show_licence(self) -> None:
        model = self.current_model()
        if model is None:
            self.licence.setText("")
            return
        note = model.get("licence_note") or ""
        text = f"Licence: {model.get('licence') or 'not stated'}."
        if model.get("commercial_use") == "uncertain":
            text = f"<b>⚠</b> {note}" if note else f"<b>⚠ Commercial use uncertain.</b> {text}"
        self.licence.setText(text)
        self.licence.setToolTip(model.get("licence") or "")

    # --- script --------------------------------------------------------------------------------------
    def _on_script_changed(self) -> None:
        text = self.script.toPlainText()
        lines = len([line for line in text.splitlines() if line.strip()])
        self.count.setText(f"{len(text):,} characters, {lines} line(s)")

    def receive_text(self, text: str) -> None:
        """Text sent from another workspace replaces the script (Ctrl+Z in the script brings the old one back)."""
        cursor = self.script.textCursor()
        cursor.select(cursor.SelectionType.Document)
        cursor.insertText(text.strip())
        self.status_message.emit(f"Voice: {len(text.strip()):,} characters to speak; press Speak (Ctrl+Enter)")

    def shared_text(self) -> str:
        return self.script.textCursor().selectedText().replace("\u2029", "\n") or self.script.toPlainText()

    def voice_request(self) -> VoiceRequest:
        return VoiceRequest(text=self.script.toPlainText(), speed=self.speed.value(), pitch=self.pitch.value(),
                            line_pause=self.line_pause.value(), sentence_pause=self.sentence_pause.value(),
                            skip_unsayable=self.skip.isChecked(), seed=self.seed.next_seed())

    # --- jobs ----------------------------------------------------------------------------------------
    def _submit(self, spec: JobSpec, on_done: Any, what: str) -> None:
        self._busy(True)
        self.status_message.emit(what)
        call = run_job(self.engine, spec, on_done=lambda result: (self._busy(False), on_done(result)),
                       on_fail=self._failed, on_cancel=lambda: (self._busy(False),
                                                                self.status_message.emit("Voice: cancelled")))
        self.active_job = call.job_id

    def _busy(self, busy: bool) -> None:
        has = bool(self.models)
        self.speak_button.setEnabled(has and not busy)
        self.spot_button.setEnabled(has and not busy)
        if not busy:
            self.active_job = None

    def _failed(self, message: str) -> None:
        self._busy(False)
        self.status_message.emit(f"Voice: {message}")

    def generate(self) -> None:
        """Speak the script (Ctrl+Enter)."""
        try:
            request = self.voice_request()
        except StudioError as exc:
            self.status_message.emit(str(exc))
            return
        self._submit(request.spec(self.voice_combo.currentData() or ""), self._on_speech,
                     f"Speaking {len(request.text):,} characters (seed {request.seed})…")

    def run_example(self) -> None:
        if not self.script.toPlainText().strip():
            self.receive_text(EXAMPLE)
        self.generate()

    def _on_speech(self, speech: Speech) -> None:
        self.speech, self.spot = speech, None
        self.export_spot_button.setEnabled(False)
        self._show_audio(speech.audio, speech.rate, speech.lines)
        self.summary.setText(f"{speech.duration:.1f} s, {speech.recipe['model']}, "
                             f"{speech.recipe['realtime_factor']:.1f}× real time")
        self.status_message.emit(f"Voice: {len(speech.lines)} line(s), {speech.duration:.1f} s; Space plays")

    def spot_request_now(self) -> SpotRequest:
        music = MusicRequest(style=str(self.style_combo.currentData() or "upbeat-jingle"),
                             seed=self.music_seed.next_seed())
        return SpotRequest(voice=self.voice_request(), voice_model=self.voice_combo.currentData() or "",
                           music=music, music_file=self.clip_path, loop_music=self.loop.isChecked(),
                           length=int(self.length.currentData()), loudness=str(self.loudness.currentData()),
                           seed=self.seed.value())

    def render_spot(self) -> None:
        try:
            request = self.spot_request_now()
        except StudioError as exc:
            self.status_message.emit(str(exc))
            return
        self.spot_request = request
        self._submit(request.spec(), self._on_spot, f"Rendering a {request.length} s spot…")

    def _on_spot(self, spot: SpotResult) -> None:
        self.spot = spot
        self.export_spot_button.setEnabled(True)
        self._show_audio(spot.mix, spot.rate, spot.lines)
        recipe = spot.recipe
        self.summary.setText(f"Spot {spot.duration:.0f} s: {recipe['lufs']:.1f} LUFS (target "
                             f"{recipe['target_lufs']:g}), peak {recipe['true_peak_dbtp']:.1f} dBTP, voice "
                             f"{recipe['voice_over_bed_db']:.0f} dB above the music")
        self.status_message.emit("Voice: spot rendered; Export spot… writes the audio, the project and the copy")

    def _choose_clip(self) -> None:
        path = dialogs.ask_open_path(self, "voice-clip", "Music clip for the spot", self._folder(), CLIP_FILTER)
        self.clip_path = str(path) if path else ""
        self.clip_label.setText(path.name if path else "A new bed, fitted in whole bars")

    # --- audio ---------------------------------------------------------------------------------------
    def _show_audio(self, samples: Any, rate: int, timings: Any) -> None:
        self.player.stop()
        self.waveform.set_audio(samples, rate)
        self.player.set_clip(samples, rate)
        self.timeline.set_timings(timings)
        self.lines.blockSignals(True)
        self.lines.clear()
        for timing in timings:
            self.lines.addItem(f"{format_time(timing.start, 0.01)} – {format_time(timing.end, 0.01)}   "
                               f"line {timing.number}: {timing.text}")
        self.lines.blockSignals(False)
        self._on_position(0.0)

    def toggle_play(self) -> None:
        if self.player.state == "playing":
            self.player.pause()
        elif self.waveform.has_audio:
            self.player.play(self.waveform.playhead)

    def _seek(self, seconds: float) -> None:
        self.waveform.set_playhead(seconds)
        if self.player.state == "playing":
            self.player.seek(seconds)
        self._on_position(seconds)

    def _select_line(self, index: int) -> None:
        timings = self.timeline.timings
        if 0 <= index < len(timings):
            self.waveform.set_selection(timings[index].start, timings[index].end)
            self._seek(timings[index].start)

    def _on_position(self, seconds: float) -> None:
        self.waveform.set_playhead(seconds, follow=self.player.state == "playing")
        self.timeline.set_current(seconds)
        self.time_label.setText(f"{format_time(seconds, 0.1)} / {format_time(self.waveform.duration, 0.1)}")

    # --- files ---------------------------------------------------------------------------------------
    def _folder(self) -> Path:
        return self.settings.resolved_output_dir

    def export(self) -> None:
        """Ctrl+E: the voice-over (or the spot's mix) as WAV/FLAC/OGG with the recipe."""
        audio = self.spot or self.speech
        if audio is None:
            self.status_message.emit("Voice: nothing to export yet: press Speak first")
            return
        path = dialogs.ask_save_path(self, "voice", "Export audio", self._folder(), "voice-over.wav", AUDIO_FILTER)
        if path:
            self.export_audio(path)

    def export_audio(self, path: Path) -> Path | None:
        result = self.spot or self.speech
        if result is None:
            return None
        samples = result.mix if isinstance(result, SpotResult) else result.audio
        recipe = result.recipe if self.settings.write_metadata else None
        try:
            written = write_audio(Path(path), samples, result.rate, recipe)
        except StudioError as exc:
            self.status_message.emit(f"Voice: could not export: {exc}")
            return None
        self.status_message.emit(f"Voice: wrote {written}")
        return written

    def export_spot(self) -> None:
        path = dialogs.ask_save_path(self, "voice-spot", "Export spot", self._folder(), "spot.wav", AUDIO_FILTER)
        if path:
            self.export_spot_to(path)

    def export_spot_to(self, path: Path) -> list[Path]:
        if self.spot is None or self.spot_request is None:
            self.status_message.emit("Voice: render a spot first")
            return []
        try:
            written = export_spot(Path(path), self.spot, self.spot_request, self.settings.write_metadata)
        except StudioError as exc:
            self.status_message.emit(f"Voice: could not export the spot: {exc}")
            return []
        self.saved_text = self.script.toPlainText()
        self.status_message.emit(f"Voice: wrote {', '.join(p.name for p in written)}")
        return written

    def save(self) -> None:
        """Ctrl+S: the script as a text file."""
        path = dialogs.ask_save_path(self, "voice-script", "Save script", self._folder(), "script.txt",
                                     "Text (*.txt)")
        if path:
            write_atomic(path, self.script.toPlainText(), f"the script {path.name}")
            self.saved_text = self.script.toPlainText()
            self.status_message.emit(f"Voice: saved {path}")

    def open_dialog(self) -> None:
        path = dialogs.ask_open_path(self, "voice-open", "Open a spot or a script", self._folder(), OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: Path) -> None:
        """A ``.spot`` project (its settings, its script and its rendered audio) or a script (``.txt``)."""
        path = Path(path)
        try:
            if path.suffix.lower() != ".spot":
                self.receive_text(path.read_text(encoding="utf-8"))
                self.saved_text = self.script.toPlainText()
                return
            project = read_project(path)
        except (StudioError, OSError, UnicodeDecodeError) as exc:
            self.status_message.emit(f"Voice: {path.name} could not be opened: {exc}")
            return
        request = project.request
        self.script.setPlainText(project.copy)
        self.saved_text = project.copy
        for spin, value in ((self.speed, request.voice.speed), (self.pitch, request.voice.pitch),
                            (self.line_pause, request.voice.line_pause),
                            (self.sentence_pause, request.voice.sentence_pause)):
            spin.setValue(value)
        self.skip.setChecked(request.voice.skip_unsayable)
        self.seed.setValue(request.seed)
        self.pending_model = request.voice_model
        self._set_models(self.models)
        self.length.setCurrentIndex(max(0, self.length.findData(request.length)))
        self.loudness.setCurrentIndex(max(0, self.loudness.findData(request.loudness)))
        self.style_combo.setCurrentIndex(max(0, self.style_combo.findData(request.music.style)))
        self.music_seed.setValue(request.music.seed)
        self.spot_request = request
        if project.audio is None:
            self.status_message.emit(f"Voice: opened {path.name}; its audio is not beside it: Render spot makes "
                                     "it again")
            return
        samples, rate = read_audio(project.audio)
        self.spot = SpotResult(rate, samples, {}, project.lines, project.copy, project.recipe)
        self.export_spot_button.setEnabled(True)
        self._show_audio(samples, rate, project.lines)
        self.summary.setText(f"Spot {len(samples) / rate:.0f} s from {project.audio.name}")
        self.status_message.emit(f"Voice: opened the spot {path.name}")

    # --- unsaved work --------------------------------------------------------------------------------
    def unsaved_work(self) -> str:
        text = self.script.toPlainText()
        return "the script" if text.strip() and text != self.saved_text else ""

    def revision(self) -> object:
        return self.script.toPlainText()

    def autosave(self, folder: Path) -> None:
        write_atomic(folder / "script.txt", self.script.toPlainText(), "the autosaved script")

    def restore_autosave(self, folder: Path) -> bool:
        path = folder / "script.txt"
        if not path.exists():
            return False
        self.script.setPlainText(path.read_text(encoding="utf-8"))
        return True

    def close_document(self) -> None:
        self.player.stop()
        self.script.clear()
        self.saved_text = ""
        self.speech = self.spot = None
        self.waveform.set_audio(None, 1)
        self.player.set_clip(None, 1)
        self.timeline.set_timings(())
        self.lines.clear()
        self.export_spot_button.setEnabled(False)
        QTimer.singleShot(0, lambda: self.status_message.emit("Voice: a new, empty script"))

