"""An inline message strip above the picture: non-modal, so the app stays usable under it."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Final, Literal

from PySide6.QtCore import Qt, QUrl
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


DOCS: Final[Path] = Path(__file__).resolve().parents[3] / "docs"
_DOC_PATH: Final[re.Pattern[str]] = re.compile(r"docs/([\w-]+\.md)")


def with_doc_links(text: str) -> str:
    """`text` as rich text, each `docs/NAME.md` a link to that page where faceedit's docs are
    installed beside it (a source checkout); plain escaped text otherwise."""

    def link(match: re.Match[str]) -> str:
        page = DOCS / match.group(1)
        if not page.is_file():
            return match.group(0)
        url = QUrl.fromLocalFile(str(page)).toString()
        return f'<a href="{url}" style="color: #ffffff;">{match.group(0)}</a>'

    escaped = html.escape(text).replace("\n", "<br>")
    return _DOC_PATH.sub(link, escaped)


class MessageBar(QFrame):
    """Shows one message at a time with an icon and a close button; hidden when empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self.icon = QLabel()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.text.setTextFormat(Qt.TextFormat.RichText)  # escaped by with_doc_links
        self.text.setOpenExternalLinks(True)
        self._plain = ""
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
        self._plain = text
        self.text.setText(with_doc_links(text))
        self.show()

    def message(self) -> str:
        """The message as plain text (links shown as their words)."""
        return self._plain

    def clear(self) -> None:
        self.kind = None
        self._plain = ""
        self.text.setText("")
        self.hide()
