"""Live plots: per-stage latency and frames per second over the last seconds, and the model's
expression scores for the input and the edited face."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Final

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from faceedit.state.document import NO_MODEL_SCORES
from faceedit.vocab.expressions import EXPRESSIONS

HISTORY_S: Final[float] = 10.0
REDRAW_MS: Final[int] = 250  # plots redraw at most 4 times a second, however fast frames come
STAGE_COLOURS: Final[dict[str, tuple[int, int, int]]] = {
    "detect": (230, 159, 0),
    "parse": (86, 180, 233),
    "generate": (0, 158, 115),
    "paste": (204, 121, 167),
}
INPUT_BRUSH: Final[tuple[int, int, int]] = (150, 150, 150)
EDITED_BRUSH: Final[tuple[int, int, int]] = (64, 160, 255)


class PlotsPanel(QWidget):
    """Latency, FPS and expression-score plots; cheap to feed, redrawn on a timer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        background = self.palette().color(self.backgroundRole())
        foreground = self.palette().color(self.foregroundRole())
        self._times: deque[float] = deque()
        self._samples: deque[Mapping[str, float]] = deque()

        self.latency = pg.PlotWidget(background=background)
        self.latency.setTitle("Latency per stage (ms)", color=foreground, size="9pt")
        self.latency.showGrid(x=True, y=True, alpha=0.2)
        self.latency.setLabel("bottom", "seconds ago")
        self.latency.setXRange(-HISTORY_S, 0, padding=0)
        self.latency.setMouseEnabled(x=False, y=False)
        self.latency.enableAutoRange(x=False, y=False)
        legend = self.latency.addLegend(offset=(6, 6), labelTextSize="8pt")
        legend.setColumnCount(2)  # four in a row were cut off beside the frame-rate plot
        self.curves = {
            stage: self.latency.plot(
                [],
                [],
                name=stage,
                pen=pg.mkPen(colour, width=2),
                symbol="o",
                symbolSize=4,
                symbolPen=None,
                symbolBrush=colour,
            )
            for stage, colour in STAGE_COLOURS.items()
        }

        self.fps = pg.PlotWidget(background=background)
        self.fps.setTitle("Frames per second", color=foreground, size="9pt")
        self.fps.showGrid(x=True, y=True, alpha=0.2)
        self.fps.setXRange(-HISTORY_S, 0, padding=0)
        self.fps.setMouseEnabled(x=False, y=False)
        self.fps.enableAutoRange(x=False, y=False)
        self.fps_curve = self.fps.plot([], [], pen=pg.mkPen((220, 220, 90), width=2))
        self.fps.hide()  # shown for video and cameras; a still image has no frame rate

        self._build_scores(background, foreground)
        self.scores_note = QLabel()
        self.scores_note.setWordWrap(True)
        self.scores_note.setStyleSheet("color: palette(mid);")

        # One row: the dock is short on a laptop screen, and the frame-rate plot stacked under
        # the latency plot squeezed it to a sliver during video (issue 30).
        right = QVBoxLayout()
        right.addWidget(self.scores, 1)
        right.addWidget(self.scores_note)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.latency, 3)
        layout.addWidget(self.fps, 2)
        layout.addLayout(right, 3)
        for plot in (self.latency, self.fps, self.scores):
            _cache_static_parts(plot)
        self._y_top = {self.latency: 0.0, self.fps: 0.0}
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self.redraw)
        self._edited = np.zeros(len(EXPRESSIONS))
        self.set_scores(None, None)

    def _build_scores(self, background: QColor, foreground: QColor) -> None:
        """The expression-score bars: the input's and the edited face's, side by side."""
        self.scores = pg.PlotWidget(background=background)
        self.scores.setTitle("Expression scores", color=foreground, size="9pt")
        self.scores.setToolTip("The loaded model's classifier (its discriminator's head)")
        self.scores.setYRange(0, 1, padding=0.02)
        self.scores.setMouseEnabled(x=False, y=False)
        axis = self.scores.getAxis("bottom")
        axis.setTicks([[(i, name[:3]) for i, name in enumerate(EXPRESSIONS)]])
        self.scores.addLegend(offset=(-6, 6), labelTextSize="8pt")
        x = np.arange(len(EXPRESSIONS), dtype=float)
        zeros = np.zeros(len(EXPRESSIONS))
        self.input_bars = pg.BarGraphItem(
            x=x - 0.2, height=zeros, width=0.38, brush=INPUT_BRUSH, name="input"
        )
        self.edited_bars = pg.BarGraphItem(
            x=x + 0.2, height=zeros, width=0.38, brush=EDITED_BRUSH, name="edited"
        )
        self.scores.addItem(self.input_bars)
        self.scores.addItem(self.edited_bars)

    # ---- feeding ------------------------------------------------------------------------------

    def add_timings(self, timings: Mapping[str, float], at: float | None = None) -> None:
        """Record one processed frame's stage timings (ms); plots refresh shortly after."""
        now = time.monotonic() if at is None else at
        self._times.append(now)
        self._samples.append(dict(timings))
        while self._times and now - self._times[0] > HISTORY_S:
            self._times.popleft()
            self._samples.popleft()
        if not self._redraw.isActive():
            self._redraw.start()

    def set_streaming(self, streaming: bool) -> None:
        """Show the frames-per-second plot only while frames keep coming (video, camera)."""
        self.fps.setVisible(streaming)

    def clear(self) -> None:
        self._edited = np.zeros(len(EXPRESSIONS))
        self._times.clear()
        self._samples.clear()
        self.redraw()

    def frames_per_second(self, now: float | None = None) -> float:
        """Frames finished in the last second (the rate the user actually sees)."""
        now = time.monotonic() if now is None else now
        return float(sum(1 for t in self._times if now - t <= 1.0))

    def set_scores(
        self,
        input_scores: np.ndarray | None,
        edited_scores: np.ndarray | None,
        why_none: str = NO_MODEL_SCORES,
    ) -> None:
        """Bar heights; without scores the chart hides and `why_none` says why (no classifier
        in the model, or no face to score)."""
        has_scores = input_scores is not None
        self.scores.setVisible(has_scores)
        if not has_scores:
            self.scores_note.setText(why_none)
            return
        self.scores_note.setText("")
        self.input_bars.setOpts(height=np.asarray(input_scores, dtype=float))
        if edited_scores is not None:
            self._edited = np.asarray(edited_scores, dtype=float)
        # None: not refreshed this frame (scored at most every 0.5 s while frames keep coming):
        # the last edited scores stand, never bars of zero.
        self.edited_bars.setOpts(height=self._edited)

    # ---- drawing ------------------------------------------------------------------------------

    def redraw(self) -> None:
        now = time.monotonic()
        ages = np.asarray([t - now for t in self._times], dtype=float)
        peak = 0.0
        for stage, curve in self.curves.items():
            values = np.asarray([s.get(stage, 0.0) for s in self._samples], dtype=float)
            curve.setData(ages, values)
            peak = max(peak, float(values.max(initial=0.0)))
        self._set_top(self.latency, peak)
        if len(ages):
            # FPS at each sample: frames in the second before it.
            times = np.asarray(self._times, dtype=float)
            counts = np.searchsorted(times, times, side="right") - np.searchsorted(
                times, times - 1.0, side="left"
            )
            self.fps_curve.setData(ages, counts.astype(float))
            self._set_top(self.fps, float(counts.max()))
        else:
            self.fps_curve.setData([], [])

    def _set_top(self, plot: pg.PlotWidget, peak: float) -> None:
        """Y axis from 0 to a round number above the peak, changed only when that number changes:
        re-laying out an axis's tick labels is the costliest part of a redraw."""
        top = nice_ceiling(peak)
        if top != self._y_top[plot]:
            self._y_top[plot] = top
            plot.setYRange(0.0, top, padding=0.0)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `value` (1 for nothing)."""
    if value <= 1.0:
        return 1.0
    exponent = float(10.0 ** np.floor(np.log10(value)))
    for step in (1.0, 2.0, 5.0, 10.0):
        if value <= step * exponent:
            return step * exponent
    return 10.0 * exponent


def _cache_static_parts(plot: pg.PlotWidget) -> None:
    """The time axis, title and legend never change; cache them as pixmaps so a moving curve
    does not re-render their text on every repaint (text is slow to draw on a busy CPU). The
    value axis is left uncached: its width follows its labels, which a stale cache would clip."""
    item = plot.getPlotItem()
    parts = [item.getAxis("bottom"), item.titleLabel]
    if item.legend is not None:
        parts.append(item.legend)
    for part in parts:
        part.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
