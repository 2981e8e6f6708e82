"""A status-bar busy sign: what the app waits for and for how long, shown only past ~300 ms.

Short waits (a slider step on a fast machine) would only flicker, so the sign appears after
SHOW_AFTER_MS; from then on it counts the seconds, so a long detection or model load is never
mistaken for a hang.
"""

from __future__ import annotations

import time
from typing import Final

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

SHOW_AFTER_MS: Final[int] = 300
TICK_MS: Final[int] = 100


class BusyIndicator(QWidget):
    """Tasks by kind ("model", "source", "compute"); the oldest one is named with its elapsed time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # indeterminate: a moving bar
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(70)
        self.bar.setMaximumHeight(12)
        self.label = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self._tasks: dict[str, tuple[str, float]] = {}  # kind -> (what, started)
        self._ticker = QTimer(self)
        self._ticker.setInterval(TICK_MS)
        self._ticker.timeout.connect(self._refresh)
        self.hide()

    def begin(self, kind: str, what: str) -> None:
        """Start (or rename, keeping its start time) the wait of `kind`."""
        started = self._tasks.get(kind, ("", time.monotonic()))[1]
        self._tasks[kind] = (what, started)
        if not self._ticker.isActive():
            self._ticker.start()
        self._refresh()

    def end(self, kind: str) -> None:
        self._tasks.pop(kind, None)
        self._refresh()

    def busy(self, kind: str | None = None) -> bool:
        return bool(self._tasks) if kind is None else kind in self._tasks

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""

    def _refresh(self) -> None:
        if not self._tasks:
            self._ticker.stop()
            self.hide()
            return
        what, started = min(self._tasks.values(), key=lambda task: task[1])
        elapsed = time.monotonic() - started
        if elapsed * 1000 < SHOW_AFTER_MS:
            return
        self.label.setText(f"{what}… {elapsed:.1f} s")
        self.show()
