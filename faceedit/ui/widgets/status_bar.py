"""The window's status bar: a message too long for the room left ends in '…', never mid-word.

QStatusBar draws a temporary message clipped at whatever pixel the permanent widgets on its
right begin, so on a laptop screen a message was cut mid-word. Here the message is elided to
the room left and the whole text is the bar's tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStatusBar, QWidget

# The status bar's own margins and the size grip, in pixels, beside the permanent widgets.
MESSAGE_MARGIN = 24


class ElidingStatusBar(QStatusBar):
    """A QStatusBar whose temporary messages are elided to fit beside the permanent widgets."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self._full = ""

    def addPermanentWidget(self, widget: QWidget, stretch: int | None = 0) -> None:
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch or 0)

    def showMessage(self, text: str, timeout: int | None = 0) -> None:
        self._full = text
        super().showMessage(self._fitted(text), timeout or 0)
        self.setToolTip(text if self.currentMessage() != text else "")

    def full_message(self) -> str:
        """The last message as it was given, before eliding ("" once it has timed out)."""
        return self._full if self.currentMessage() else ""

    def room(self) -> int:
        """Pixels the message may take: the bar less its visible permanent widgets."""
        taken = sum(w.width() for w in self._permanent if w.isVisible())
        return max(0, self.width() - taken - MESSAGE_MARGIN)

    def _fitted(self, text: str) -> str:
        return self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, self.room())
