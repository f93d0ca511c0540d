"""The Music workspace: waveform with loop selection and playback, a piano roll with per-part mute/solo, and a
generation panel for ``music.generate`` / ``music.continue`` / ``music.vary``.

Bars in the UI and in the ``bars_from``/``bars_to`` job parameters are numbered from 1 and inclusive (as
musicians say "bars 3-4"), like :mod:`studio.ml.music.sample`. Mute/solo remixes the payload's stems in numpy;
no new job runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut, QUndoCommand
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.formats.audio import read_audio, read_audio_recipe, write_audio
from studio.core.formats.midi import write_midi
from studio.core.jobs import JobSpec, thaw
from studio.core.music_request import MusicRequest
from studio.core.music_styles import list_styles, load_style_file, styles_dir
from studio.core.music_theory import MAX_BPM, MIN_BPM, NOTE_NAMES_SHARP, parse_key, parse_meter
from studio.core.recipe import meter_choice, real_number, recipe_or_problem
from studio.core.safe_write import write_atomic
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui import dialogs
from studio.ui.icons import icon
from studio.ui.jobs import run_job
from studio.ui.widgets.piano_roll import PianoRoll, part_colour
from studio.ui.widgets.player import AudioPlayer
from studio.ui.widgets.seed_box import SeedBox
from studio.ui.widgets.waveform import WaveformView, format_time
from studio.ui.workspaces.base import SidePanel, Workspace

AUDIO_FILTER = "Audio (*.wav *.flac *.ogg);;All files (*)"
SAVE_FILTER = "WAV (*.wav);;FLAC (*.flac);;Ogg Vorbis (*.ogg)"
EXPORT_FILTER = "WAV (*.wav);;FLAC (*.flac);;Ogg Vorbis (*.ogg);;MIDI notes (*.mid)"
METERS = ("4/4", "3/4", "6/8")


@dataclass
class Clip:
    """What the workspace shows: the mix (frames x channels), and for generated clips stems, notes and tempo."""

    mix: np.ndarray
    rate: int
    stems: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    bpm: float | None = None
    bars: int = 0
    meter: str = "4/4"
    key: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    name: str = "clip"

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Clip:
        recipe = thaw(payload.get("recipe", {}))
        params = recipe.get("params", {})
        name = f"{params.get('style') or 'music'}-seed{recipe.get('seed', 0)}"
        return cls(
            mix=np.asarray(payload["mix"], dtype=np.float32),
            rate=int(payload["rate"]),
            stems={str(k): np.asarray(v, dtype=np.float32) for k, v in payload.get("stems", {}).items()},
            notes=[dict(n) for n in payload.get("notes", [])],
            bpm=float(payload["bpm"]),
            bars=int(payload["bars"]),
            meter=str(payload["meter"]),
            key=str(payload["key"]),
            recipe=recipe,
            name=name,
        )

    @property
    def beats_per_bar(self) -> float:
        return parse_meter(self.meter).beats_per_bar

    @property
    def duration(self) -> float:
        return len(self.mix) / self.rate


def remix(stems: dict[str, np.ndarray], mix: np.ndarray, audible: set[str]) -> np.ndarray:
    """The mix with only ``audible`` stems. The payload's mix is the stems' sum after a mastering gain; the same
    gain (least-squares fit of the full sum to the mix) is applied to the partial sum so levels stay comparable."""
    if not stems or audible >= set(stems):
        return mix
    if not audible:
        return np.zeros_like(mix)
    n = min(len(mix), *(len(s) for s in stems.values()))
    total = np.sum([stems[p][:n] for p in stems], axis=0)
    part = np.sum([stems[p][:n] for p in audible], axis=0)
    energy = float(np.vdot(total, total))
    gain = float(np.vdot(mix[:n], total)) / energy if energy > 0 else 1.0
    out = np.zeros_like(mix)
    out[:n] = np.clip(part * gain, -1.0, 1.0)
    return out


class _ReplaceClip(QUndoCommand):
    def __init__(self, workspace: MusicWorkspace, old: Clip | None, new: Clip, text: str) -> None:
        super().__init__(text)
        self._workspace, self._old, self._new = workspace, old, new

    def redo(self) -> None:
        self._workspace._show_clip(self._new)

    def undo(self) -> None:
        self._workspace._show_clip(self._old)


class MusicWorkspace(Workspace):
    title = "Music"
    welcome = ("<b>Music</b>: pick a style, generate a clip, play it with Space, drag on the waveform to loop a "
               "part, mute or solo parts below; then continue it or vary some bars, and export WAV or MIDI (Ctrl+E).",
               "Try it: a chiptune clip")

    def __init__(self, engine: Engine, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(engine, settings, parent)
        self.clip: Clip | None = None
        self.path: Path | None = None
        self._saved_clip: Clip | None = None  # the clip as last opened or saved: anything else is unsaved work
        self._results: list[Clip] = []
        self._result_index = -1
        self._muted: set[str] = set()
        self._soloed: set[str] = set()
        self.mute_boxes: dict[str, QCheckBox] = {}
        self.solo_boxes: dict[str, QCheckBox] = {}

        self.player = AudioPlayer(self)
        self.player.position_changed.connect(self._on_position)
        self.player.state_changed.connect(self._on_player_state)
        self.waveform = WaveformView()
        self.waveform.selection_changed.connect(self._on_selection)
        self.waveform.selection_committed.connect(self._on_selection_committed)
        self.waveform.seek_requested.connect(self._on_seek)
        self.waveform.view_changed.connect(self._on_view)
        self.piano_roll = PianoRoll()

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.waveform)
        splitter.addWidget(self.piano_roll)
        splitter.setSizes([300, 200])
        self.parts_row = QHBoxLayout()
        self.parts_row.setContentsMargins(10, 4, 10, 4)
        parts_frame = QFrame()
        parts_frame.setObjectName("toolbarRow")
        parts_frame.setLayout(self.parts_row)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.setSpacing(0)
        main_layout.addWidget(self._build_transport())
        main_layout.addWidget(splitter, 1)
        main_layout.addWidget(parts_frame)

        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(main)
        outer.addWidget(self._build_panel())
        outer.setStretchFactor(0, 1)
        outer.setSizes([760, 320])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(outer)

        space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        space.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        space.activated.connect(self.toggle_play)
        self._show_clip(None)
        self.request_models()
        if self.player.problem:
            QTimer.singleShot(0, lambda: self.status_message.emit(self.player.problem))

    # --- layout -----------------------------------------------------------------------------------
    def _tool(self, icon_name: str, tip: str, slot: Any, checkable: bool = False) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon(icon_name))
        button.setToolTip(tip)
        button.setCheckable(checkable)
        button.clicked.connect(slot)
        return button

    def _build_transport(self) -> QFrame:
        self.play_button = self._tool("play", "Play / pause (Space)", self.toggle_play)
        self.stop_button = self._tool("stop", "Stop", self.stop)
        self.loop_button = self._tool("loop", "Loop the selection (drag on the waveform to select)",
                                      self._on_loop_toggled, checkable=True)
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.time_label.setMinimumWidth(120)
        self.selection_label = QLabel("")
        self.selection_label.setObjectName("hint")
        self.device_warning = QLabel("No audio output")
        self.device_warning.setToolTip(self.player.problem or "")
        self.device_warning.setStyleSheet("color: #f0b65a;")
        self.device_warning.setVisible(bool(self.player.problem))
        bar = QFrame()
        bar.setObjectName("toolbarRow")
        row = QHBoxLayout(bar)
        row.setContentsMargins(10, 6, 10, 6)
        for widget in (self.play_button, self.stop_button, self.loop_button):
            row.addWidget(widget)
        row.addSpacing(10)
        row.addWidget(self.time_label)
        row.addWidget(self.selection_label, 1)
        row.addWidget(self.device_warning)
        row.addWidget(self._tool("zoom-out", "Zoom out (Ctrl+wheel on the waveform)", self.waveform.zoom_out))
        row.addWidget(self._tool("zoom-in", "Zoom in (Ctrl+wheel on the waveform)", self.waveform.zoom_in))
        row.addWidget(self._tool("zoom-fit", "Show the whole clip", self.waveform.zoom_fit))
        return bar

    def _build_panel(self) -> SidePanel:
        generate_box = QGroupBox("New clip")
        self.model_combo = QComboBox()
        self.model_combo.addItem("Automatic", "")
        self.style_combo = QComboBox()
        for name in list_styles():
            try:
                style = load_style_file(styles_dir() / f"{name}.json")
            except StudioError:
                continue
            self.style_combo.addItem(style.title, style)
        if self.style_combo.count() == 0:
            self.style_combo.addItem("No style presets installed", None)
            self.style_combo.setEnabled(False)
        self.style_combo.currentIndexChanged.connect(self._apply_style_defaults)
        self.style_note = QLabel("")
        self.style_note.setObjectName("hint")
        self.style_note.setWordWrap(True)
        self.key_combo = QComboBox()
        self.key_combo.addItems(list(NOTE_NAMES_SHARP))
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["major", "minor"])
        self.bpm_spin = QSpinBox()
        self.bpm_spin.setRange(40, 240)
        self.bpm_spin.setValue(120)
        self.bpm_spin.setSuffix(" bpm")
        self.meter_combo = QComboBox()
        self.meter_combo.addItems(list(METERS))
        self.bars_spin = QSpinBox()
        self.bars_spin.setRange(1, 64)
        self.bars_spin.setValue(8)
        self.form_combo = QComboBox()
        self.form_combo.addItem("Period (restate the opening)", "period")
        self.form_combo.addItem("Through-composed", "through")
        self.form_combo.setToolTip("Period: bars 5-6 of 8 repeat bars 1-2, as most tunes do (needs 4 bars or an "
                                   "even number); the rule-based melody is always through-composed")
        self.seed_spin = SeedBox()
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_combo, 1)
        key_row.addWidget(self.mode_combo, 1)
        form = QFormLayout(generate_box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Model", self.model_combo)
        form.addRow("Style", self.style_combo)
        form.addRow("", self.style_note)
        form.addRow("Key", key_row)
        form.addRow("Tempo", self.bpm_spin)
        form.addRow("Meter", self.meter_combo)
        form.addRow("Bars", self.bars_spin)
        form.addRow("Form", self.form_combo)
        form.addRow("Seed", self.seed_spin.row())
        self.generate_button = QPushButton(icon("generate"), "Generate clip")
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Ctrl+Enter")
        self.generate_button.clicked.connect(self.generate)
        form.addRow(self.generate_button)

        edit_box = QGroupBox("Change this clip")
        self.continue_spin = QSpinBox()
        self.continue_spin.setRange(1, 32)
        self.continue_spin.setValue(4)
        self.continue_spin.setPrefix("+")
        self.continue_spin.setSuffix(" bars")
        self.continue_spin.setMinimumWidth(80)
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Add new bars after the clip, following on from it")
        self.continue_button.clicked.connect(self.continue_clip)
        self.vary_from = QSpinBox()
        self.vary_to = QSpinBox()
        for spin in (self.vary_from, self.vary_to):
            spin.setRange(1, 64)
            spin.setMinimumWidth(64)
        self.vary_button = QPushButton("Vary bars")
        self.vary_button.setToolTip("Regenerate bars N..M (inclusive), keeping the others")
        self.vary_button.clicked.connect(self.vary_clip)
        continue_row = QHBoxLayout()
        continue_row.addWidget(self.continue_spin, 1)
        continue_row.addWidget(self.continue_button, 1)
        vary_row = QHBoxLayout()
        vary_row.addWidget(self.vary_from, 1)
        vary_row.addWidget(QLabel("to"))
        vary_row.addWidget(self.vary_to, 1)
        vary_row.addWidget(self.vary_button, 1)
        edit_form = QFormLayout(edit_box)
        edit_form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        edit_form.addRow("Add", continue_row)
        edit_form.addRow("Bars", vary_row)
        self.clip_info = QLabel("")
        self.clip_info.setObjectName("hint")
        self.clip_info.setWordWrap(True)
        edit_form.addRow(self.clip_info)

        panel = QWidget()
        self.generation_panel = QVBoxLayout(panel)
        self.generation_panel.setContentsMargins(12, 8, 12, 12)
        self.generation_panel.addWidget(generate_box)
        self.generation_panel.addWidget(edit_box)
        self.generation_panel.addStretch(1)
        scroll = SidePanel(panel, 340)
        self._user_set: set[str] = set()  # settings the user chose by hand: a style preset leaves them alone
        self._styling = False
        for name, signal in (("key", self.key_combo.activated), ("key", self.mode_combo.activated),
                             ("tempo", self.bpm_spin.valueChanged), ("meter", self.meter_combo.activated),
                             ("bars", self.bars_spin.valueChanged), ("form", self.form_combo.activated)):
            signal.connect(lambda *_args, n=name: None if self._styling else self._user_set.add(n))
        self._apply_style_defaults()
        return scroll

    def _style_settings(self) -> dict[str, str]:
        """What a style sets, as the user reads it: {setting: shown value}."""
        return {"key": f"{self.key_combo.currentText()} {self.mode_combo.currentText()}",
                "tempo": self.bpm_spin.text(), "meter": self.meter_combo.currentText(),
                "bars": str(self.bars_spin.value()), "form": self.form_combo.currentText().split(" (")[0]}

    def _apply_style_defaults(self) -> None:
        """A style preset brings its own key, tempo, meter, length and form, except where the user chose one by
        hand; what it changed (and kept) is said under the style, never silently."""
        style = self.style_combo.currentData()
        if style is None:
            return
        first = not self.style_note.text()
        before = self._style_settings()
        key = parse_key(style.key)
        self._styling = True
        if "key" not in self._user_set:
            self.key_combo.setCurrentIndex(key.tonic)
            self.mode_combo.setCurrentText(key.mode)
        if "tempo" not in self._user_set:
            self.bpm_spin.setValue(round(style.bpm))
        if style.meter in METERS and "meter" not in self._user_set:
            self.meter_combo.setCurrentText(style.meter)
        if "bars" not in self._user_set:
            self.bars_spin.setValue(min(self.bars_spin.maximum(), style.bars))
        if "form" not in self._user_set:
            self.form_combo.setCurrentIndex(max(0, self.form_combo.findData(style.melody_form)))
        self._styling = False
        after = self._style_settings()
        if first:  # the window opens on this style: say what it sets, not what the empty form had
            self.style_note.setText(f"{style.title}: {after['key']}, {after['tempo']}, {after['meter']}, "
                                    f"{after['bars']} bars")
            return
        changed = [f"{name.capitalize()} {before[name]} → {after[name]}" for name in after
                   if after[name] != before[name]]
        kept = [name for name in after if name in self._user_set]
        note = f"{style.title}: " + (", ".join(changed) if changed else "no change to your settings")
        if kept:
            note += f"; kept your {', '.join(kept)}"
        self.style_note.setText(note)
        if changed:
            self.status_message.emit(note)

    # --- showing a clip -----------------------------------------------------------------------------
    def _replace_clip(self, clip: Clip, text: str) -> None:
        self.undo_stack.push(_ReplaceClip(self, self.clip, clip, text))

    def _show_clip(self, clip: Clip | None) -> None:
        self.clip = clip
        self._muted, self._soloed = set(), set()
        self.player.stop()
        if clip is None:
            self.waveform.set_audio(None, 1)
            self.waveform.set_tempo(None)
            self.piano_roll.clear()
            self.player.set_clip(None, 1)
        else:
            self.waveform.set_audio(clip.mix, clip.rate)
            self.waveform.set_tempo(clip.bpm, clip.beats_per_bar)
            total_beats = clip.bars * clip.beats_per_bar if clip.bars else 0.0
            self.piano_roll.set_notes(clip.notes, total_beats, clip.beats_per_bar)
            self.player.set_clip(clip.mix, clip.rate)
        self._rebuild_parts()
        self._update_edit_controls()
        self._update_time(0.0)

    def _rebuild_parts(self) -> None:
        while self.parts_row.count():
            item = self.parts_row.takeAt(0)
            if item.widget():
                item.widget().hide()
                item.widget().deleteLater()
        self.mute_boxes, self.solo_boxes = {}, {}
        parts = list(self.clip.stems) if self.clip else []
        label = QLabel("Parts" if parts else "Generated clips list their parts here for mute and solo")
        label.setObjectName("hint")
        self.parts_row.addWidget(label)
        for index, part in enumerate(parts):
            swatch = QLabel("■")
            swatch.setStyleSheet(f"color: {part_colour(part, index).name()};")
            self.parts_row.addSpacing(10)
            self.parts_row.addWidget(swatch)
            self.parts_row.addWidget(QLabel(part))
            mute, solo = QCheckBox("M"), QCheckBox("S")
            mute.setToolTip(f"Mute {part}")
            solo.setToolTip(f"Solo {part}")
            mute.toggled.connect(lambda on, p=part: self.set_muted(p, on))
            solo.toggled.connect(lambda on, p=part: self.set_soloed(p, on))
            self.parts_row.addWidget(mute)
            self.parts_row.addWidget(solo)
            self.mute_boxes[part], self.solo_boxes[part] = mute, solo
        self.parts_row.addStretch(1)

    def _update_edit_controls(self) -> None:
        clip = self.clip
        generated = bool(clip and clip.notes and clip.bars)
        for widget in (self.continue_button, self.continue_spin, self.vary_button, self.vary_from, self.vary_to):
            widget.setEnabled(generated)
        if generated:
            for spin in (self.vary_from, self.vary_to):
                spin.setMaximum(clip.bars)
            self.vary_to.setValue(clip.bars)
        if clip is None:
            self.clip_info.setText("No clip yet")
        elif clip.bpm:
            self.clip_info.setText(f"{clip.key}, {clip.bpm:g} bpm, {clip.meter}, {clip.bars} bars "
                                   f"({clip.duration:.2f} s)")
        else:
            self.clip_info.setText(f"{self.path.name if self.path else 'clip'}: {clip.duration:.2f} s, "
                                   f"{clip.rate} Hz, {clip.mix.shape[1]} channel(s)")

    # --- mute / solo --------------------------------------------------------------------------------
    @property
    def audible_parts(self) -> set[str]:
        parts = set(self.clip.stems) if self.clip else set()
        return set(self._soloed) if self._soloed else parts - self._muted

    def set_muted(self, part: str, muted: bool) -> None:
        (self._muted.add if muted else self._muted.discard)(part)
        self._remix()

    def set_soloed(self, part: str, soloed: bool) -> None:
        (self._soloed.add if soloed else self._soloed.discard)(part)
        self._remix()

    def audible_mix(self) -> np.ndarray | None:
        if self.clip is None:
            return None
        return remix(self.clip.stems, self.clip.mix, self.audible_parts)

    def _remix(self) -> None:
        """Show and play what the mute/solo switches leave audible, keeping the view and the selection."""
        mix = self.audible_mix()
        view, selection = self.waveform.visible_range(), self.waveform.selection()
        was_playing = self.player.state == "playing"
        self.waveform.set_audio(mix, self.clip.rate)
        self.waveform.set_visible_range(*view)
        if selection:
            self.waveform.set_selection(*selection)
        self.player.set_clip(mix, self.clip.rate)
        self.piano_roll.set_audible(self.audible_parts)
        if was_playing:
            self.toggle_play()

    # --- transport ----------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.player.state == "playing":
            self.player.pause()
            return
        if not self.player.can_play:
            self.status_message.emit(self.player.problem or "Open or generate a clip to play it")
            return
        if self.player.problem:
            self.status_message.emit(self.player.problem)
        if self.player.state == "paused" and self.loop_button.isChecked() == self.player.looping:
            self.player.resume()
            return
        selection = self.waveform.selection()
        if self.loop_button.isChecked() and selection:
            self.player.play(loop=selection)
        else:
            self.player.play(start=self.waveform.playhead if self.waveform.playhead < self.clip.duration else 0.0)

    def stop(self) -> None:
        self.player.stop()

    def _on_loop_toggled(self, checked: bool) -> None:
        if self.player.state == "playing":
            self.player.stop()
            self.toggle_play()
        elif checked and not self.waveform.selection():
            self.status_message.emit("Drag across the waveform to choose the loop region")

    def _on_player_state(self, state: str) -> None:
        self.play_button.setIcon(icon("pause" if state == "playing" else "play"))

    def _on_position(self, seconds: float) -> None:
        self.waveform.set_playhead(seconds, follow=True)
        if self.clip and self.clip.bpm:
            self.piano_roll.set_playhead(seconds * self.clip.bpm / 60.0)
        self._update_time(seconds)

    def _on_seek(self, seconds: float) -> None:
        if self.player.state != "stopped":
            self.player.seek(seconds)
        self._update_time(seconds)

    def _on_selection(self, selection: tuple[float, float] | None) -> None:
        if selection is None:
            self.selection_label.setText("")
        else:
            start, end = selection
            text = f"Loop {format_time(start, 0.01)} – {format_time(end, 0.01)} ({end - start:.2f} s)"
            if self.clip and self.clip.bpm:
                text += f" = {(end - start) * self.clip.bpm / 60 / self.clip.beats_per_bar:.2f} bars"
            self.selection_label.setText(text)

    def _on_selection_committed(self, selection: tuple[float, float] | None) -> None:
        """A new loop region while looping: loop it from its start (the loop file is rewritten once)."""
        if self.player.state == "playing" and self.player.looping and selection:
            self.player.play(loop=selection)

    def _on_view(self, start: float, end: float) -> None:
        if self.clip and self.clip.bpm:
            self.piano_roll.set_visible_beats(start * self.clip.bpm / 60, end * self.clip.bpm / 60)

    def _update_time(self, seconds: float) -> None:
        total = self.clip.duration if self.clip else 0.0
        self.time_label.setText(f"{format_time(seconds, 0.1)} / {format_time(total, 0.1)}")

    # --- generation ---------------------------------------------------------------------------------
    def request_models(self) -> None:
        run_job(self.engine, JobSpec("models.list", {"modality": "music"}), on_done=self._set_models)

    def refresh_models(self) -> None:
        self.request_models()

    def generation_params(self) -> dict[str, Any]:
        style = self.style_combo.currentData()
        return {"style": style.name if style else "", "key": f"{self.key_combo.currentText()} "
                f"{self.mode_combo.currentText()}", "bpm": self.bpm_spin.value(),
                "meter": self.meter_combo.currentText(), "bars": self.bars_spin.value(),
                "form": self.form_combo.currentData()}

    def _submit(self, kind: str, params: dict[str, Any], what: str) -> None:
        spec = JobSpec(kind, params, self.seed_spin.next_seed(), self.model_combo.currentData())
        if kind == MusicRequest.kind:  # a new clip: its typed request checks the form
            try:
                spec = MusicRequest.from_spec(spec).spec(spec.model)
            except StudioError as exc:
                self.status_message.emit(str(exc))
                return
        self._set_busy(True)
        call = run_job(self.engine, spec, on_done=lambda payload: self._on_clip(kind, payload),
                       on_fail=lambda _message: self._job_ended(), on_cancel=self._job_ended)
        self.active_job = call.job_id
        self.status_message.emit(f"{what} (seed {spec.seed})")

    def run_example(self) -> None:
        index = self.style_combo.findText("Chiptune adventure")
        if index >= 0:
            self.style_combo.setCurrentIndex(index)
        self.generate()

    def generate(self) -> None:
        params = self.generation_params()
        self._submit("music.generate", params, f"Generating {params['bars']} bars of {params['style'] or 'music'}…")

    def _clip_params(self) -> dict[str, Any] | None:
        """The current clip's own parameters (not the form's), for continue / vary."""
        clip = self.clip
        if not (clip and clip.notes and clip.bpm):
            self.status_message.emit("Continue and vary work on a generated clip: generate one first")
            return None
        style = clip.recipe.get("params", {}).get("style", "")
        # the new bars take a new seed; chords, bass and drums keep the clip's, so the bars kept stay as they were
        arrange_seed = clip.recipe.get("arrange_seed", clip.recipe.get("seed", 0))
        return {"style": style, "key": clip.key, "bpm": clip.bpm, "meter": clip.meter, "bars": clip.bars,
                "notes": clip.notes, "arrange_seed": int(arrange_seed)}

    def continue_clip(self) -> None:
        params = self._clip_params()
        if params is None:
            return
        extra = self.continue_spin.value()
        params.update(bars_from=params["bars"] + 1, bars_to=params["bars"] + extra)
        self._submit("music.continue", params, f"Continuing the clip by {extra} bars…")

    def vary_clip(self) -> None:
        params = self._clip_params()
        if params is None:
            return
        first, last = sorted((self.vary_from.value(), self.vary_to.value()))
        params.update(bars_from=first, bars_to=last)
        self._submit("music.vary", params, f"Varying bars {first}–{last}…")

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.setEnabled(not busy)
        self.generate_button.setText("Generating…" if busy else "Generate clip")
        if busy:
            for widget in (self.continue_button, self.vary_button):
                widget.setEnabled(False)
        else:
            self._update_edit_controls()

    def _set_models(self, models: list[dict[str, Any]]) -> None:
        while self.model_combo.count() > 1:  # keep "Automatic"
            self.model_combo.removeItem(1)
        for entry in models:
            self.model_combo.addItem(entry["name"], entry["name"])
        wanted = self.model_combo.findData(self.take_pending_model())
        if wanted >= 0:
            self.model_combo.setCurrentIndex(wanted)

    def _job_ended(self) -> None:
        self.active_job = None
        self._set_busy(False)

    def _on_clip(self, kind: str, payload: Any) -> None:
        self._job_ended()
        try:
            clip = Clip.from_payload(payload)
        except (KeyError, TypeError, ValueError, StudioError) as exc:
            self.status_message.emit(f"{kind} returned a clip Studio cannot show ({exc})")
            return
        self._results.append(clip)
        self._result_index = len(self._results) - 1
        self.path = None
        self._replace_clip(clip, kind.replace("music.", "").capitalize() + " clip")
        self.status_message.emit(f"{clip.bars} bars, {clip.duration:.1f} s; Space plays, drag to loop a region")

    def step_result(self, delta: int) -> None:
        if len(self._results) < 2:
            return
        self._result_index = (self._result_index + delta) % len(self._results)
        self._replace_clip(self._results[self._result_index], f"Show result {self._result_index + 1}")
        self.status_message.emit(f"Result {self._result_index + 1} of {len(self._results)}")

    # --- files ----------------------------------------------------------------------------------------
    def open_path(self, path: Path) -> None:
        path = Path(path)
        try:
            samples, rate = read_audio(path)
        except StudioError as exc:
            self.status_message.emit(str(exc))
            return
        recipe, problem = recipe_or_problem(read_audio_recipe, path)
        recipe = recipe or {}
        params = recipe.get("params", recipe)
        bpm = real_number(params.get("bpm"), MIN_BPM, MAX_BPM)
        clip = Clip(samples, rate, recipe=recipe, name=path.stem)
        if bpm is not None:
            clip.bpm, clip.meter = bpm, meter_choice(params.get("meter", "4/4")) or "4/4"
        self.path = path
        self._replace_clip(clip, f"Open {path.name}")
        self._saved_clip = clip
        self.status_message.emit(f"Opened {path.name}: {clip.duration:.1f} s at {rate} Hz. {problem}".strip())

    def open_dialog(self) -> None:
        path = dialogs.ask_open_path(self, "music", "Open audio", self._folder(), AUDIO_FILTER)
        if path:
            self.open_path(path)

    def _recipe(self) -> dict[str, Any] | None:
        return self.clip.recipe if self.settings.write_metadata and self.clip and self.clip.recipe else None

    def save_to(self, path: Path) -> None:
        """The whole clip as heard (mute/solo applied), WAV/FLAC/OGG by extension."""
        if self.clip is None:
            self.status_message.emit("Nothing to save yet")
            return
        try:
            written = write_audio(Path(path), self.audible_mix(), self.clip.rate, self._recipe())
        except (StudioError, OSError) as exc:
            self.status_message.emit(f"Could not save: {exc}")
            return
        self.path = written
        self._saved_clip = self.clip
        self.status_message.emit(f"Saved {written}")

    def export_to(self, path: Path) -> None:
        """The loop selection (or the whole clip) as audio, or the notes as a MIDI file (``.mid``)."""
        if self.clip is None:
            self.status_message.emit("Nothing to export yet")
            return
        path = Path(path)
        try:
            if path.suffix.lower() in (".mid", ".midi"):
                if not self.clip.notes or not self.clip.bpm:
                    self.status_message.emit("Only generated clips have notes to export as MIDI")
                    return
                written = write_midi(path, self.clip.notes, self.clip.bpm, parse_meter(self.clip.meter),
                                     parse_key(self.clip.key) if self.clip.key else None,
                                     length_beats=self.clip.bars * self.clip.beats_per_bar or None)
            else:
                samples = self.audible_mix()
                selection = self.waveform.selection()
                if selection:
                    first, last = (round(t * self.clip.rate) for t in selection)
                    samples = samples[first:last]
                written = write_audio(path, samples, self.clip.rate, self._recipe())
        except (StudioError, OSError) as exc:
            self.status_message.emit(f"Could not export: {exc}")
            return
        self.status_message.emit(f"Exported {written}")

    def save(self) -> None:
        if self.clip is None:
            self.status_message.emit("Nothing to save yet")
            return
        if self.path is not None:
            self.save_to(self.path)
            return
        path = dialogs.ask_save_path(self, "music", "Save clip", self._folder(), f"{self.clip.name}.wav",
                                     SAVE_FILTER)
        if path:
            self.save_to(path)

    def export(self) -> None:
        if self.clip is None:
            self.status_message.emit("Nothing to export yet")
            return
        suffix = "-loop" if self.waveform.selection() else ""
        path = dialogs.ask_save_path(self, "music-export", "Export clip", self._folder(),
                                     f"{self.clip.name}{suffix}.wav", EXPORT_FILTER)
        if path:
            self.export_to(path)

    def _folder(self) -> Path:
        return self.path.parent if self.path else self.settings.resolved_output_dir

    # --- unsaved work -------------------------------------------------------------------------------
    def unsaved_work(self) -> str:
        if self.clip is None or self.clip is self._saved_clip:
            return ""
        return f"the {self.clip.bars}-bar clip {self.clip.name}" if self.clip.bars else f"the clip {self.clip.name}"

    def close_document(self) -> None:
        self._show_clip(None)
        self.undo_stack.clear()
        self.path, self._saved_clip, self._results, self._result_index = None, None, [], -1
        self.status_message.emit("No clip open.")

    def revision(self) -> object:
        return id(self.clip)

    def autosave(self, folder: Path) -> None:
        clip = self.clip
        write_audio(folder / "clip.wav", clip.mix, clip.rate, subtype="FLOAT")  # lossless: it is the only copy
        state = {"rate": clip.rate, "notes": clip.notes, "bpm": clip.bpm, "bars": clip.bars, "meter": clip.meter,
                 "key": clip.key, "recipe": clip.recipe, "name": clip.name, "path": str(self.path or "")}
        text = json.dumps(state, default=lambda value: value.item() if hasattr(value, "item") else str(value))
        write_atomic(folder / "clip.json", text, "the unsaved clip's notes")

    def restore_autosave(self, folder: Path) -> bool:
        try:
            state = json.loads((folder / "clip.json").read_text(encoding="utf-8"))
            samples, rate = read_audio(folder / "clip.wav")
            clip = Clip(samples, rate, notes=list(state["notes"]), bpm=state["bpm"], bars=int(state["bars"]),
                        meter=str(state["meter"]), key=str(state["key"]), recipe=dict(state["recipe"]),
                        name=str(state["name"]))
        except (OSError, ValueError, KeyError, TypeError, StudioError):
            return False
        self.path = Path(state["path"]) if state.get("path") else None
        self._replace_clip(clip, "Restore unsaved clip")
        self.status_message.emit("Restored the clip you had not saved when Studio closed.")
        return True
