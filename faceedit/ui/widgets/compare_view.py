"""Before and after: side by side (views kept in step) or one view with a draggable split line."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from faceedit.ui.settings import CompareMode
from faceedit.ui.widgets.image_view import ImageView

PLACEHOLDER = (
    "Open an image or a video (Ctrl+O), a camera (Ctrl+Shift+O),\n"
    "or drop a file or a checkpoint here."
)


class CompareView(QWidget):
    """The frame before and after editing, with every detected face boxed (click to choose)."""

    faceClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before_view = ImageView(PLACEHOLDER)
        self.after_view = ImageView(PLACEHOLDER)
        self.before_view.setToolTip("The input. Wheel: zoom, drag: pan, double-click: fit.")
        self.after_view.setToolTip(
            "The edited frame. Wheel: zoom, drag: pan, double-click: fit, click a face to choose it."
        )
        self._splitter = QSplitter(Qt.Orientation.Horizontal)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.addWidget(self.before_view)
        self._splitter.addWidget(self.after_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._splitter)
        self._mode: CompareMode = "split"
        self._before: np.ndarray | None = None
        self._after: np.ndarray | None = None
        for view in (self.before_view, self.after_view):
            view.faceClicked.connect(self.faceClicked)
        self.before_view.viewChanged.connect(
            lambda s, c: self._follow(self.before_view, self.after_view, s, c)
        )
        self.after_view.viewChanged.connect(
            lambda s, c: self._follow(self.after_view, self.before_view, s, c)
        )
        self.set_mode("split")

    @property
    def mode(self) -> CompareMode:
        return self._mode

    def set_mode(self, mode: CompareMode) -> None:
        self._mode = mode
        split = mode == "split"
        self.before_view.setVisible(not split)
        self.after_view.set_split_enabled(split)
        self.after_view.set_captions("Before", "After") if split else self.after_view.set_captions(
            "", ""
        )
        self._show()
        self.after_view.zoom_to_fit()
        self.before_view.zoom_to_fit()

    def set_frames(
        self,
        before: np.ndarray | None,
        after: np.ndarray | None,
        boxes: Sequence[np.ndarray] = (),
        chosen: Sequence[int] = (),
    ) -> None:
        self._before, self._after = before, after
        self._show()
        for view in (self.before_view, self.after_view):
            view.set_faces(boxes, chosen)

    def _show(self) -> None:
        if self._mode == "split":
            self.after_view.set_image(self._after, self._before)
        else:
            self.before_view.set_image(self._before)
            self.after_view.set_image(self._after)

    def zoom_to_fit(self) -> None:
        self.after_view.zoom_to_fit()
        self.before_view.zoom_to_fit()

    def zoom_actual(self) -> None:
        self.after_view.zoom_actual()

    def zoom_by(self, factor: float) -> None:
        self.after_view.zoom_by(factor)

    @staticmethod
    def _follow(leader: ImageView, view: ImageView, scale: float, center: QPointF) -> None:
        # Only a view on screen leads: the hidden one of split mode, fitted to its stale size,
        # zoomed a new photo past fit in the shown one (issue 30).
        if leader.isVisible() and view.isVisible() and view.has_image():
            view.set_view(scale, center)

    def displayed(self) -> np.ndarray | None:
        """What the after view shows, in image pixels (the split composite in split mode)."""
        return self.after_view.composite()
