"""About faceedit: versions of everything that shapes a result, the device and the model in use."""

from __future__ import annotations

import html
from collections.abc import Mapping

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from faceedit import __version__


def about_rows(
    versions: Mapping[str, str], device: str | None, model: str | None
) -> list[tuple[str, str]]:
    """(name, value) rows: versions first (faceedit, Qt, PySide6, torch, ...), then device, model."""
    rows = [
        ("faceedit", versions.get("faceedit", __version__)),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
    ]
    rows += [(k, v) for k, v in versions.items() if k != "faceedit"]
    rows.append(("Device", device or "starting…"))
    rows.append(("Model", model or "none loaded"))
    return rows


class AboutDialog(QDialog):
    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About faceedit")
        title = QLabel(
            "<h2>faceedit</h2><p>Facial expression editing that changes only what you ask for: "
            "a face parser and a hierarchical GAN trained as one model.</p>"
        )
        title.setWordWrap(True)
        table = "".join(
            f"<tr><td style='padding-right:14px; vertical-align:top'><b>{html.escape(k)}</b></td>"
            f"<td>{html.escape(v).replace(chr(10), '<br>')}</td></tr>"
            for k, v in rows
        )
        self.details = QLabel(f"<table>{table}</table>")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.details)
        layout.addWidget(buttons)
        self.setMinimumWidth(420)
