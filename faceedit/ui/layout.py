"""Window layout on any screen (docs/architecture.md §3, App state): the first size, clamping, dock sizes.

A first launch takes a size that fits the screen's available area in device-independent
pixels, so a 1366x768 laptop or a 1600x1000 panel at 150 % scale shows every control. Saved
layouts are clamped to the screen they open on. Panels have minimum sizes, so one narrowed to
nothing cannot come back that way, and when the window shrinks the side panels give way before
the picture does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

Docks = Mapping[str, QDockWidget]  # the window's panels by name: crop, expression, va, plots

PREFERRED_SIZE: Final[QSize] = QSize(1440, 900)
SCREEN_SHARE: Final[float] = 0.92  # a first window leaves some of the screen around it
SIDE_DOCK_MIN: Final[int] = 220  # a side panel narrower than this cannot show its sliders
SIDE_DOCK_DEFAULT: Final[int] = 360
SIDE_DOCK_SHARE: Final[float] = 0.25  # each side panel's share of the width at most, on resize
PLOTS_MIN: Final[int] = 120
PLOTS_DEFAULT: Final[int] = 230
PLOTS_SHARE: Final[float] = 0.3
PICTURE_MIN: Final[QSize] = QSize(240, 180)
PLOTS_MIN_SCREEN_HEIGHT: Final[int] = 900  # below this a first launch hides the live plots
SIDE_DOCKS: Final[tuple[str, ...]] = ("crop", "expression", "va")


def first_geometry(screen: QRect) -> QRect:
    """The preferred size, shrunk to fit `screen`, centred on it."""
    width = min(PREFERRED_SIZE.width(), int(screen.width() * SCREEN_SHARE))
    height = min(PREFERRED_SIZE.height(), int(screen.height() * SCREEN_SHARE))
    rect = QRect(0, 0, width, height)
    rect.moveCenter(screen.center())
    return rect


def clamp(geometry: QRect, screen: QRect) -> QRect:
    """`geometry` no larger than `screen` and moved inside it."""
    width = min(geometry.width(), screen.width())
    height = min(geometry.height(), screen.height())
    left = min(max(geometry.left(), screen.left()), screen.right() - width + 1)
    top = min(max(geometry.top(), screen.top()), screen.bottom() - height + 1)
    return QRect(left, top, width, height)


def set_minimum_sizes(docks: Docks, picture: QWidget) -> None:
    for name in SIDE_DOCKS:
        docks[name].setMinimumWidth(SIDE_DOCK_MIN)
    docks["plots"].setMinimumHeight(PLOTS_MIN)
    picture.setMinimumSize(PICTURE_MIN)


def default_dock_sizes(window: QMainWindow, docks: Docks) -> None:
    width = window.width()
    side = max(SIDE_DOCK_MIN, min(SIDE_DOCK_DEFAULT, int(width * 0.24)))
    d = docks
    window.resizeDocks([d["crop"], d["expression"]], [side, side], Qt.Orientation.Horizontal)
    plots = max(PLOTS_MIN, min(PLOTS_DEFAULT, int(window.height() * 0.25)))
    window.resizeDocks([d["plots"]], [plots], Qt.Orientation.Vertical)


def widen_narrowed_docks(window: QMainWindow, docks: Docks) -> None:
    """A side panel saved narrower than its minimum (an older layout) opens at its default."""
    narrow = [
        dock
        for name in SIDE_DOCKS
        if (dock := docks[name]).isVisible() or not dock.isHidden()
        if not dock.isFloating() and 0 < dock.width() < SIDE_DOCK_MIN
    ]
    if narrow:
        window.resizeDocks(narrow, [SIDE_DOCK_DEFAULT] * len(narrow), Qt.Orientation.Horizontal)


def give_the_picture_room(window: QMainWindow, docks: Docks) -> None:
    """On a shrinking window the side panels and the plots give way, down to their minimum."""
    cap = max(SIDE_DOCK_MIN, int(window.width() * SIDE_DOCK_SHARE))
    wide = [
        dock
        for name in SIDE_DOCKS
        if not (dock := docks[name]).isHidden() and not dock.isFloating() and dock.width() > cap
    ]
    if wide:
        window.resizeDocks(wide, [cap] * len(wide), Qt.Orientation.Horizontal)
    plots = docks["plots"]
    tall = max(PLOTS_MIN, int(window.height() * PLOTS_SHARE))
    if not plots.isHidden() and not plots.isFloating() and plots.height() > tall:
        window.resizeDocks([plots], [tall], Qt.Orientation.Vertical)
