"""Issue 15's app-state defects, each driven as a user meets it: the wrong picture shown or
saved, lost work, a window that does not fit, feedback that does not tell the truth, and the
small things (save folders, the timeline, arrow keys, file modes, recent files).

One window with the tiny checkpoint is shared; waiting is always on signals or conditions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QByteArray, QPoint, QSettings, Qt
from PySide6.QtGui import QGuiApplication

from faceedit.commands import cli
from faceedit.inference.pipeline import FramePipeline
from faceedit.inference.session import EditSession, FrameUpdate
from faceedit.media import sources
from faceedit.media.bundled import astronaut_image_path, sample_image_path
from faceedit.media.images import save_png
from faceedit.media.sources import VideoWriter, read_image
from faceedit.ui import layout
from faceedit.ui.main_window import MainWindow
from faceedit.ui.settings import Preferences
from faceedit.ui.widgets.availability import unavailable_reason
from faceedit.ui.widgets.video_controls import VideoControls
from tests.ui.test_app import WAIT_MS, open_and_wait, wait_for

pytestmark = pytest.mark.gui

SMALL = 256


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("trust")
    face = cv2.resize(
        read_image(astronaut_image_path()), (SMALL, SMALL), interpolation=cv2.INTER_AREA
    )
    other = np.ascontiguousarray(face[:, ::-1])  # the same face, mirrored: another picture
    return SimpleNamespace(
        root=root,
        checkpoint=tiny_model,
        face=save_png(root / "face.png", face),
        other=save_png(root / "other.png", other),
    )


def _prefs(folder: Path) -> Preferences:
    return Preferences(QSettings(str(folder / "faceedit.ini"), QSettings.Format.IniFormat))


@pytest.fixture(scope="module")
def window(qapp, files: SimpleNamespace) -> Iterator[MainWindow]:
    win = MainWindow(_prefs(files.root), device="cpu")
    win.resize(1100, 700)
    win.show()
    win.load_checkpoint(files.checkpoint)
    yield win
    win.document.mark_saved()
    win.close()


class Gate:
    """Holds every frame computation until released (a slow detection, made deterministic)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        process = FramePipeline.process

        def gated(pipeline: FramePipeline, *args: Any, **kwargs: Any) -> Any:
            self.open.wait(WAIT_MS / 1000)
            return process(pipeline, *args, **kwargs)

        monkeypatch.setattr(FramePipeline, "process", gated)


# ---- 2. state you can trust ------------------------------------------------------------------------


def test_a_new_picture_clears_the_views_shows_busy_and_save_never_takes_the_old_one(
    qtbot, window: MainWindow, files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.reset_expression()
    window.expressions.set_condition({"happy": 1.0})
    first = open_and_wait(qtbot, window, files.face)
    assert first.edited
    gate = Gate(monkeypatch)
    with qtbot.waitSignal(window.worker.sourceOpened, timeout=WAIT_MS):
        window.open_path(files.other)
    # The title names the new picture; the views must not show the old one meanwhile.
    assert "other.png" in window.windowTitle()
    assert window.latest is None and window.compare.displayed() is None
    assert window.save_frame(tmp_path / "early.png") is None
    assert not (tmp_path / "early.png").exists()
    assert "still being computed" in window.messages.message()
    qtbot.waitUntil(window.busy.isVisible, timeout=WAIT_MS)  # after ~300 ms, with seconds
    assert window.busy.text().endswith(" s")
    # A late result of the previous picture is recognised by its source tag and dropped.
    window._on_result(first)
    assert window.latest is None
    gate.open.set()
    update = wait_for(qtbot, window)
    assert np.array_equal(update.input, read_image(files.other))
    saved = window.save_frame(tmp_path / "saved.png")
    assert saved is not None
    assert np.array_equal(read_image(saved), update.output)
    assert not np.array_equal(read_image(saved), first.output)
    qtbot.waitUntil(lambda: not window.busy.isVisible(), timeout=WAIT_MS)


# ---- 3. undo, redo, the modified marker, the prompt -----------------------------------------------


def test_undo_redo_of_every_setting_reset_is_one_step_and_unsaved_edits_are_guarded(
    qtbot, window: MainWindow, files, tmp_path: Path, unsaved
) -> None:
    open_and_wait(qtbot, window, files.face)
    window.reset_expression()
    window.regions.set_editable(None)
    window.document.forget_history()
    window.document.mark_saved()
    assert not window.isWindowModified() and "[*]" in window.windowTitle()
    slider = window.expressions.sliders["happy"]
    slider.sliderPressed.emit()
    for value in range(5, 65, 5):  # one drag, many values: one undo step
        slider.setValue(value)
    slider.sliderReleased.emit()
    assert len(window.document.history) == 1 and window.isWindowModified()
    window.regions.boxes["mouth"].setChecked(False)
    window.expressions.set_condition({"sad": 0.5}, region="eyes")
    edited = window.edit_state()
    window.reset_expression()
    assert window.expressions.condition() == {} and len(window.document.history) == 4
    window.actions_.undo.trigger()  # Reset undone in one step
    assert window.edit_state() == edited
    assert window.expressions.region_conditions() == {"eyes": {"sad": 0.5}}
    window.document.undo()
    window.document.undo()
    assert window.regions.editable_regions() is None
    window.document.undo()
    assert window.expressions.condition() == {} and not window.isWindowModified()
    window.actions_.redo.trigger()
    assert window.expressions.condition() == {"happy": 0.6}
    assert slider.value() == 60
    assert window.current_request().condition == {"happy": 0.6}
    # Quitting or opening with unsaved edits asks first; Cancel keeps everything.
    unsaved.answer = "cancel"
    assert window.close() is False and window.isVisible()
    window.open_path(files.other)
    assert unsaved.asked == ["quit", "open other.png"]
    assert window.source_info.name == "face.png" and window.latest is not None
    # Saving marks the edits saved: no more questions.
    wait_for(qtbot, window)
    assert window.save_frame(tmp_path / "kept.png") is not None
    assert not window.isWindowModified()
    open_and_wait(qtbot, window, files.other)
    assert unsaved.asked == ["quit", "open other.png"]


def test_face_choice_and_valence_arousal_are_undoable_settings(window: MainWindow) -> None:
    window.reset_expression()
    window.document.forget_history()
    window.expressions.set_condition({"happy": 0.5})
    window.choose_face(0)  # with an edit, the face chosen changes the picture: a step
    assert len(window.document.history) == 2 and window.edit_state().face_index == 0
    window.document.undo()
    assert window.edit_state().face_index is None
    window.document.undo()
    before = window.document.history.index
    window.va.set_value((0.5, -0.25))  # steering on and the point moved: one step
    assert window.document.history.index == before + 1
    window.document.undo()
    assert window.va.value() is None
    window.document.mark_saved()


# ---- 4. layout ------------------------------------------------------------------------------------


def _fits(window: MainWindow) -> bool:
    screen = window.available_geometry()
    return screen.contains(window.geometry()) and window.minimumSizeHint().width() <= (
        screen.width()
    )


def test_a_first_launch_and_a_saved_oversized_layout_fit_the_screen(qapp, tmp_path: Path) -> None:
    fresh = MainWindow(_prefs(tmp_path / "fresh"), device="cpu")
    try:
        assert _fits(fresh), (fresh.geometry(), fresh.available_geometry())
        fresh.resize(3000, 2000)
        fresh.move(-500, -500)
        fresh.prefs.save_layout(QByteArray(fresh.saveGeometry()), QByteArray(fresh.saveState()))
    finally:
        fresh.close()
    again = MainWindow(_prefs(tmp_path / "fresh"), device="cpu")
    try:
        assert _fits(again), (again.geometry(), again.available_geometry())
    finally:
        again.close()


def test_panels_keep_a_usable_width_and_the_picture_gets_the_space(
    qapp, qtbot, tmp_path: Path
) -> None:
    win = MainWindow(_prefs(tmp_path), device="cpu")
    win.resize(1200, 760)
    win.show()
    qtbot.waitExposed(win)
    crop = win.docks["crop"]
    win.resizeDocks([crop], [40], Qt.Orientation.Horizontal)  # narrowed as far as it goes
    qtbot.waitUntil(lambda: crop.width() < 300)
    assert crop.width() >= layout.SIDE_DOCK_MIN
    win.resize(760, 560)  # shrinking: the side panels give way, not only the picture
    qtbot.waitUntil(lambda: win.width() <= 800)
    qapp.processEvents()
    assert win.compare.width() >= 0.3 * win.width(), (win.compare.width(), win.width())
    win.close()


# ---- 5. feedback that tells the truth ---------------------------------------------------------------


def test_the_valence_arousal_pad_is_disabled_with_the_reason_for_a_model_without_it(
    window: MainWindow,
) -> None:
    assert window.model_info is not None
    assert not window.model_info.capabilities.valence_arousal
    reason = unavailable_reason(window.va)
    assert reason is not None and "valence" in reason


def test_snapshot_never_writes_the_users_settings(tmp_path: Path, files) -> None:
    ini = Path(os.environ["FACEEDIT_SETTINGS_DIR"]) / "faceedit.ini"
    before = ini.read_bytes()
    out = tmp_path / "shot.png"
    code = cli.main([
        str(files.face), "--checkpoint", str(files.checkpoint), "--device", "cpu",
        "--snapshot", str(out),
    ])  # fmt: skip
    assert code == 0 and out.is_file()
    assert ini.read_bytes() == before
    assert Preferences().recent_files == [] and Preferences().last_checkpoint is None


def test_cuda_fallback_is_said_in_the_apps_words() -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    report = EditSession().load(None, "cuda")
    assert report.notice is not None and "CPU" in report.notice
    assert "--device" not in report.notice


def test_camera_errors_do_not_suggest_the_camera_just_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Closed:
        def __init__(self, index: int) -> None:
            self.index = index

        def isOpened(self) -> bool:  # OpenCV's name
            return False

        def release(self) -> None:
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", Closed)
    with pytest.raises(sources.InputError) as error:
        sources.open_source(0)
    assert "camera 0" not in str(error.value).split(";", 1)[1]  # the advice names another


def _fake_update(window: MainWindow, image: np.ndarray, **fields: Any) -> FrameUpdate:
    serial = window.source_info.serial if window.source_info else 0
    values: dict[str, Any] = {
        "request_id": window.request_id,
        "frame_key": (serial, 0),
        "frame_index": 0,
        "input": image,
        "output": image,
        "boxes": [np.array([10, 10, 100, 100])],
        "chosen": (0,),
        "alignments": [],
    }
    values.update(fields)
    return FrameUpdate(**values)


def test_status_bar_names_a_reused_detections_time_and_scores_say_when_there_is_no_face(
    qtbot, window: MainWindow, files
) -> None:
    open_and_wait(qtbot, window, files.face)
    image = read_image(files.face)
    window._on_result(_fake_update(window, image, timings={"detect": 12345.0}, detected=True))
    window._on_result(_fake_update(window, image, timings={"detect": 0.0}, detected=False))
    status = window.statusBar().currentMessage()
    assert "detect 0 ms" not in status and "12345 ms" in status
    assert window.model_info is not None and window.model_info.capabilities.can_score
    window._on_result(_fake_update(window, image, boxes=[], chosen=()))
    note = window.plots.scores_note.text()
    assert "no face" in note and "discriminator" not in note
    window.submit()
    wait_for(qtbot, window)


# ---- 7. the smaller things --------------------------------------------------------------------------


def test_save_dialogs_start_outside_the_package_and_never_propose_the_inputs_name(
    qtbot, window: MainWindow
) -> None:
    sample = sample_image_path()
    open_and_wait(qtbot, window, sample)
    package = Path(sources.__file__).resolve().parents[1]
    for what in ("edited", "masks"):
        suggested = window.suggested_save_path(what)
        assert package not in suggested.resolve().parents
        assert suggested.name != sample.name


def test_clicking_the_timeline_jumps_there(qtbot) -> None:
    controls = VideoControls()
    qtbot.addWidget(controls)
    controls.resize(600, 40)
    controls.set_source(101, 25.0, False)
    controls.show()
    qtbot.waitExposed(controls)
    seek = controls.seek
    with qtbot.waitSignal(controls.seekRequested):
        qtbot.mouseClick(
            seek,
            Qt.MouseButton.LeftButton,
            pos=QPoint(int(seek.width() * 0.75), seek.height() // 2),
        )
    assert abs(seek.value() - 75) <= 5, seek.value()


def test_arrow_keys_step_the_frames_of_a_paused_video(qtbot, window: MainWindow, files) -> None:
    video = files.root / "clip.avi"
    face = read_image(files.face)
    with VideoWriter(video, 10.0, (SMALL, SMALL)) as writer:
        for i in range(6):
            writer.write(np.roll(face, 2 * i, axis=1))
    open_and_wait(qtbot, window, video)
    window.activateWindow()
    window.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.latest is not None and window.latest.frame_index == 2)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.latest is not None and window.latest.frame_index == 1)


def test_recordings_get_a_plain_files_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    out = tmp_path / "clip.avi"
    with VideoWriter(out, 10.0, (64, 64)) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_recent_files_forget_deleted_files(tmp_path: Path) -> None:
    prefs = _prefs(tmp_path)
    kept, gone = tmp_path / "kept.png", tmp_path / "gone.png"
    for path in (kept, gone):
        path.write_bytes(b"x")
        prefs.add_recent_file(path)
    gone.unlink()
    assert prefs.existing_recent_files() == [str(kept.resolve())]
    assert prefs.recent_files == [str(kept.resolve())]


def test_the_screen_is_what_the_window_measures_against(qapp) -> None:
    screen = QGuiApplication.primaryScreen()
    assert screen is not None and screen.availableGeometry().width() > 0
