"""The Qt binding must not leak or drop references to None, True and False.

On CPython 3.11 these objects are not immortal: PySide6-Essentials 6.12.0 dropped one reference
to True on every `Signal.emit()` and one to None on every Qt call returning nothing, and the
app died ("deallocating None") after a minute or two of slider drags. The calls run in a child
process, so a binding that aborts the interpreter fails this test instead of the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CALLS = 3000
# A few references may come and go with caches and interned results; a leak grows with CALLS.
TOLERANCE = 20

CHILD = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QApplication, QLabel, QSlider, QVBoxLayout, QWidget
    import PySide6

    app = QApplication([])

    class Emitter(QObject):
        flag = Signal(bool)
        value = Signal(object)

    received = []
    emitter = Emitter()
    emitter.flag.connect(lambda on: received.append(on))
    emitter.value.connect(lambda v: received.append(v))
    window = QWidget()
    layout = QVBoxLayout(window)
    slider = QSlider()
    slider.setRange(0, 100)
    label = QLabel("0")
    layout.addWidget(slider)
    layout.addWidget(label)
    slider.valueChanged.connect(lambda v: label.setText(str(v)))
    window.show()
    app.processEvents()

    def counts():
        return [sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)]

    def drive(n):
        for i in range(n):
            emitter.flag.emit(i % 2 == 0)
            emitter.value.emit(None)
            slider.setValue(i % 101)
            slider.setToolTip(f"{i}")
            label.update()
            window.update()
            slider.isEnabled()
            if i % 50 == 0:
                app.processEvents()
                received.clear()
        app.processEvents()
        received.clear()

    drive(100)  # warm caches
    before = counts()
    drive(int(sys.argv[1]))
    after = counts()
    print(json.dumps({"version": PySide6.__version__, "before": before, "after": after}))
    """
)


def test_signals_sliders_and_repaints_keep_none_true_false_counts_steady() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(CALLS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert child.returncode == 0, (
        f"the Qt binding aborted the interpreter (exit {child.returncode}): a reference count "
        f"error in PySide6; install the pinned release (bash scripts/setup.sh).\n{child.stderr[-2000:]}"
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    drift = [
        after - before for before, after in zip(result["before"], result["after"], strict=True)
    ]
    assert all(abs(d) <= TOLERANCE for d in drift), (
        f"PySide6 {result['version']}: references to None/True/False moved by {drift} over "
        f"{CALLS} rounds of calls"
    )


def test_the_app_refuses_a_binding_known_to_abort_it() -> None:
    from faceedit.errors import FaceEditError
    from faceedit.ui.app import check_binding

    with pytest.raises(FaceEditError, match=r"PySide6 6\.12\.0 .*scripts/setup\.sh"):
        check_binding("6.12.0", (3, 11))
    check_binding("6.12.0", (3, 12))  # immortal None/True/False: the drift cannot kill it
    check_binding("6.11.3", (3, 11))


def test_without_a_display_a_snapshot_goes_offscreen_and_the_window_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faceedit.errors import FaceEditError
    from faceedit.ui import app

    monkeypatch.setattr(app.sys, "platform", "linux")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(FaceEditError, match=r"no display .* --snapshot"):
        app.choose_platform(snapshot=False)
    app.choose_platform(snapshot=True)
    assert os.environ["QT_QPA_PLATFORM"] == "offscreen"
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM")
    app.choose_platform(snapshot=False)  # a display: Qt picks its platform as usual
    assert "QT_QPA_PLATFORM" not in os.environ
