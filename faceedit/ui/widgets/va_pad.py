"""A valence-arousal pad: drag a point in [-1, 1] x [-1, 1] (for models trained with those labels)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)


class ValenceArousalPad(QWidget):
    """Valence left (negative) to right (positive), arousal bottom (calm) to top (excited)."""

    valueChanged = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(140, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._value = (0.0, 0.0)
        self.strokes = 0  # mouse presses so far: one drag of the point is one undo step
        self.setToolTip(
            "Drag the point: valence left to right (unpleasant to pleasant), arousal bottom to top (calm to excited)."
        )

    def value(self) -> tuple[float, float]:
        return self._value

    def set_value(self, valence: float, arousal: float) -> None:
        value = (min(max(valence, -1.0), 1.0), min(max(arousal, -1.0), 1.0))
        if value != self._value:
            self._value = value
            self.update()
            self.valueChanged.emit(*value)

    def _square(self) -> QRectF:
        side = min(self.width(), self.height()) - 12
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        square = self._square()
        enabled = self.isEnabled()
        painter.fillRect(square, self.palette().color(self.palette().ColorRole.Base))
        painter.setPen(QPen(self.palette().color(self.palette().ColorRole.Mid), 1))
        painter.drawRect(square)
        c = square.center()
        painter.drawLine(QPointF(square.left(), c.y()), QPointF(square.right(), c.y()))
        painter.drawLine(QPointF(c.x(), square.top()), QPointF(c.x(), square.bottom()))
        painter.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
        flags = Qt.AlignmentFlag
        painter.drawText(
            square.adjusted(4, 2, -4, -2), flags.AlignTop | flags.AlignHCenter, "excited"
        )
        painter.drawText(
            square.adjusted(4, 2, -4, -2), flags.AlignBottom | flags.AlignHCenter, "calm"
        )
        painter.drawText(
            square.adjusted(4, 2, -4, -2), flags.AlignLeft | flags.AlignVCenter, "neg."
        )
        painter.drawText(
            square.adjusted(4, 2, -4, -2), flags.AlignRight | flags.AlignVCenter, "pos."
        )
        v, a = self._value
        point = QPointF(c.x() + v * square.width() / 2, c.y() - a * square.height() / 2)
        colour = QColor(64, 200, 255) if enabled else QColor(150, 150, 150)
        painter.setBrush(colour)
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1.5))
        painter.drawEllipse(point, 7, 7)

    def _set_from(self, pos: QPointF) -> None:
        square = self._square()
        if square.width() <= 0:
            return
        self.set_value(
            (pos.x() - square.center().x()) / (square.width() / 2),
            -(pos.y() - square.center().y()) / (square.height() / 2),
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.strokes += 1
        self._set_from(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._set_from(event.position())

    def sizeHint(self) -> QSize:
        return QSize(180, 180)


class ValenceArousalPanel(QWidget):
    """The pad plus an on/off switch: off means the request carries no valence or arousal."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.use_box = QCheckBox("Steer valence and arousal")
        self.use_box.setToolTip(
            "The loaded model was trained with AffectNet's continuous labels; steer them here."
        )
        self.pad = ValenceArousalPad()
        self.readout = QLabel()
        self.center_button = QPushButton("Centre")
        self.center_button.setAutoDefault(False)
        row = QHBoxLayout()
        row.addWidget(self.readout, 1)
        row.addWidget(self.center_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.use_box)
        layout.addWidget(self.pad, 1)
        layout.addLayout(row)
        self.use_box.toggled.connect(self._on_use)
        self.pad.valueChanged.connect(self._on_value)
        self.center_button.clicked.connect(lambda: self.pad.set_value(0.0, 0.0))
        self._on_use(False)

    def value(self) -> tuple[float, float] | None:
        return self.pad.value() if self.use_box.isChecked() else None

    def set_value(self, value: tuple[float, float] | None, emit: bool = True) -> None:
        """Steer to `value` (None: off); `changed` follows unless `emit` is False (undo)."""
        self.blockSignals(not emit)
        try:
            if value is None:
                self.use_box.setChecked(False)
            else:
                self.use_box.setChecked(True)
                self.pad.set_value(*value)
        finally:
            self.blockSignals(False)

    def _on_use(self, on: bool) -> None:
        self.pad.setEnabled(on)
        self.center_button.setEnabled(on)
        self._show_readout()
        self.changed.emit()

    def _on_value(self, valence: float, arousal: float) -> None:
        self._show_readout()
        if self.use_box.isChecked():
            self.changed.emit()

    def _show_readout(self) -> None:
        v, a = self.pad.value()
        self.readout.setText(
            f"valence {v:+.2f}, arousal {a:+.2f}" if self.use_box.isChecked() else "off"
        )
