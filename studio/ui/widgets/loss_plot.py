"""Live loss curves: one pyqtgraph curve per loss, created once and updated with setData (no redraw storms)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

COLOURS = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176")


class LossPlot(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="#1e1f22")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLabel("bottom", "training step")
        self.setLabel("left", "error (lower is better)")
        self.addLegend(offset=(-10, 10))
        self.setDownsampling(auto=True, mode="peak")
        self.setClipToView(True)
        self._steps: dict[str, list[float]] = {}
        self._values: dict[str, list[float]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}

    def clear_curves(self) -> None:
        for curve in self._curves.values():
            self.removeItem(curve)
        self._curves.clear()
        self._steps.clear()
        self._values.clear()

    def add_point(self, step: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            if name not in self._curves:
                colour = COLOURS[len(self._curves) % len(COLOURS)]
                self._curves[name] = self.plot(name=name, pen=pg.mkPen(colour, width=1.5))
                self._steps[name], self._values[name] = [], []
            self._steps[name].append(float(step))
            self._values[name].append(float(value))
            self._curves[name].setData(np.asarray(self._steps[name]), np.asarray(self._values[name]))

    def series(self, name: str) -> tuple[list[float], list[float]]:
        return self._steps.get(name, []), self._values.get(name, [])
