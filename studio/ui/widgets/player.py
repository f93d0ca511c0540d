"""Audio playback through QtMultimedia (QMediaPlayer + QAudioOutput) from temporary WAV files.

Loop playback: the selected region is written to its own WAV and played with ``QMediaPlayer.setLoops(Infinite)``,
so the media backend wraps at the end of the data itself. Seeking back from a ``positionChanged`` handler or a
timer would leave a gap of up to a timer tick plus the output buffer at every wrap; a loop that is exactly
bars x beats long must wrap on the sample. A 16 ms QTimer reads ``position()`` while playing to move the playhead
(clip time = loop start + position in the loop file).

QtMultimedia may be missing (no libpulse) or have no output device (offscreen CI, headless servers): the player
then reports why in :attr:`problem`; with no device the backend still runs silently, so the playhead still moves.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, QUrl, Signal

from studio.core.formats.audio import write_audio

try:
    from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
except ImportError as exc:  # a system library of QtMultimedia is missing
    QAudioOutput = QMediaDevices = QMediaPlayer = None
    _IMPORT_PROBLEM: str | None = f"audio playback unavailable ({exc})"
else:
    _IMPORT_PROBLEM = None

NO_DEVICE = "Music: no audio output device, playback is silent"
TICK_MS = 16


def warm_up() -> None:
    """Load QtMultimedia's backend plugin now, on the UI thread, before the model worker starts importing torch.

    Seen under pytest-qt: the UI thread creating the first QAudioOutput (which dlopen()s the FFmpeg plugin and logs
    through Qt's message handler, a Python function there) while the worker thread imported torch's extension
    modules (dlopen() with the GIL held) deadlocked. Call this before creating the Engine; players created later
    find the plugin loaded."""
    if QMediaDevices is not None:
        QMediaDevices.audioOutputs()


class AudioPlayer(QObject):
    """Plays one clip. ``position_changed`` carries clip seconds; ``state_changed`` "playing"/"paused"/"stopped"."""

    position_changed = Signal(float)
    state_changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._dir = tempfile.TemporaryDirectory(prefix="studio-play-")
        self._names = itertools.count()
        self._samples: np.ndarray | None = None
        self._rate = 0
        self._clip_file: Path | None = None
        self._loop: tuple[float, float] | None = None
        self._offset = 0.0  # clip seconds at position 0 of the current source
        self._pending_seek_ms: int | None = None
        self._state = "stopped"
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._player = None
        if QMediaPlayer is not None:
            self._output = QAudioOutput(self)
            self._player = QMediaPlayer(self)
            self._player.setAudioOutput(self._output)
            self._player.mediaStatusChanged.connect(self._on_media_status)
        self.destroyed.connect(self._dir.cleanup)

    # --- state ----------------------------------------------------------------------------------------
    @property
    def problem(self) -> str | None:
        """Why playback is unavailable or silent, or None."""
        if _IMPORT_PROBLEM:
            return _IMPORT_PROBLEM
        return None if QMediaDevices.audioOutputs() else NO_DEVICE

    @property
    def can_play(self) -> bool:
        return self._player is not None and self._samples is not None

    @property
    def state(self) -> str:
        return self._state

    @property
    def looping(self) -> bool:
        return self._loop is not None

    def position(self) -> float:
        """Current clip time in seconds."""
        if self._player is None:
            return 0.0
        return self._offset + self._player.position() / 1000.0

    # --- control ----------------------------------------------------------------------------------------
    def set_clip(self, samples: np.ndarray | None, rate: int) -> None:
        """Replace what plays (stops playback)."""
        self.stop()
        self._samples = None if samples is None else np.asarray(samples, dtype=np.float32)
        self._rate = int(rate)
        self._clip_file = None
        if self._samples is not None and self._player is not None:
            self._clip_file = self._write(self._samples)
            self._use_source(self._clip_file, loops=1, offset=0.0)

    def play(self, start: float = 0.0, loop: tuple[float, float] | None = None) -> None:
        """Play from ``start`` seconds, or loop ``loop`` = (start, end) seconds forever."""
        if not self.can_play:
            return
        if loop is not None and loop[1] > loop[0]:
            first, last = (round(t * self._rate) for t in loop)
            self._use_source(self._write(self._samples[first:last]), loops=-1, offset=first / self._rate)
            self._loop = (first / self._rate, last / self._rate)
        else:
            if self._loop is not None or self._player.source() != QUrl.fromLocalFile(str(self._clip_file)):
                self._use_source(self._clip_file, loops=1, offset=0.0)
            self._loop = None
            self._seek_ms(int(max(0.0, start) * 1000))
        self._player.play()
        self._set_state("playing")

    def resume(self) -> None:
        if self.can_play and self._state == "paused":
            self._player.play()
            self._set_state("playing")

    def pause(self) -> None:
        if self._player is not None and self._state == "playing":
            self._player.pause()
            self._set_state("paused")

    def stop(self) -> None:
        if self._player is not None and self._state != "stopped":
            self._player.stop()
            self._set_state("stopped")
            self.position_changed.emit(self._loop[0] if self._loop else 0.0)

    def seek(self, seconds: float) -> None:
        """Jump to a clip time (leaves loop playback, which has its own file)."""
        if not self.can_play:
            return
        if self._loop is not None:
            playing = self._state == "playing"
            self._use_source(self._clip_file, loops=1, offset=0.0)
            self._loop = None
            if playing:
                self._player.play()
        self._seek_ms(int(max(0.0, seconds) * 1000))

    # --- internals ----------------------------------------------------------------------------------------
    def _write(self, samples: np.ndarray) -> Path:
        path = Path(self._dir.name) / f"play-{next(self._names)}.wav"
        write_audio(path, samples, self._rate)
        return path

    def _use_source(self, path: Path, loops: int, offset: float) -> None:
        self._player.stop()
        self._player.setSource(QUrl.fromLocalFile(str(path)))
        self._player.setLoops(loops)
        self._offset = offset

    def _seek_ms(self, ms: int) -> None:
        status = self._player.mediaStatus()
        if status in (QMediaPlayer.MediaStatus.LoadingMedia, QMediaPlayer.MediaStatus.NoMedia):
            self._pending_seek_ms = ms  # applied once the media is loaded
        else:
            self._player.setPosition(ms)

    def _on_media_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and self._pending_seek_ms is not None:
            self._player.setPosition(self._pending_seek_ms)
            self._pending_seek_ms = None
        elif status == QMediaPlayer.MediaStatus.EndOfMedia and self._loop is None:
            self._set_state("stopped")
            self.position_changed.emit(self.duration)

    @property
    def duration(self) -> float:
        return 0.0 if self._samples is None else len(self._samples) / self._rate

    def _set_state(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        if state == "playing":
            self._timer.start()
        else:
            self._timer.stop()
        self.state_changed.emit(state)

    def _tick(self) -> None:
        self.position_changed.emit(self.position())
