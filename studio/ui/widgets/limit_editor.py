"""A plain-text editor that knows each line's character limit: a gutter with role and ``n/limit`` per line,
over-limit lines highlighted, section headings coloured.

The document layout and the limits come from :mod:`studio.core.ad_formats`; this widget only shows them.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QMimeData, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QContextMenuEvent,
    QFont,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QToolTip, QWidget

from studio.core.ad_formats import FORMATS, AdFormat, LineInfo, analyse, fit_prefix, is_heading

OVER_LINE_BG = QColor("#4a1f24")
OVER_CHARS_FG = QColor("#ff8a80")
EXCESS_LINE_BG = QColor("#3d3320")
CURRENT_LINE_BG = QColor("#1d2129")
GUTTER_BG = QColor("#1a1d23")
GUTTER_TEXT = QColor("#6f7889")
GUTTER_OK = QColor("#8b93a3")
GUTTER_OVER = QColor("#ff6b61")
GUTTER_EXCESS = QColor("#f0b65a")
HEADING_FG = QColor("#8fb8ff")


class _HeadingHighlighter(QSyntaxHighlighter):
    """Colours section heading lines (``# Headlines``) as the parser sees them."""

    def __init__(self, editor: LimitEditor) -> None:
        super().__init__(editor.document())
        self._editor = editor
        self._format = QTextCharFormat()
        self._format.setForeground(HEADING_FG)
        self._format.setFontWeight(QFont.Weight.Bold)

    def highlightBlock(self, text: str) -> None:
        if is_heading(text, self._editor.ad_format):
            self.setFormat(0, len(text), self._format)


class _Gutter(QWidget):
    def __init__(self, editor: LimitEditor) -> None:
        super().__init__(editor)
        self._editor = editor

    def sizeHint(self) -> QSize:
        return QSize(self._editor.gutter_width(), 0)

    def paintEvent(self, event: QPaintEvent) -> None:
        self._editor.paint_gutter(self, event)


class LimitEditor(QPlainTextEdit):
    """``analysis_changed`` fires after every edit with one :class:`LineInfo` per line."""

    analysis_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # optional hooks for marks beside a line's role ("L" locked, "P1" pinned, "*" from the brief) and its tooltip
        self.line_marks: Callable[[LineInfo], str] | None = None
        self.line_note: Callable[[LineInfo], str] | None = None
        self.setObjectName("limitEditor")
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setTabChangesFocus(True)
        self._format: AdFormat = FORMATS["google-rsa"]
        self._lines: list[LineInfo] = []
        self.context_actions: list[QAction] = []  # offered first in the right-click menu
        self._gutter = _Gutter(self)
        self._highlighter = _HeadingHighlighter(self)
        self.blockCountChanged.connect(self._update_gutter_width)
        self.updateRequest.connect(self._update_gutter)
        self.cursorPositionChanged.connect(self._update_selections)
        self.document().contentsChanged.connect(self._reanalyse)
        self._update_gutter_width()
        self._reanalyse()

    # --- public ------------------------------------------------------------------------------------
    @property
    def ad_format(self) -> AdFormat:
        return self._format

    def set_format(self, fmt: AdFormat) -> None:
        self._format = fmt
        self._reanalyse()
        self._highlighter.rehighlight()

    @property
    def lines(self) -> list[LineInfo]:
        return list(self._lines)

    def line_info(self, block_number: int) -> LineInfo | None:
        return self._lines[block_number] if 0 <= block_number < len(self._lines) else None

    def over_limit_lines(self) -> list[int]:
        """Block numbers of lines that are over their limit or beyond the field's maximum count."""
        return [i for i, info in enumerate(self._lines) if info.over or info.excess]

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        """Dropped files are opened by the window, not pasted as their path."""
        return not source.hasUrls() and super().canInsertFromMimeData(source)

    # --- undo keys belong to the window ----------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        """Let Ctrl+Z / Ctrl+Shift+Z reach the window's Undo/Redo actions, which drive the workspace undo stack
        (itself mirroring this document's undo steps), so there is one undo path whatever has focus."""
        if event.type() == QEvent.Type.ShortcutOverride and (
            event.matches(QKeySequence.StandardKey.Undo) or event.matches(QKeySequence.StandardKey.Redo)
        ):
            event.ignore()
            return False
        if event.type() == QEvent.Type.ToolTip and self.line_note is not None:
            block = self.cursorForPosition(self.viewport().mapFrom(self, event.pos())).blockNumber()
            info = self.line_info(block)
            note = self.line_note(info) if info is not None and info.kind == "item" else ""
            if note:
                QToolTip.showText(event.globalPos(), note, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """The standard menu without its own Undo/Redo (they would bypass the workspace undo stack)."""
        menu = self.createStandardContextMenu(event.pos())
        for action in menu.actions():
            if action.objectName() in ("edit-undo", "edit-redo"):
                menu.removeAction(action)
        if self.context_actions:
            first = menu.actions()[0] if menu.actions() else None
            menu.insertActions(first, self.context_actions)
            menu.insertSeparator(first)
        menu.exec(event.globalPos())
        menu.deleteLater()

    # --- analysis and highlighting -----------------------------------------------------------------
    def _reanalyse(self) -> None:
        self._lines = analyse(self.toPlainText(), self._format)
        self._update_selections()
        self._gutter.update()
        self.analysis_changed.emit(self.lines)

    def _update_selections(self) -> None:
        selections = []
        current = QTextEdit.ExtraSelection()
        current.format.setBackground(CURRENT_LINE_BG)
        current.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        current.cursor = self.textCursor()
        current.cursor.clearSelection()
        selections.append(current)
        doc: QTextDocument = self.document()
        for number, info in enumerate(self._lines):
            if not (info.over or info.excess):
                continue
            block = doc.findBlockByNumber(number)
            line = QTextEdit.ExtraSelection()
            line.format.setBackground(EXCESS_LINE_BG if info.excess and not info.over else OVER_LINE_BG)
            line.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            line.cursor = QTextCursor(block)
            selections.append(line)
            if info.over and info.limit is not None:
                cut = fit_prefix(block.text(), info.limit, self._format)
                chars = QTextEdit.ExtraSelection()
                chars.format.setForeground(OVER_CHARS_FG)
                chars.format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
                chars.format.setUnderlineColor(OVER_CHARS_FG)
                cursor = QTextCursor(block)
                cursor.setPosition(block.position() + cut)
                cursor.setPosition(block.position() + block.length() - 1, QTextCursor.MoveMode.KeepAnchor)
                chars.cursor = cursor
                selections.append(chars)
        self.setExtraSelections(selections)

    # --- gutter ------------------------------------------------------------------------------------
    def gutter_width(self) -> int:
        return self.fontMetrics().horizontalAdvance("H15 L P3 125/125") + 22

    def update_gutter(self) -> None:
        """Repaint the gutter (after the marks a ``line_marks`` hook draws have changed)."""
        self._gutter.update()

    def _update_gutter_width(self, _count: int = 0) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _update_gutter(self, rect: QRect, dy: int) -> None:
        if dy:
            self._gutter.scroll(0, dy)
        else:
            self._gutter.update(0, rect.y(), self._gutter.width(), rect.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_gutter()

    def changeEvent(self, event: QEvent) -> None:
        """A style sheet or font change alters the gutter's width."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._update_gutter_width()
            self._place_gutter()

    def _place_gutter(self) -> None:
        area = self.contentsRect()
        self._gutter.setGeometry(QRect(area.left(), area.top(), self.gutter_width(), area.height()))

    def paint_gutter(self, gutter: QWidget, event: QPaintEvent) -> None:
        painter = QPainter(gutter)
        painter.fillRect(event.rect(), GUTTER_BG)
        painter.setPen(QColor("#2a2e36"))
        painter.drawLine(gutter.width() - 1, event.rect().top(), gutter.width() - 1, event.rect().bottom())
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        block = self.firstVisibleBlock()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        height = self.fontMetrics().height()
        width = gutter.width() - 10
        while block.isValid() and top <= event.rect().bottom():
            role, count, over = self.gutter_text(block.blockNumber())
            if block.isVisible() and count:
                painter.setPen(GUTTER_EXCESS if role == "extra" else GUTTER_TEXT)
                painter.drawText(8, top, width, height, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                 role)
                painter.setPen(GUTTER_OVER if over else GUTTER_OK)
                painter.drawText(0, top, width, height, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                                 count)
            top += round(self.blockBoundingRect(block).height())
            block = block.next()
        painter.end()

    def gutter_text(self, block_number: int) -> tuple[str, str, bool]:
        """(role, counter, counter is red) as the gutter draws them for a line (for tests and accessibility)."""
        info = self.line_info(block_number)
        if info is None or info.kind != "item":
            return "", "", False
        role = "extra" if info.excess else info.role
        if self.line_marks is not None and not info.excess:
            role = (role + " " + self.line_marks(info)).strip()
        count = f"{info.length}/{info.limit}" if info.limit is not None else str(info.length)
        return role, count, info.over
