"""The seed field of every generation panel: a fresh random seed for each Generate, shown, and lockable (as the
"randomize / fixed" seed of ComfyUI and Krita's AI Diffusion).

Unlocked (the default), :meth:`SeedBox.next_seed` draws a new seed, shows it and returns it, so Generate never
repeats itself by accident and the seed of what is on screen can always be read off. Locked, the shown seed is used
again. Typing a seed or restoring a recipe locks it (the user wants that very seed); the dice draws a new one now.
"""

from __future__ import annotations

import secrets

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QSpinBox, QToolButton, QWidget

from studio.ui.icons import icon

MAX_SEED = 2**31 - 1
UNLOCKED_TIP = "New seed for every Generate (click to keep this seed)"
LOCKED_TIP = "This seed is kept for every Generate (click for a new seed each time)"


class SeedBox(QSpinBox):
    locked_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._drawing = False
        self.setRange(0, MAX_SEED)
        self.setMinimumWidth(100)
        self.setToolTip("Seed: the same seed, settings and model make the same result")
        self.dice_button = QToolButton()
        self.dice_button.setIcon(icon("dice"))
        self.dice_button.setToolTip("A new random seed now")
        self.dice_button.clicked.connect(self.draw)
        self.lock_button = QToolButton()
        self.lock_button.setCheckable(True)
        self.lock_button.toggled.connect(self._on_lock_toggled)
        self._on_lock_toggled(False)
        self.valueChanged.connect(self._on_value_changed)
        self.draw()

    @property
    def locked(self) -> bool:
        return self.lock_button.isChecked()

    def set_locked(self, locked: bool) -> None:
        self.lock_button.setChecked(locked)

    def draw(self) -> int:
        """Show a new random seed (the lock stays as it is)."""
        self._drawing = True
        try:
            self.setValue(secrets.randbelow(MAX_SEED + 1))
        finally:
            self._drawing = False
        return self.value()

    def next_seed(self) -> int:
        """The seed for the Generate being started: a new one unless locked."""
        return self.value() if self.locked else self.draw()

    def row(self) -> QHBoxLayout:
        """The field with its dice and lock, for a form row."""
        layout = QHBoxLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self, 1)
        layout.addWidget(self.dice_button)
        layout.addWidget(self.lock_button)
        return layout

    def _on_value_changed(self, _value: int) -> None:
        if not self._drawing:
            self.set_locked(True)

    def _on_lock_toggled(self, locked: bool) -> None:
        self.lock_button.setIcon(icon("lock" if locked else "unlock"))
        self.lock_button.setToolTip(LOCKED_TIP if locked else UNLOCKED_TIP)
        self.locked_changed.emit(locked)
