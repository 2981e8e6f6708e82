"""While an inference thread runs, Python's cycle collector runs on the GUI thread only.

CPython collects reference cycles on whichever thread happens to cross the allocation
threshold. A cycle that holds the Python wrapper of a Qt widget (a closed window's menus,
say), collected on the inference thread, runs the widget's C++ destructor there: Qt's
destructor takes a lock of its signal machinery and then asks for the GIL, while the GUI
thread, holding the GIL, waits for that lock, and both stop for good. The UI tests hung this
way once (2026-11-27; gdb showed the inference thread in QObject::~QObject waiting for the
GIL and the GUI thread in QObject::~QObject waiting for the mutex). So automatic collection is
off while a worker runs, and a GUI-thread timer collects as CPython would have.
"""

from __future__ import annotations

import gc
from typing import Final

from PySide6.QtCore import QTimer

# How often the GUI thread looks at the collector's counts: often enough that garbage does not
# pile up between looks, rare enough to cost nothing (a look without a collection is ~1 us).
INTERVAL_MS: Final[int] = 250


class _Guard:
    """The holders' count, the timer and the collector's state before the first hold."""

    def __init__(self) -> None:
        self.holders = 0
        self.timer: QTimer | None = None
        self.was_enabled = True


_guard = _Guard()


def hold() -> None:
    """Take automatic collection off the other threads (call on the GUI thread, with a
    QApplication, when a worker thread starts). Holds nest; each needs a `release`."""
    _guard.holders += 1
    if _guard.holders > 1:
        return
    _guard.was_enabled = gc.isenabled()
    gc.disable()
    timer = QTimer()
    timer.setInterval(INTERVAL_MS)
    timer.timeout.connect(collect_due)
    timer.start()
    _guard.timer = timer


def release() -> None:
    """End one hold; the last one gives collection back to CPython as it was."""
    if _guard.holders == 0:
        return
    _guard.holders -= 1
    if _guard.holders:
        return
    if _guard.timer is not None:
        _guard.timer.stop()
        _guard.timer.deleteLater()
        _guard.timer = None
    if _guard.was_enabled:
        gc.enable()
    collect_due()


def holding() -> bool:
    """Whether collection is held on the GUI thread now."""
    return _guard.holders > 0


def collect_due() -> int:
    """Collect the oldest generation whose count has passed its threshold, which is what
    CPython's automatic collection does; returns that generation, or -1 when none is due."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    due = [g for g in range(3) if thresholds[g] and counts[g] > thresholds[g]]
    if not due:
        return -1
    gc.collect(due[-1])
    return due[-1]
