"""The app with the bundled demo model, offscreen: offered when there is no model, opens on a
procedural sample as an aligned crop, says what it is, and detects faces in the user's photos.

The demo model here is a stand-in (a tiny few-step checkpoint) put in place by replacing
faceedit.media.bundled.bundled_path, the one function that locates the bundled models
(tests.factories.use_bundled), so these tests never depend on the real files; the real-face
model is missing here, as in an install without it.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from faceedit.faces.detect import FaceDetector
from faceedit.inference.session import FrameUpdate
from faceedit.media import bundled
from faceedit.media.images import save_png
from faceedit.media.sources import read_image
from faceedit.ui import app
from faceedit.ui.main_window import MainWindow
from faceedit.ui.settings import Preferences
from tests.factories import make_checkpoint, synthetic_faces, use_bundled

pytestmark = pytest.mark.gui

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("demo-assets")
    faces = synthetic_faces(2, 64, seed=7).permute(0, 2, 3, 1).numpy()
    samples = [
        save_png(root / "samples" / f"face-{i}.png", ((f + 1) * 127.5).round().astype(np.uint8))
        for i, f in enumerate(faces)
    ]
    photo = cv2.resize(read_image(bundled.astronaut_image_path()), (256, 256), cv2.INTER_AREA)
    return SimpleNamespace(
        demo=make_checkpoint(root / "stand-in-demo.safetensors"),
        other=make_checkpoint(root / "mine.safetensors", steps=1),
        samples=samples,
        photo=save_png(root / "photo.png", photo),
    )


@pytest.fixture
def detections(monkeypatch: pytest.MonkeyPatch, files: SimpleNamespace) -> Iterator[list[int]]:
    """The stand-in demo in place; yields the list that counts face detector runs."""
    use_bundled(monkeypatch, demo=files.demo)
    monkeypatch.setattr(bundled, "procedural_samples", lambda: list(files.samples))
    calls: list[int] = []
    original = FaceDetector.detect

    def counted(self: FaceDetector, image: np.ndarray) -> list:
        calls.append(1)
        return original(self, image)

    monkeypatch.setattr(FaceDetector, "detect", counted)
    yield calls


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    app.add_arguments(parser)
    return parser.parse_args(list(argv))


def _wait(qtbot, window: MainWindow, done) -> FrameUpdate:  # type: ignore[no-untyped-def]
    def ready() -> bool:
        u = window.latest
        return u is not None and u.request_id >= window.request_id and done(u)

    qtbot.waitUntil(ready, timeout=WAIT_MS)
    assert window.latest is not None
    return window.latest


def test_no_model_opens_the_demo_on_a_procedural_sample_that_the_sliders_edit(
    qtbot, detections: list[int], files: SimpleNamespace
) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(Preferences(), device="cpu")
    qtbot.addWidget(window)
    window.show()
    errors: list[str] = []
    window.messageShown.connect(lambda kind, text: kind == "error" and errors.append(text))
    try:
        with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
            app.apply_options(window, _args())
        assert window.model_info is not None and window.model_info.path == str(files.demo)
        assert window.actions_.aligned_input.isChecked() and window.demo_in_use
        first = _wait(qtbot, window, lambda u: u.input.shape == (64, 64, 3))
        assert len(first.boxes) == 1 and first.crop is not None and not first.edited

        window.expressions.set_condition({"happy": 1.0})
        edited = _wait(qtbot, window, lambda u: u.edited)
        assert edited.output.shape == (64, 64, 3)
        assert not np.array_equal(edited.output, edited.input), "the slider edits at once"
        assert detections == [] and errors == [], "an aligned sample needs no face detector"

        # It says plainly what the model is, in the status bar, the banner and About.
        assert window.status_model_note.text() == "Demo model: procedural faces only"
        for text in (window.status_model_note.toolTip(), window.model_banner.message()):
            assert "procedural faces only" in text and "photos need the real-face model" in text
            assert "docs/training.md" in text
        assert window.status_model_note.isVisible()
        assert window.status_device.text().startswith("demo model · cpu")
        rows = dict(window.about_rows())
        assert "demo model, trained on procedural faces" in rows["Note"]
        dialog = window.show_about()
        assert "docs/training.md" in dialog.details.text()
        dialog.close()
        # The demo's own switching is not a preference, and the demo is not remembered.
        assert not window.prefs.aligned_input and window.prefs.last_checkpoint is None

        # The user's own photo: detection on, the demo note stays.
        with qtbot.waitSignal(window.worker.sourceOpened, timeout=WAIT_MS):
            window.open_path(files.photo)
        photo = _wait(qtbot, window, lambda u: u.input.shape == (256, 256, 3))
        assert not window.actions_.aligned_input.isChecked()
        assert len(detections) >= 1 and len(photo.boxes) == 1
        assert window.status_model_note.isVisible() and errors == []
    finally:
        window.close()


def test_aligned_toggle_is_remembered_and_a_users_checkpoint_is_unchanged(
    qtbot, detections: list[int], files: SimpleNamespace
) -> None:  # type: ignore[no-untyped-def]
    prefs = Preferences()
    prefs.last_checkpoint = str(files.other)
    # A remembered checkpoint wins over the demo; a given one and --no-checkpoint too.
    holder = SimpleNamespace(prefs=prefs)
    assert app._checkpoint_to_load(holder, _args())[0] == str(files.other)
    assert (
        app._checkpoint_to_load(holder, _args("--checkpoint", "x.safetensors"))[0]
        == "x.safetensors"
    )
    assert app._checkpoint_to_load(holder, _args("--no-checkpoint"))[0] is None
    prefs.last_checkpoint = None
    assert app._checkpoint_to_load(holder, _args())[0] == "demo"

    window = MainWindow(prefs, device="cpu")
    qtbot.addWidget(window)
    try:
        with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
            app.apply_options(window, _args("--checkpoint", str(files.other), "--aligned"))
        assert not window.demo_in_use and window.status_model_note.isHidden()
        assert window.model_banner.message() == ""
        assert window.prefs.aligned_input and window.current_request().aligned
        window.actions_.aligned_input.trigger()  # the Model menu's toggle
        assert not window.prefs.aligned_input and not window.current_request().aligned
        window.actions_.aligned_input.trigger()
        assert Preferences().aligned_input, "saved in the settings store"
        assert window.prefs.last_checkpoint == str(files.other)

        # The Model menu's Load Demo Model: `demo` resolves as in `faceedit edit`, and a
        # procedural sample opens as an aligned crop (not remembered: the toggle stays on).
        window.set_aligned_input(False)
        with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
            window.actions_.load_demo.trigger()
        assert window.model_info.path == str(files.demo)
        assert not window.status_model_note.isHidden()
        update = _wait(qtbot, window, lambda u: u.input.shape == (64, 64, 3))
        assert window.current_request().aligned and len(update.boxes) == 1
        assert not window.prefs.aligned_input
        assert update.input.tobytes() == read_image(files.samples[0]).tobytes()
        with qtbot.waitSignal(window.worker.sourceOpened, timeout=WAIT_MS) as opened:
            window.open_sample()  # the next procedural sample
        assert opened.args[0].path == str(files.samples[1])
        # Back to the user's model: aligned input is the user's remembered choice again.
        window.load_checkpoint(files.other)
        assert not window.current_request().aligned and not window.demo_in_use
    finally:
        window.close()


def test_a_missing_demo_model_is_named_in_a_message(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bundled, "ASSETS_DIR", tmp_path)
    window = MainWindow(Preferences(), device="cpu")
    qtbot.addWidget(window)
    try:
        assert not window.actions_.load_demo.isEnabled()
        with qtbot.waitSignals([window.messageShown, window.modelReady], timeout=WAIT_MS):
            window.load_checkpoint("demo")
        kind, text = window.messages.kind, window.messages.message()
        assert kind == "error" and str(tmp_path / "demo.safetensors") in text
        assert window.model_info is not None and window.model_info.path is None  # detects still
        assert app._checkpoint_to_load(window, _args())[0] is None  # no demo: no model, as before
    finally:
        window.close()
