"""A one-line prompt field that completes the word being typed from a vocabulary and says which words it knows.

The completion works on the last word only (a prompt is several words); choosing a completion replaces that word.
Under the field, :meth:`WordField.reading` says what the model will use, for the hint label of the panel.
"""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import QCompleter, QLineEdit, QWidget

from studio.core.sprite_tags import MAX_PROMPT_CHARS, PromptReading, TagVocabulary


class WordField(QLineEdit):
    """``reading_changed`` fires with the prompt read in the current vocabulary after every edit."""

    reading_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMaxLength(MAX_PROMPT_CHARS)
        self.setClearButtonEnabled(True)
        self._vocabulary = TagVocabulary(())
        self._words = QStringListModel(self)
        self._completer = QCompleter(self._words, self)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self._completer.setWidget(self)
        self._completer.activated.connect(self._insert)
        self.textEdited.connect(self._on_edited)
        self.textChanged.connect(lambda _: self.reading_changed.emit(self.reading()))

    def set_vocabulary(self, vocabulary: TagVocabulary) -> None:
        self._vocabulary = vocabulary
        self._words.setStringList(list(vocabulary.words))
        self.setEnabled(bool(len(vocabulary)))
        self.setPlaceholderText("e.g. " + ", ".join(vocabulary.words[:3]) if len(vocabulary)
                                else "this model was trained without words")
        self.reading_changed.emit(self.reading())

    def reading(self) -> PromptReading:
        return self._vocabulary.read(self.text())

    def current_word(self) -> str:
        """The word the cursor is typing (letters before the cursor, back to the last space or comma)."""
        before = self.text()[: self.cursorPosition()]
        return before[len(before.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")):]

    def _on_edited(self, _: str) -> None:
        word = self.current_word()
        if len(word) < 1 or not len(self._vocabulary):
            self._completer.popup().hide()
            return
        self._completer.setCompletionPrefix(word)
        if self._completer.completionCount():
            self._completer.complete()
        else:
            self._completer.popup().hide()

    def _insert(self, completion: str) -> None:
        word = self.current_word()
        cursor = self.cursorPosition()
        text = self.text()
        self.setText(text[: cursor - len(word)] + completion + " " + text[cursor:].lstrip())
        self.setCursorPosition(cursor - len(word) + len(completion) + 1)
