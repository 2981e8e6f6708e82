"""Issue 30: what the title, the prompts, the plots and the menus say matches the screen.

Each test drives the real window (offscreen) as the issue's user did; the rules themselves are
tests/state/test_document.py's. One window with the tiny checkpoint is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QWidget

from faceedit.media.bundled import astronaut_image_path, sample_image_path
from faceedit.media.images import save_png
from faceedit.media.sources import read_image
from faceedit.state.document import NO_CLASSIFIER, NO_SOURCE_SCORES
from faceedit.ui.main_window import MainWindow
from faceedit.ui.settings import Preferences
from tests.ui.test_app import WAIT_MS, open_and_wait, wait_for

pytestmark = pytest.mark.gui

SMALL = 256


def _prefs(folder: Path) -> Preferences:
    return Preferences(QSettings(str(folder / "faceedit.ini"), QSettings.Format.IniFormat))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("app-state")
    face = cv2.resize(
        read_image(astronaut_image_path()), (SMALL, SMALL), interpolation=cv2.INTER_AREA
    )
    broken = root / "broken.png"
    broken.write_bytes(b"this is no picture at all" * 10)
    return SimpleNamespace(
        root=root,
        checkpoint=tiny_model,
        face=save_png(root / "face.png", face),
        other=save_png(root / "other.png", face[:, ::-1].copy()),
        broken=broken,
    )


@pytest.fixture(scope="module")
def window(qapp, files: SimpleNamespace) -> Iterator[MainWindow]:
    win = MainWindow(_prefs(files.root), device="cpu")
    win.resize(1100, 700)
    win.show()
    win.load_checkpoint(files.checkpoint)
    yield win
    win.document.mark_saved()
    win.close()


@pytest.fixture
def fresh(qtbot, window: MainWindow, files: SimpleNamespace, unsaved) -> MainWindow:
    """The window on face.png, nothing edited, nothing to undo."""
    window.document.mark_saved()
    open_and_wait(qtbot, window, files.face)
    window.reset_expression()
    window.regions.set_editable(None)
    window.document.forget_history()
    unsaved.asked.clear()
    return window


# ---- 1. Reset and valence/arousal ------------------------------------------------------------------


def test_the_reset_button_clears_valence_arousal_steering(fresh: MainWindow) -> None:
    fresh.va.set_value((0.6, 0.4))
    fresh.expressions.set_condition({"happy": 1.0})
    fresh.expressions.reset_button.click()
    assert fresh.edit_state().valence_arousal is None and fresh.va.value() is None
    assert fresh.current_request().is_identity and not fresh.isWindowModified()


def test_closing_the_valence_arousal_panel_stops_steering(fresh: MainWindow) -> None:
    fresh.docks["va"].show()
    fresh.va.set_value((0.6, 0.4))
    fresh.docks["va"].toggleViewAction().trigger()  # the panel's close button, or View menu
    assert not fresh.docks["va"].isVisible()
    assert fresh.va.value() is None and fresh.edit_state().valence_arousal is None
    fresh.document.undo()  # steering back: the panel shows it
    assert fresh.va.value() == pytest.approx((0.6, 0.4))


# ---- 2. unsaved-state tracking ----------------------------------------------------------------------


def test_clicking_the_picture_to_choose_a_face_is_no_edit(fresh: MainWindow, unsaved) -> None:
    fresh.compare.faceClicked.emit(0)
    assert fresh.edit_state().face_index == 0
    assert not fresh.isWindowModified() and not fresh.actions_.undo.isEnabled()
    assert fresh.confirm_discard("quit") and unsaved.asked == []  # quitting asks nothing


def test_a_new_photo_after_discard_is_marked_modified_and_has_its_own_history(
    qtbot, fresh: MainWindow, files, unsaved
) -> None:
    fresh.expressions.set_condition({"happy": 1.0})
    assert fresh.actions_.undo.text() == "&Undo Set face expression"
    unsaved.answer = "discard"
    open_and_wait(qtbot, fresh, files.other)
    assert unsaved.asked == ["open other.png"]
    # The sliders still edit the new photo, so it is unsaved; its history is its own.
    assert fresh.current_request().condition == {"happy": 1.0}
    assert fresh.isWindowModified() and fresh.windowTitle().startswith("other.png")
    assert not fresh.actions_.undo.isEnabled() and fresh.actions_.undo.text() == "&Undo"


def test_after_recording_the_edited_stream_opening_asks_nothing(
    qtbot, fresh: MainWindow, files, unsaved
) -> None:
    fresh.expressions.set_condition({"happy": 1.0})
    assert fresh.isWindowModified()
    fresh._on_recording_finished(str(files.root / "edited.mp4"), 12, "")
    assert not fresh.isWindowModified()
    open_and_wait(qtbot, fresh, files.face)
    assert unsaved.asked == []


def test_a_file_that_cannot_open_is_said_before_any_save_question(
    qtbot, fresh: MainWindow, files, unsaved
) -> None:
    fresh.expressions.set_condition({"happy": 1.0})
    unsaved.answer = "discard"
    fresh.open_path(files.broken)
    assert unsaved.asked == []  # never asked: the edit was never in danger
    assert "broken.png" in fresh.messages.message()
    assert fresh.expressions.condition() == {"happy": 1.0} and fresh.isWindowModified()
    assert fresh.source_info is not None and fresh.source_info.name == "face.png"
    wait_for(qtbot, fresh)


# ---- 3. live plots ----------------------------------------------------------------------------------


def test_scores_appear_when_the_plots_are_shown_without_another_edit(
    qtbot, fresh: MainWindow
) -> None:
    plots = fresh.docks["plots"]
    plots.hide()
    fresh.expressions.set_condition({"happy": 0.5})
    wait_for(qtbot, fresh, lambda u: u.edited)
    plots.show()
    qtbot.waitUntil(lambda: fresh.plots.scores.isVisible(), timeout=WAIT_MS)
    assert fresh.plots.scores_note.text() != NO_CLASSIFIER


def test_a_model_with_a_discriminator_never_says_it_needs_one(
    qtbot, qapp, files, tmp_path: Path
) -> None:
    win = MainWindow(_prefs(tmp_path), device="cpu")
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.modelReady, timeout=WAIT_MS):
            win.load_checkpoint(files.checkpoint)
        assert win.model_info is not None and win.model_info.capabilities.can_score
        assert win.plots.scores_note.text() != NO_CLASSIFIER  # no source yet
        win._on_source_failed("camera 0: no camera answered")  # a failed --camera 0
        assert win.plots.scores_note.text() == NO_SOURCE_SCORES
        win.show()
        open_and_wait(qtbot, win, files.face)
        assert win.plots.scores.isVisible() or win.plots.scores_note.text() != NO_CLASSIFIER
        win.docks["plots"].show()  # hidden on a small screen: shown, the scores are there
        qtbot.waitUntil(lambda: win.plots.scores.isVisible(), timeout=WAIT_MS)
    finally:
        win.close()


def test_the_summary_never_says_input_look_while_steering(fresh: MainWindow) -> None:
    fresh.va.set_value((0.5, 0.25))
    assert "input's own look" not in fresh.expressions.summary.text()
    assert "steered" in fresh.expressions.summary.text()
    fresh.reset_expression()
    assert fresh.expressions.summary.text() == "Face: input's own look"


def test_an_unreadable_checkpoint_is_said_in_plain_words(
    files, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceedit.inference.session import EditSession
    from faceedit.weights import checkpoint

    def denied(path: object, mode: str = "r") -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(checkpoint, "open", denied, raising=False)
    report = EditSession().load(str(files.checkpoint), "cpu")
    assert report.error is not None and "permission denied" in report.error
    assert "Errno" not in report.error and "PermissionError" not in report.error


# ---- 6. polish ---------------------------------------------------------------------------------------


def test_open_starts_in_the_users_folder_never_the_packages(fresh: MainWindow, files) -> None:
    fresh.prefs.add_recent_file(sample_image_path())  # the bundled sample, opened last
    assert fresh._last_folder() == str(Path(files.face).resolve().parent)
    fresh.prefs.clear_recent()
    fresh.prefs.add_recent_file(sample_image_path())
    assert fresh._last_folder() == str(Path.home())


def test_slider_tooltips_name_no_internals(fresh: MainWindow) -> None:
    for slider in fresh.expressions.sliders.values():
        assert "faceedit." not in slider.toolTip() and "_" not in slider.toolTip()


def test_tab_goes_down_the_expression_panel(fresh: MainWindow) -> None:
    from PySide6.QtCore import Qt

    def stops(start: QWidget, count: int) -> list[str]:
        found, widget = [], start.nextInFocusChain()
        while len(found) < count and widget is not start:
            policy = widget.focusPolicy()
            if policy & Qt.FocusPolicy.TabFocus and widget.isVisible() and widget.isEnabled():
                text = getattr(widget, "text", None)
                found.append(text() if callable(text) else type(widget).__name__)
            widget = widget.nextInFocusChain()
        return found

    boxes = [box.text() for box in fresh.regions.boxes.values()]
    assert stops(fresh.expressions.reset_button, len(boxes) + 2) == [*boxes, "All", "None"]


def test_save_offers_a_jpeg_inputs_own_format_with_its_quality(
    qtbot, fresh: MainWindow, files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceedit.media.images import save_image
    from faceedit.ui import dialogs

    photo = save_image(files.root / "photo.jpg", read_image(files.face))
    open_and_wait(qtbot, fresh, photo)
    suggested = fresh.suggested_save_path("edited")
    assert suggested.name == "photo-edited.jpg"
    assert fresh.suggested_save_path("masks").suffix == ".png"
    offered: list[str] = []

    def ask_save(parent: object, title: str, path: Path, filters: str) -> str:
        offered.append(filters)
        return str(tmp_path / path.name)

    monkeypatch.setattr(dialogs, "ask_save", ask_save)
    monkeypatch.setattr(dialogs, "ask_jpeg_quality", lambda parent, quality: 40)
    saved = fresh._ask_save_frame()
    assert offered[0].startswith("JPEG image") and "PNG image" in offered[0]
    assert saved is not None and saved.read_bytes()[:2] == b"\xff\xd8"  # a JPEG file
    best = fresh.save_frame(tmp_path / "best.jpg", quality=100)
    assert best is not None and best.stat().st_size > saved.stat().st_size  # quality was used


def test_the_save_question_about_a_video_names_its_frame_not_a_picture(
    qtbot, fresh: MainWindow, files, unsaved
) -> None:
    import numpy as np

    from faceedit.media.sources import VideoWriter

    clip = files.root / "clip.avi"
    face = read_image(files.face)
    with VideoWriter(clip, 10.0, (SMALL, SMALL)) as writer:
        for _ in range(3):
            writer.write(np.ascontiguousarray(face))
    fresh.expressions.set_condition({"happy": 1.0})
    open_and_wait(qtbot, fresh, files.other)  # a photo: asked about the picture
    fresh.expressions.set_condition({"happy": 0.5})
    open_and_wait(qtbot, fresh, clip)
    fresh.expressions.set_condition({"happy": 1.0})
    assert fresh.confirm_discard("quit")
    assert unsaved.about_video == [False, False, True]
