"""The aligned face crop the model sees, with the segmentation overlay drawn over it."""

from __future__ import annotations

from typing import Final, Literal

import cv2
import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from faceedit.ui.overlay import OverlaySettings, attention_image, render_overlay
from faceedit.ui.widgets.image_view import ImageView

CropBase = Literal["input", "edited", "attention"]
BASES: Final[dict[CropBase, str]] = {
    "input": "Input crop",
    "edited": "Edited crop",
    "attention": "Where the model edits",
}
# Small crops (32 px test models) are enlarged before the overlay so outlines stay thin.
MIN_DISPLAY: Final[int] = 256


class CropPanel(QWidget):
    """Shows the chosen face's crop (input, edited or the generator's attention) under the overlay."""

    baseChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView("The aligned face crop appears here once a face is found.")
        self.view.setMinimumSize(160, 160)
        self.base = QComboBox()
        for key, text in BASES.items():
            self.base.addItem(text, key)
        self.base.setToolTip(
            "Input crop: what the model receives. Edited crop: what it returns. Where the model "
            "edits: bright where the generators replace pixels, dark where they keep the input."
        )
        self.info = QLabel()
        self.info.setStyleSheet("color: palette(mid);")
        row = QHBoxLayout()
        row.addWidget(self.base)
        row.addStretch(1)
        row.addWidget(self.info)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        self._crop: np.ndarray | None = None
        self._edited: np.ndarray | None = None
        self._attention: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._settings = OverlaySettings()
        self.base.currentIndexChanged.connect(self._on_base)

    @property
    def base_choice(self) -> CropBase:
        choice: CropBase = self.base.currentData()  # the items' data are CropBase names
        return choice

    def set_base(self, base: CropBase) -> None:
        self.base.setCurrentIndex(list(BASES).index(base))

    def set_data(
        self,
        crop: np.ndarray | None,
        edited: np.ndarray | None,
        attention: np.ndarray | None,
        labels: np.ndarray | None,
    ) -> None:
        self._crop, self._edited, self._attention, self._labels = crop, edited, attention, labels
        if crop is None:
            self.info.setText("")
        else:
            self.info.setText(f"{crop.shape[1]}x{crop.shape[0]} px")
        self._render()

    def set_overlay(self, settings: OverlaySettings) -> None:
        self._settings = settings
        self._render()

    def displayed(self) -> np.ndarray | None:
        """The rendered crop exactly as shown (overlay included), in its own pixels."""
        return self.view.image()

    def _on_base(self) -> None:
        self.baseChanged.emit(self.base_choice)
        self._render()

    def _base_image(self) -> np.ndarray | None:
        base = self.base_choice
        if base == "edited" and self._edited is not None:
            return self._edited
        if base == "attention" and self._attention is not None:
            return attention_image(self._attention)
        return self._crop

    def _render(self) -> None:
        image = self._base_image()
        if image is None:
            self.view.set_image(None)
            return
        if image.shape[0] < MIN_DISPLAY:
            factor = -(-MIN_DISPLAY // image.shape[0])
            size = (image.shape[1] * factor, image.shape[0] * factor)
            image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
        if self._labels is not None:
            image = render_overlay(image, self._labels, self._settings)
        self.view.set_image(image)
