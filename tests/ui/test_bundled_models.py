"""The app with the bundled real-face model as the default, offscreen: it loads at start on the
sample photo, the window names it and what it is for, its untrained expressions are marked and
off, and the bundled models follow the picture (a procedural sample gets the demo model, a photo
the real one) without ever swapping a model the user chose.

Both bundled models are stand-ins (tiny few-step checkpoints; the real one with an `expressions`
table) put in place through faceedit.media.bundled.bundled_path (tests.factories.use_bundled).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from faceedit.media import bundled
from faceedit.media.images import save_png
from faceedit.media.sources import read_image
from faceedit.ui import app
from faceedit.ui.main_window import MainWindow
from faceedit.ui.settings import Preferences
from faceedit.weights import checkpoint
from tests.factories import make_checkpoint, synthetic_faces, use_bundled

pytestmark = pytest.mark.gui

WAIT_MS = 60_000
TABLE = {
    "neutral": {"trained": True, "read_as_target": None, "photos": 4700},
    "happy": {"trained": True, "read_as_target": 0.62, "photos": 3954},
    "fearful": {"trained": False, "read_as_target": None, "photos": 19},
    "contemptuous": {"trained": False, "read_as_target": None, "photos": 7},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("bundled-assets")
    loaded = checkpoint.load(tiny_model)
    real = checkpoint.save(
        root / "stand-in-real.safetensors",
        loaded.config,
        parser=loaded.parser,
        generator=loaded.generator,
        metadata={"domain": "photos", "expressions": TABLE},
    )
    face = ((synthetic_faces(1, 64, seed=7)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round()
    photo = cv2.resize(read_image(bundled.astronaut_image_path()), (256, 256), cv2.INTER_AREA)
    return SimpleNamespace(
        real=real,
        demo=make_checkpoint(root / "stand-in-demo.safetensors", steps=1),
        mine=tiny_model,
        sample=save_png(root / "samples" / "face-0.png", face.astype(np.uint8)),
        photo=save_png(root / "photo.png", photo),
    )


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch, files: SimpleNamespace) -> SimpleNamespace:
    use_bundled(monkeypatch, real=files.real, demo=files.demo)
    monkeypatch.setattr(bundled, "procedural_samples", lambda: [files.sample])
    return files


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    app.add_arguments(parser)
    return parser.parse_args(list(argv))


def _opened(qtbot, window: MainWindow, path: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.worker.sourceOpened, timeout=WAIT_MS):
        window.open_path(path)


def test_the_real_model_is_the_default_and_the_window_names_it(
    qtbot, stand_ins: SimpleNamespace
) -> None:  # type: ignore[no-untyped-def]
    holder = SimpleNamespace(prefs=Preferences())
    assert app._checkpoint_to_load(holder, _args())[0] == "real"
    assert app._checkpoint_to_load(holder, _args(str(stand_ins.sample)))[0] == "demo"
    window = MainWindow(Preferences(), device="cpu")
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignals([window.modelReady, window.worker.sourceOpened], timeout=WAIT_MS):
            app.apply_options(window, _args())
        assert window.model_info is not None and window.model_info.path == str(stand_ins.real)
        assert window.source_info is not None
        assert window.source_info.path == str(bundled.sample_image_path())
        assert not window.actions_.aligned_input.isChecked(), "a photo: its face is detected"

        assert window.status_device.text().startswith("real-face model · cpu")
        assert window.status_model_note.text() == "Real-face model: real photos, 128 px"
        assert "trained on real photographs" in window.status_model_note.toolTip()
        banner = window.model_banner.message()
        assert "Loaded the real-face model, trained on real photographs" in banner
        assert "Not trained (too few training photos): fearful, contemptuous" in banner
        rows = dict(window.about_rows())
        assert rows["Model"].startswith(f"real-face model: {stand_ins.real} (crop 32")
        assert "This is the real-face model" in rows["Note"]
        assert "happy: held-out edits read as happy 62 %" in rows["Expressions"]
        assert "fearful: not trained (only 19 training photos" in rows["Expressions"]

        panel = window.expressions
        assert panel.labels["contemptuous"].text() == "Contemptuous\n(untrained)"
        assert not panel.sliders["fearful"].isEnabled() and panel.sliders["happy"].isEnabled()
        assert "only 7 training photos" in panel.sliders["contemptuous"].toolTip()
        assert "read as happy 62 %" in panel.sliders["happy"].toolTip()
        # The bundled model is not remembered: a start without a model picks it again.
        assert window.prefs.last_checkpoint is None
    finally:
        window.close()


def test_the_bundled_models_follow_the_picture_but_the_users_model_stays(
    qtbot, stand_ins: SimpleNamespace
) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(Preferences(), device="cpu")
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
            window.load_checkpoint("real")
        # A procedural sample with the real model: the demo model takes over, aligned input on.
        with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
            _opened(qtbot, window, stand_ins.sample)
        assert window.model_info.path == str(stand_ins.demo) and window.demo_in_use
        assert window.actions_.aligned_input.isChecked()
        banner = window.model_banner.message()
        assert "face-0.png is one of the procedural sample faces: the demo model" in banner
        assert window.status_model_note.text() == "Demo model: procedural faces only"
        assert window.expressions.labels["fearful"].text() == "Fearful", "the demo has no table"
        assert window.expressions.sliders["fearful"].isEnabled()

        # And a photo with the demo model: back to the real one, detecting faces.
        with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
            _opened(qtbot, window, stand_ins.photo)
        assert window.model_info.path == str(stand_ins.real) and not window.demo_in_use
        assert not window.actions_.aligned_input.isChecked()
        assert "photo.png is a photo: the real-face model" in window.model_banner.message()

        # The user's own model is never swapped, whatever they open; its name is its file's.
        with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
            window.load_checkpoint(stand_ins.mine)
        _opened(qtbot, window, stand_ins.sample)
        assert window.model_info.path == str(stand_ins.mine)
        assert window.status_device.text().startswith(f"{stand_ins.mine.name} · cpu")
        rows = dict(window.about_rows())
        assert window.status_model_note.isHidden() and "Note" not in rows
        assert rows["Model"].startswith(f"{stand_ins.mine} (crop 32")
    finally:
        window.close()
