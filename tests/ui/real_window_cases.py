"""Cases run under a real X display (Xvfb) by test_real_display.py, not in the offscreen run.

The file name does not start with test_, so the normal suite does not collect it; the outer
test runs it with QT_QPA_PLATFORM=xcb on a 1366x768 virtual screen.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QGuiApplication

from faceedit.ui.main_window import MainWindow
from faceedit.ui.settings import Preferences
from faceedit.ui.widgets.image_view import qimage_to_array

WAIT_MS = 120_000


@pytest.mark.gui
def test_a_real_window_fits_a_laptop_screen_and_shows_the_sample(qtbot) -> None:
    assert QGuiApplication.platformName() == "xcb"
    window = MainWindow(Preferences(), device="cpu")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    screen = window.available_geometry()
    assert screen.width() <= 1366 and screen.height() <= 768
    assert screen.contains(window.geometry()), (window.geometry(), screen)
    window.load_checkpoint(None)
    window.open_sample()
    qtbot.waitUntil(
        lambda: window.latest is not None and bool(window.latest.boxes), timeout=WAIT_MS
    )
    picture = qimage_to_array(window.grab().toImage())
    assert picture.shape[0] > 100 and float(np.std(picture)) > 5.0
    window.close()
