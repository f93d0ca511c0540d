"""Tool icons drawn as pixel art from text, so the pixel editor needs no image files and stays crisp."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap

COLORS = {
    "a": "#e6e9ef",  # light line
    "b": "#5fb3ff",  # accent blue
    "c": "#e8c170",  # wood
    "d": "#e07a8a",  # eraser pink
    "e": "#8a8f98",  # grey
}

ICONS: dict[str, tuple[str, ...]] = {
    "pencil": (
        "..........dd",
        ".........ddd",
        "........cadd",
        ".......ccca.",
        "......ccca..",
        ".....ccca...",
        "....ccca....",
        "...ccca.....",
        "..acca......",
        "..eaa.......",
        ".ee.........",
        "............",
    ),
    "eraser": (
        "............",
        "......dddd..",
        ".....dddddd.",
        "....ddddddd.",
        "...addddddd.",
        "..aaadddd...",
        ".aaaaadd....",
        ".aaaaa......",
        "..aaa.......",
        "...a........",
        "............",
        ".eeeeeeeeee.",
    ),
    "fill": (
        "............",
        "....aa......",
        "...a..a.....",
        "...a.aaa....",
        "...aaaaaa...",
        "..aaaaaaaa..",
        ".aaaaaaaaab.",
        "..aaaaaaa.b.",
        "...aaaaa..bb",
        "....aaa...bb",
        ".....a......",
        "............",
    ),
    "eyedropper": (
        ".........ee.",
        "........eeee",
        ".......eeee.",
        "......aaee..",
        ".....a.aa...",
        "....a.a.....",
        "...a.a......",
        "..abb.......",
        ".abb........",
        ".bb.........",
        "b...........",
        "............",
    ),
    "select": (
        "............",
        ".aa.aa.aa.a.",
        ".a..........",
        "..........a.",
        ".a........a.",
        ".a..........",
        "..........a.",
        ".a........a.",
        ".a..........",
        "..........a.",
        ".a.aa.aa.aa.",
        "............",
    ),
    "grid": (
        "............",
        ".eeeeeeeeee.",
        ".e..e..e..e.",
        ".e..e..e..e.",
        ".eeeeeeeeee.",
        ".e..e..e..e.",
        ".e..e..e..e.",
        ".eeeeeeeeee.",
        ".e..e..e..e.",
        ".e..e..e..e.",
        ".eeeeeeeeee.",
        "............",
    ),
}


def pixel_icon(name: str, scale: int = 2) -> QIcon:
    """The named icon at ``scale`` screen pixels per icon pixel (nearest-neighbour)."""
    rows = ICONS[name]
    image = QImage(len(rows[0]), len(rows), QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    for y, row in enumerate(rows):
        for x, key in enumerate(row):
            if key in COLORS:
                image.setPixelColor(x, y, QColor(COLORS[key]))
    scaled = image.scaled(image.width() * scale, image.height() * scale)  # default: fast = nearest
    return QIcon(QPixmap.fromImage(scaled))
