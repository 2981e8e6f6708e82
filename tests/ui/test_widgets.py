"""The panels on their own: settings storage, image view, expression, region and overlay panels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction

from faceedit.ui.overlay import OverlaySettings
from faceedit.ui.settings import MAX_RECENT, Preferences, open_settings
from faceedit.ui.widgets.availability import set_available, unavailable_reason
from faceedit.ui.widgets.expression_panel import ExpressionPanel
from faceedit.ui.widgets.image_view import ImageView, qimage_to_array, to_qimage
from faceedit.ui.widgets.overlay_panel import OverlayPanel
from faceedit.ui.widgets.region_panel import RegionPanel
from faceedit.weights.expression_facts import ExpressionFacts

pytestmark = pytest.mark.gui


def test_settings_go_to_the_test_folder_and_survive_a_reopen(tmp_path: Path) -> None:
    store = open_settings()
    assert Path(store.fileName()).parent == Path(os.environ["FACEEDIT_SETTINGS_DIR"])
    prefs = Preferences(store)
    prefs.device = "cpu"
    prefs.overlay_opacity = 0.25
    for i in range(MAX_RECENT + 2):
        (tmp_path / f"{i}.png").touch()
        prefs.add_recent_file(tmp_path / f"{i}.png")
    prefs.add_recent_file(tmp_path / "3.png")  # reopening moves it to the top, no duplicate
    prefs.sync()
    again = Preferences(open_settings())
    assert again.device == "cpu"
    assert again.overlay_opacity == pytest.approx(0.25)
    assert len(again.recent_files) == MAX_RECENT
    assert Path(again.recent_files[0]).name == "3.png"
    assert len(set(again.recent_files)) == MAX_RECENT
    with pytest.raises(ValueError, match="device"):
        again.device = "tpu"  # type: ignore[assignment]  # an invalid value, on purpose


def test_bad_stored_values_fall_back_to_defaults() -> None:
    store = open_settings()
    store.setValue("model/device", "quantum")
    store.setValue("overlay/opacity", "lots")
    store.setValue("video/detect_every", 7)
    prefs = Preferences(store)
    assert (prefs.device, prefs.overlay_opacity, prefs.detect_every) == ("auto", 0.5, 5)
    store.setValue("performance/precision", "float8")
    store.setValue("performance/compile", "maybe")
    store.setValue("video/min_face", 7)
    store.setValue("video/reparse_every_frame", "yes")
    assert (prefs.precision, prefs.compile_networks, prefs.stream_min_face) == ("auto", False, 60)
    assert prefs.reparse_every_frame is False


def test_speed_preferences_defaults_and_round_trip(tmp_path: Path) -> None:
    from PySide6.QtCore import QSettings

    prefs = Preferences(QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    # A fresh user: fast previews (auto precision), no background compile (on a CPU it gains
    # ~10 % and stalled the window), parse on detections.
    assert (prefs.precision, prefs.compile_networks, prefs.reparse_every_frame) == (
        "auto",
        False,
        False,
    )
    prefs.precision, prefs.compile_networks, prefs.stream_min_face = "float32", True, 100
    prefs.reparse_every_frame = True
    prefs.sync()
    again = Preferences(QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    # Compiling is chosen for one run: remembered, it restarted a long compile at every launch.
    assert (again.precision, again.compile_networks, again.stream_min_face) == (
        "float32",
        False,
        100,
    )
    assert again.reparse_every_frame
    with pytest.raises(ValueError, match="precision"):
        again.precision = "bfloat16"  # type: ignore[assignment]  # an invalid value, on purpose


def test_qimage_round_trip_keeps_every_pixel() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    np.testing.assert_array_equal(qimage_to_array(to_qimage(rgb)), rgb)


def test_image_view_split_composite_fit_and_face_click(qtbot) -> None:
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(400, 400)
    before = np.zeros((100, 100, 3), np.uint8)
    after = np.full((100, 100, 3), 255, np.uint8)
    view.set_image(after, before)
    view.set_split_enabled(True)
    view.set_split_position(0.25)
    shown = view.composite()
    assert shown[:, :25].max() == 0 and shown[:, 25:].min() == 255
    view.zoom_to_fit()
    assert view.scale == pytest.approx((400 - 16) / 100)
    view.set_faces([np.array([60, 60, 90, 90])])
    inside = view.image_rect().topLeft() + QPointF(75 * view.scale, 75 * view.scale)
    with qtbot.waitSignal(view.faceClicked) as clicked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=inside.toPoint())
    assert clicked.args == [0]
    # dragging the split line moves it
    line_x = round(view.image_rect().x() + 0.25 * view.image_rect().width())
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(line_x, 200))
    qtbot.mouseMove(view, QPoint(line_x + 96, 200))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(line_x + 96, 200))
    assert view.split_position == pytest.approx(0.5, abs=0.02)


def test_image_view_zoom_keeps_the_point_under_the_cursor(qtbot) -> None:
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.set_image(np.zeros((64, 64, 3), np.uint8))
    anchor = QPointF(100, 120)
    under = view.to_image(anchor)
    view.zoom_by(2.0, anchor)
    after = view.to_image(anchor)
    assert (after.x(), after.y()) == pytest.approx((under.x(), under.y()))


def test_expression_panel_whole_face_and_region_targets(qtbot) -> None:
    panel = ExpressionPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.changed):
        panel.sliders["happy"].setValue(80)
    assert panel.condition() == {"happy": pytest.approx(0.8)}
    panel.select_target("eyes")
    assert not panel.sliders["happy"].isEnabled()  # eyes follow the whole face until asked
    panel.own_box.setChecked(True)
    assert panel.sliders["happy"].value() == 80  # starts from the whole-face mixture
    panel.sliders["happy"].setValue(0)
    panel.sliders["surprised"].setValue(100)
    assert panel.region_conditions() == {"eyes": {"surprised": 1.0}}
    assert panel.condition() == {"happy": pytest.approx(0.8)}
    panel.reset()
    assert panel.condition() == {} and panel.region_conditions() == {}
    assert all(s.value() == 0 for s in panel.sliders.values())
    assert "not renormalised" in panel.sliders["sad"].toolTip()


def test_region_panel_all_checked_means_no_lock(qtbot) -> None:
    panel = RegionPanel()
    qtbot.addWidget(panel)
    assert panel.editable_regions() is None
    panel.boxes["nose"].setChecked(False)
    assert panel.editable_regions() == ("brows", "eyes", "mouth")
    panel.set_editable(["mouth"])
    assert panel.editable_regions() == ("mouth",)
    with pytest.raises(ValueError, match="unknown region"):
        panel.set_editable(["ears"])


def test_overlay_panel_groups_show_all_and_opacity(qtbot) -> None:
    panel = OverlayPanel(OverlaySettings())
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.changed):
        panel.hide_all.click()
    assert not any(panel.settings().visible)
    panel.group_boxes["mouth"].click()
    visible = panel.settings().visible
    assert [i for i, v in enumerate(visible) if v] == [11, 12, 13]
    assert panel.group_boxes["mouth"].checkState() == Qt.CheckState.Checked
    panel.class_boxes[12].setChecked(False)
    assert panel.group_boxes["mouth"].checkState() == Qt.CheckState.PartiallyChecked
    panel.opacity.setValue(20)
    assert panel.settings().opacity == pytest.approx(0.2)
    panel.outline.setChecked(True)
    assert panel.settings().mode == "outline"
    panel.show_all.click()
    assert panel.settings().visible[0] is False and all(panel.settings().visible[1:])


def test_unavailable_panel_explains_itself_in_every_tooltip(qtbot) -> None:
    panel = ExpressionPanel()
    qtbot.addWidget(panel)
    set_available(panel, "No model is loaded: train one.")
    assert not panel.sliders["happy"].isEnabled()
    assert panel.sliders["happy"].toolTip() == "Unavailable: No model is loaded: train one."
    assert unavailable_reason(panel) == "No model is loaded: train one."
    set_available(panel, None)
    assert panel.sliders["happy"].isEnabled()
    assert "not renormalised" in panel.sliders["happy"].toolTip()


def test_an_untrained_expression_is_marked_and_off_until_tried(qtbot) -> None:
    panel = ExpressionPanel()
    qtbot.addWidget(panel)
    panel.set_condition({"fearful": 1.0, "happy": 0.5})  # asked for before the model loaded
    panel.set_facts(
        {
            "happy": ExpressionFacts(True, 0.62, 3954),
            "fearful": ExpressionFacts(False, None, 19),
        }
    )
    fearful, happy = panel.sliders["fearful"], panel.sliders["happy"]
    assert panel.labels["fearful"].text() == "Fearful\n(untrained)"
    assert panel.labels["happy"].text() == "Happy"
    assert not fearful.isEnabled() and happy.isEnabled() and panel.sliders["sad"].isEnabled()
    assert "only 19 training photos" in fearful.toolTip()
    assert "Not trained" in panel.labels["fearful"].toolTip()
    assert "read as happy 62 %" in happy.toolTip() and "not renormalised" in happy.toolTip()
    assert panel.condition() == {"happy": 0.5} and fearful.value() == 0, "never silently applied"
    # A panel disabled while a model loads gets the measured tooltips back afterwards.
    set_available(panel, "the model is still loading")
    set_available(panel, None)
    assert "only 19 training photos" in fearful.toolTip() and not fearful.isEnabled()

    assert panel.untrained_box.isVisibleTo(panel) and not panel.untrained_box.isChecked()
    with qtbot.waitSignal(panel.changed):
        panel.untrained_box.setChecked(True)
    assert fearful.isEnabled() and panel.labels["fearful"].isEnabled()
    fearful.setValue(40)
    assert panel.condition() == {"happy": 0.5, "fearful": pytest.approx(0.4)}
    with qtbot.waitSignal(panel.changed):
        panel.untrained_box.setChecked(False)
    assert panel.condition() == {"happy": 0.5} and not fearful.isEnabled()

    # A model without the table: every slider as before.
    panel.set_facts(None)
    assert panel.labels["fearful"].text() == "Fearful" and fearful.isEnabled()
    assert not panel.untrained_box.isVisibleTo(panel)
    assert "training photos" not in fearful.toolTip()


def test_scaled_pixmaps_are_made_at_device_resolution_for_hidpi(qtbot) -> None:
    from PySide6.QtCore import QSize

    from faceedit.ui.widgets.image_view import _ScaledCache

    cache = _ScaledCache(to_qimage(np.zeros((50, 80, 3), np.uint8)))
    sharp = cache.scaled(QSize(40, 25), dpr=2.0, smooth=True)
    assert (sharp.width(), sharp.height()) == (80, 50)  # device pixels: full detail
    assert sharp.devicePixelRatio() == 2.0  # laid out at 40x25 logical pixels
    assert cache.scaled(QSize(40, 25), dpr=2.0, smooth=True) is sharp  # cached while panning


def test_scores_not_refreshed_during_playback_keep_the_last_edited_bars(qtbot) -> None:
    from faceedit.ui.widgets.plots_panel import PlotsPanel

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    scores = np.linspace(0.1, 0.8, 8)
    panel.set_scores(scores, scores[::-1])
    panel.set_scores(scores, None)  # a video frame whose edited face was not scored again
    assert np.allclose(panel.edited_bars.opts["height"], scores[::-1])
    panel.clear()  # another source: no stale bars
    panel.set_scores(scores, None)
    assert not np.any(panel.edited_bars.opts["height"])


def test_the_menu_table_places_every_command_and_tips_name_real_shortcuts(qapp) -> None:
    from PySide6.QtWidgets import QMainWindow

    from faceedit.ui.menus import ACTIONS, CHOICES, MENUS, RECENT_MENUS, build_actions

    placed = [entry for _, entries in MENUS for entry in entries if entry != "-"]
    placed += [name for choices in CHOICES.values() for name in choices.after]
    assert set(placed) == set(ACTIONS) | set(CHOICES) | set(RECENT_MENUS)
    window = QMainWindow()
    actions = build_actions(window)
    assert actions.view_menu.title() == "&View"
    assert actions.devices.keys() == {"auto", "cpu", "cuda"}
    assert not actions.undo.isEnabled() and actions.split_view.actionGroup() is not None
    assert not [a.text() for a in window.findChildren(QAction) if a.toolTip().endswith("()")]
    window.deleteLater()


def test_split_view_keeps_a_new_photo_fitted_whatever_the_hidden_view_did(qtbot) -> None:
    from faceedit.ui.widgets.compare_view import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(1000, 900)
    view.show()
    qtbot.waitExposed(view)
    view.set_mode("side_by_side")
    photo = np.zeros((400, 300, 3), np.uint8)
    view.set_frames(photo, photo)
    qtbot.waitUntil(lambda: view.before_view.width() > 400)
    view.set_mode("split")
    qtbot.waitUntil(lambda: view.after_view.width() > 900)
    view.resize(300, 250)
    qtbot.waitUntil(lambda: view.after_view.width() < 400)
    after = view.after_view
    rect = after.image_rect()
    assert rect.height() <= after.height() and rect.width() <= after.width(), rect


def test_a_docs_path_in_a_message_is_a_link_and_the_message_stays_plain(qtbot) -> None:
    from faceedit.ui.widgets.message_bar import DOCS, MessageBar

    bar = MessageBar()
    qtbot.addWidget(bar)
    text = "Real photos need a model trained on real data (see docs/training.md) <b>"
    bar.show_message("info", text)
    assert bar.message() == text
    if (DOCS / "training.md").is_file():
        assert '<a href="file://' in bar.text.text() and "training.md</a>" in bar.text.text()
    assert "&lt;b&gt;" in bar.text.text()  # the message's own text is never markup


def test_open_camera_lists_the_cameras_by_name(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QInputDialog, QWidget

    from faceedit.ui import dialogs

    offered: list[list[str]] = []

    def get_item(*args: object) -> tuple[str, bool]:
        items = list(args[3])  # type: ignore[call-overload]
        offered.append(items)
        return items[1], True

    monkeypatch.setattr(QInputDialog, "getItem", get_item)
    parent = QWidget()
    qtbot.addWidget(parent)
    cameras = [(0, "Integrated Camera"), (2, "USB Webcam")]
    assert dialogs.ask_camera_index(parent, cameras) == 2
    assert offered == [["Integrated Camera (camera 0)", "USB Webcam (camera 2)"]]


def test_a_long_status_message_ends_in_an_ellipsis_beside_the_permanent_widgets(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QLabel, QMainWindow

    from faceedit.ui.widgets.status_bar import ElidingStatusBar

    window = QMainWindow()
    qtbot.addWidget(window)
    bar = ElidingStatusBar(window)
    window.setStatusBar(bar)
    bar.addPermanentWidget(QLabel("CPU · float32 · model.safetensors"))
    window.resize(420, 200)
    window.show()
    qtbot.waitExposed(window)
    text = "1 face · detect 31 ms · parse 12 ms · generate 40 ms · paste 3 ms · scores 5 ms"
    bar.showMessage(text)
    shown = bar.currentMessage()
    assert shown.endswith("…") and shown != text
    assert bar.fontMetrics().horizontalAdvance(shown) <= bar.room()
    assert bar.full_message() == text and bar.toolTip() == text
    bar.showMessage("Saved")
    assert bar.currentMessage() == "Saved" and bar.toolTip() == ""
