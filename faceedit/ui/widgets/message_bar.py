"""An inline message strip above the picture: non-modal, so the app stays usable under it."""

from __future__ import annotations

from typing import Final, Literal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget

MessageKind = Literal["info", "warning", "error"]
_STYLES: Final[dict[MessageKind, str]] = {
    "info": "background: #1f4e79; color: #f0f6fc;",
    "warning": "background: #7a5c00; color: #fff8e1;",
    "error": "background: #8b1e1e; color: #fff0f0;",
}
_ICONS: Final[dict[MessageKind, QStyle.StandardPixmap]] = {
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
}


class MessageBar(QFrame):
    """Shows one message at a time with an icon and a close button; hidden when empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.kind: MessageKind | None = None
        self.hide()

    def show_message(self, kind: MessageKind, text: str) -> None:
        self.kind = kind
        self.setStyleSheet(
            f"#MessageBar {{ {_STYLES[kind]} border-radius: 4px; }} QLabel {{ {_STYLES[kind]} }}"
        )
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self.icon.setPixmap(self.style().standardIcon(_ICONS[kind]).pixmap(size, size))
        self.text.setText(text)
        self.show()

    def message(self) -> str:
        return self.text.text()

    def clear(self) -> None:
        self.kind = None
        self.text.setText("")
        self.hide()
