"""The main window: assembles the panels, routes their signals to the worker and back.

It holds no image logic of its own: panels draw, the worker computes, overlay.py renders, and
faceedit.media (images, masks) saves. What lives here is the wiring and the user-facing messages.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeyEvent,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from faceedit.device import DeviceChoice
from faceedit.inference.request import EditRequest
from faceedit.inference.session import (
    FrameUpdate,
    ModelInfo,
    SourceInfo,
)
from faceedit.media import bundled
from faceedit.state.document import Document, EditState
from faceedit.ui import dialogs, gc_guard, layout
from faceedit.ui.file_actions import CHECKPOINT_SUFFIX, FileActions
from faceedit.ui.menus import Actions, build_actions, check_speed_actions, shortcut_rows
from faceedit.ui.model_actions import ModelActions
from faceedit.ui.overlay import OverlaySettings
from faceedit.ui.results import Results
from faceedit.ui.settings import CompareMode, Preferences
from faceedit.ui.widgets.busy_indicator import BusyIndicator
from faceedit.ui.widgets.compare_view import CompareView
from faceedit.ui.widgets.crop_panel import CropPanel
from faceedit.ui.widgets.expression_panel import ExpressionPanel
from faceedit.ui.widgets.message_bar import MessageBar, MessageKind
from faceedit.ui.widgets.overlay_panel import OverlayPanel
from faceedit.ui.widgets.plots_panel import PlotsPanel
from faceedit.ui.widgets.region_panel import RegionPanel
from faceedit.ui.widgets.status_bar import ElidingStatusBar
from faceedit.ui.widgets.va_pad import ValenceArousalPanel
from faceedit.ui.widgets.video_controls import VideoControls
from faceedit.ui.worker import InferenceWorker


class MainWindow(FileActions, ModelActions, Results, QMainWindow):
    """faceedit's window. Public methods are what the CLI, the menus and the tests drive."""

    updateShown = Signal(object)  # FrameUpdate, after every panel shows it
    modelReady = Signal(object)  # ModelInfo
    messageShown = Signal(str, str)  # kind, text

    def __init__(self, prefs: Preferences | None = None, device: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("faceedit")
        self.setAcceptDrops(True)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
        )
        self.prefs = prefs or Preferences()
        self.worker = InferenceWorker(
            device or self.prefs.device, self.prefs.detect_every, self, self.speed_options()
        )
        self._released_collection = False  # gc_guard.hold() below, released once on close
        self.compile_state = "off"
        self.model_info: ModelInfo | None = None
        self.source_info: SourceInfo | None = None
        self.latest: FrameUpdate | None = None
        self._face_index: int | None = None
        self._source_label = ""
        self._warned_no_face: object = None
        self._center_split = True
        self._requested_model: str | None = None  # the checkpoint last asked for, resolved
        self._model_note: str | None = None  # said in the model banner once the model loads
        self._next_sample = 0  # the procedural sample Open Sample Face shows next
        self._opening: str | None = None  # what is being opened, for the busy sign
        self._opened_at = 0.0  # when the current source was asked for (first-result time)
        self._first_result_pending = False
        self._detect_ms: dict[object, float] = {}  # frame key -> its detection's time
        self._first_result_s: float | None = None  # open to first result, for the status bar
        self._previous_label = ""
        self._device_before: DeviceChoice = self.prefs.device
        self.remember_layout = True  # off for --snapshot, whose fixed size is not the user's

        self._build_panels()
        self._build_status_bar()

        self.actions_ = build_actions(self)
        for dock in self.docks.values():
            self.actions_.view_menu.addAction(dock.toggleViewAction())
        # The edit settings, their undo history and the modified flag (faceedit/state): the
        # panels show them; _showing_controls is set while they are being set from it.
        self.document = Document(self.edit_state())
        self._showing_controls = False
        self._connect(self.actions_)
        self._set_model_controls(None)
        self._show_document_state()
        layout.set_minimum_sizes(self.docks, self.compare)
        self._restore_layout()
        gc_guard.hold()  # cycles are collected on this thread while the worker runs
        self.worker.start()

    @property
    def request_id(self) -> int:
        """The newest request handed to the worker."""
        return self.document.request_id

    @property
    def settled_request_id(self) -> int:
        """The first request sent with the current model's settings."""
        return self.document.settled_request_id

    # ---- assembly ---------------------------------------------------------------------------------

    def _build_panels(self) -> None:
        """The picture in the middle, the panels docked around it."""
        self.messages = MessageBar()
        self.model_banner = MessageBar()
        self.compare = CompareView()
        self.video = VideoControls()
        self.video.hide()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(4, 4, 4, 0)
        column.setSpacing(4)
        column.addWidget(self.model_banner)
        column.addWidget(self.messages)
        column.addWidget(self.compare, 1)
        column.addWidget(self.video)
        self.setCentralWidget(central)

        self.crop = CropPanel()
        self.overlay = OverlayPanel(
            OverlaySettings(opacity=self.prefs.overlay_opacity, mode=self.prefs.overlay_mode)
        )
        self.expressions = ExpressionPanel()
        self.regions = RegionPanel()
        self.va = ValenceArousalPanel()
        self.plots = PlotsPanel()
        self.crop.set_overlay(self.overlay.settings())
        crop_split = QSplitter(Qt.Orientation.Vertical)
        crop_split.addWidget(self.crop)
        overlay = _stack(self.overlay)
        # The overlay's controls get their height (no scroll bar with the classes folded); the
        # crop picture, which scales, takes the rest.
        overlay.setMinimumHeight(self.overlay.sizeHint().height() + 4)
        crop_split.addWidget(overlay)
        crop_split.setStretchFactor(0, 1)
        crop_split.setStretchFactor(1, 0)
        # Side docks run the full height; the plots sit under the picture only.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.docks = {
            "crop": self._dock(
                "Face crop and segmentation",
                crop_split,
                Qt.DockWidgetArea.LeftDockWidgetArea,
            ),
            "expression": self._dock(
                "Expression",
                _stack(self.expressions, self.regions),
                Qt.DockWidgetArea.RightDockWidgetArea,
            ),
            "va": self._dock("Valence and arousal", self.va, Qt.DockWidgetArea.RightDockWidgetArea),
            "plots": self._dock("Live plots", self.plots, Qt.DockWidgetArea.BottomDockWidgetArea),
        }
        self.docks["va"].hide()
        self.regions.tab_after(self.expressions.reset_button)  # both in this window now

    def _build_status_bar(self) -> None:
        self.setStatusBar(ElidingStatusBar(self))
        self.status_device = QLabel("starting…")
        self.status_fps = QLabel("")
        # Says, for as long as a bundled model is loaded, which one and what it is good for.
        # Short, so the status message beside it is not cut mid-word on a laptop screen; the
        # banner and its tooltip say the whole note.
        self.status_model_note = QLabel("")
        self.status_model_note.setWordWrap(False)
        self.status_model_note.hide()
        self.busy = BusyIndicator()
        self.statusBar().addPermanentWidget(self.busy)
        self.statusBar().addPermanentWidget(self.status_model_note)
        self.statusBar().addPermanentWidget(self.status_fps)
        self.statusBar().addPermanentWidget(self.status_device)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _connect(self, a: Actions) -> None:
        self._connect_worker()
        self._connect_panels(a)
        self._connect_file_menu(a)
        self._connect_view_menu(a)
        self._connect_model_menu(a)
        a.shortcuts.triggered.connect(self._show_shortcuts)
        a.about.triggered.connect(self.show_about)

    def _connect_worker(self) -> None:
        w = self.worker
        w.modelLoaded.connect(self._on_model_loaded)
        w.modelFailed.connect(self._on_model_failed)
        w.notice.connect(lambda text: self.show_message("warning", text))
        w.resultReady.connect(self._on_result)
        w.failed.connect(self._on_failed)
        w.sourceOpened.connect(self._on_source_opened)
        w.sourceFailed.connect(self._on_source_failed)
        w.playbackStopped.connect(self._on_playback_stopped)
        w.playbackStopped.connect(self._stop_recording_at_end)
        w.recordingFinished.connect(self._on_recording_finished)
        w.compileStatus.connect(self._on_compile_status)

    def _connect_panels(self, a: Actions) -> None:
        """The edit controls, the document they feed and the Edit and Playback menus."""
        self.compare.faceClicked.connect(self.choose_face)
        self.expressions.changed.connect(
            lambda: self._controls_changed(
                self.expressions.change_text, ("expr", *self.expressions.change_key)
            )
        )
        self.regions.changed.connect(lambda: self._controls_changed("Change region lock"))
        self.va.changed.connect(
            lambda: self._controls_changed("Steer valence and arousal", ("va", self.va.pad.strokes))
        )
        self.expressions.resetRequested.connect(self.reset_expression)
        self.docks["va"].toggleViewAction().toggled.connect(self._on_va_panel_shown)
        self.document.events.controls.connect(self._show_controls)
        self.document.events.state.connect(self._show_document_state)
        a.undo.triggered.connect(self.document.undo)
        a.redo.triggered.connect(self.document.redo)
        a.previous_frame.triggered.connect(lambda: self.step_frame(-1))
        a.next_frame.triggered.connect(lambda: self.step_frame(1))
        self.overlay.changed.connect(self._on_overlay)
        self.video.playToggled.connect(self.set_playing)
        self.video.seekRequested.connect(self.worker.seek)
        self.video.recordToggled.connect(self._on_record_toggled)
        self.docks["plots"].visibilityChanged.connect(self._update_scores_wanted)
        a.reset.triggered.connect(self.reset_expression)
        a.next_face.triggered.connect(self._next_face)
        a.all_faces.toggled.connect(
            lambda on: self._controls_changed("Edit all faces" if on else "Edit one face")
        )
        a.play.triggered.connect(lambda: self.set_playing(not self.video.playing))
        for n, action in a.detect_every.items():
            action.setChecked(n == self.prefs.detect_every)
            action.triggered.connect(lambda _=False, n=n: self.set_detect_every(n))

    def _connect_file_menu(self, a: Actions) -> None:
        a.open.triggered.connect(self._ask_open)
        a.open_camera.triggered.connect(self._ask_camera)
        a.open_sample.triggered.connect(self.open_sample)
        a.recent_files.aboutToShow.connect(
            lambda: dialogs.fill_recent_menu(
                a.recent_files,
                self.prefs.existing_recent_files(),
                self.open_path,
                self.prefs.clear_recent,
            )
        )
        a.load_checkpoint.triggered.connect(self._ask_checkpoint)
        a.recent_checkpoints.aboutToShow.connect(
            lambda: dialogs.fill_recent_menu(
                a.recent_checkpoints,
                self.prefs.existing_recent_checkpoints(),
                self.load_checkpoint,
                self.prefs.clear_recent,
            )
        )
        a.unload_checkpoint.triggered.connect(lambda: self.load_checkpoint(None))
        a.save_frame.triggered.connect(self._ask_save_frame)
        a.save_masks.triggered.connect(self._ask_save_masks)
        a.copy.triggered.connect(self.copy_to_clipboard)
        a.record.triggered.connect(self._on_record_toggled)
        a.quit.triggered.connect(self.close)

    def _connect_view_menu(self, a: Actions) -> None:
        a.split_view.triggered.connect(lambda: self.set_compare_mode("split"))
        a.side_by_side.triggered.connect(lambda: self.set_compare_mode("side_by_side"))
        a.zoom_fit.triggered.connect(self.compare.zoom_to_fit)
        a.zoom_in.triggered.connect(lambda: self.compare.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: self.compare.zoom_by(0.8))
        a.zoom_actual.triggered.connect(self.compare.zoom_actual)
        a.show_overlay.setChecked(self.overlay.settings().enabled)
        a.show_overlay.toggled.connect(self.overlay.enabled_box.setChecked)
        a.overlay_on_photo.toggled.connect(self._on_overlay_on_photo)
        mode = self.prefs.compare_mode
        (a.split_view if mode == "split" else a.side_by_side).setChecked(True)
        self.compare.set_mode(mode)

    def _connect_model_menu(self, a: Actions) -> None:
        for word, action in ((bundled.DEMO_WORD, a.load_demo), (bundled.REAL_WORD, a.load_real)):
            action.triggered.connect(lambda _=False, w=word: self.load_bundled(w))
            action.setEnabled(bundled.is_installed(word))
        a.aligned_input.setChecked(self.prefs.aligned_input)
        a.aligned_input.toggled.connect(lambda on: self.set_aligned_input(on))
        for device, action in a.devices.items():
            action.setChecked(device == self.prefs.device)
            action.triggered.connect(lambda _=False, d=device: self.set_device(d))
        check_speed_actions(a, self.prefs)
        for precision, action in a.precisions.items():
            action.triggered.connect(lambda _=False, p=precision: self.set_speed(precision=p))
        for pixels, action in a.min_face.items():
            action.triggered.connect(lambda _=False, px=pixels: self.set_speed(stream_min_face=px))
        a.compile_networks.toggled.connect(lambda on: self.set_speed(compile_networks=on))
        a.reparse_every_frame.toggled.connect(lambda on: self.set_speed(reparse_every_frame=on))

    def _restore_layout(self) -> None:
        """The saved layout, clamped to the screen; else one that fits the screen (docs/architecture.md §3, App state)."""
        geometry, state = self.prefs.layout()
        screen = self.available_geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.setGeometry(layout.first_geometry(screen))
            if screen.height() < layout.PLOTS_MIN_SCREEN_HEIGHT:
                self.docks["plots"].hide()  # the picture gets the height of a small screen
        else:
            self.setGeometry(layout.clamp(self.geometry(), screen))
        if state is None or not self.restoreState(state):
            layout.default_dock_sizes(self, self.docks)
        layout.widen_narrowed_docks(self, self.docks)

    def available_geometry(self) -> QRect:
        """The screen area a window may use (device-independent pixels, any scale factor)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, 1366, 768)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        layout.give_the_picture_room(self, self.docks)

    # ---- opening things ------------------------------------------------------------------------------

    def set_compare_mode(self, mode: CompareMode) -> None:
        self.prefs.compare_mode = mode
        (self.actions_.split_view if mode == "split" else self.actions_.side_by_side).setChecked(
            True
        )
        self.compare.set_mode(mode)

    # ---- the request ---------------------------------------------------------------------------------

    def edit_state(self) -> EditState:
        """Every edit setting as the controls hold it (what undo and redo restore)."""
        own = self.expressions.region_conditions()
        return EditState(
            whole=tuple(sorted(self.expressions.condition().items())),
            own=tuple(sorted((r, tuple(sorted(w.items()))) for r, w in own.items())),
            editable=self.regions.editable_regions(),
            valence_arousal=self.va.value(),
            face_index=self._face_index,
            all_faces=self.actions_.all_faces.isChecked(),
        )

    def _show_controls(self) -> None:
        """Set the panels to the document's settings (undo, redo, Reset, a face chosen)."""
        state = self.document.controls
        self._showing_controls = True
        try:
            self._set_panels(state)
        finally:
            self._showing_controls = False
        if state.valence_arousal is not None and self.va.isEnabled():
            self.docks["va"].show()  # steering is never invisible
        self.submit()

    def _set_panels(self, state: EditState) -> None:
        self.expressions.set_state(dict(state.whole), {r: dict(w) for r, w in state.own})
        known = set(self.regions.boxes)
        editable = None if state.editable is None else [r for r in state.editable if r in known]
        self.regions.set_editable(editable, emit=False)
        self.va.set_value(state.valence_arousal, emit=False)
        self._face_index = state.face_index
        action = self.actions_.all_faces
        action.blockSignals(True)
        action.setChecked(state.all_faces)
        action.blockSignals(False)

    def _controls_changed(self, text: str, merge_key: Hashable | None = None) -> None:
        """A control moved: the document takes it (a step when the picture changes; a drag
        merges into one) and a new request goes out."""
        if self._showing_controls:
            return
        self.document.edit(self.edit_state(), text, merge_key)
        self.submit()

    def _on_va_panel_shown(self, shown: bool) -> None:
        if not shown and not self._showing_controls:
            self.document.stop_steering()

    def _show_document_state(self) -> None:
        """The title, the modified marker and the Edit menu say what the document holds."""
        document = self.document
        self.expressions.set_steering(document.controls.valence_arousal)
        self.setWindowTitle(document.title)
        self.setWindowModified(document.modified)
        history = document.history
        self.actions_.undo.setEnabled(history.can_undo)
        self.actions_.redo.setEnabled(history.can_redo)
        self.actions_.undo.setText(f"&Undo {document.undo_text}".rstrip())
        self.actions_.redo.setText(f"&Redo {document.redo_text}".rstrip())

    def current_request(self) -> EditRequest:
        """The edit the controls describe right now."""
        info = self.model_info
        va = self.va.value() if info is not None and info.capabilities.valence_arousal else None
        return EditRequest(
            condition=self.expressions.condition(),
            region_conditions=self.expressions.region_conditions(),
            editable_regions=self.regions.editable_regions(),
            valence_arousal=va,
            face_index=self._face_index,
            all_faces=self.actions_.all_faces.isChecked(),
            aligned=self.actions_.aligned_input.isChecked(),
        )

    def submit(self) -> int:
        """Hand the current request to the worker (it replaces any request not yet started)."""
        self.document.request_id = self.worker.submit(self.current_request())
        if self.source_info is not None and self.model_info is not None:
            self.busy.begin("compute", "Computing")
        return self.request_id

    def reset_expression(self) -> None:
        """Back to the input's own look: every slider 0, no region targets, no valence/arousal.
        One undo step."""
        self.document.reset()

    def choose_face(self, index: int) -> None:
        """Edit face `index` only; no edit and no undo step while nothing is edited."""
        self.document.choose_face(index)

    def step_frame(self, step: int) -> None:
        """Show the previous (-1) or next (+1) frame of a paused video (the arrow keys)."""
        info = self.source_info
        if info is None or info.is_live or (info.frame_count or 0) <= 1:
            return
        if self.video.playing:
            self.set_playing(False)
        current = self.video.seek.value()
        self.video.seek.setValue(min(max(current + step, 0), (info.frame_count or 1) - 1))

    def _next_face(self) -> None:
        count = len(self.latest.boxes) if self.latest else 0
        if count > 1:
            self.choose_face(((self._face_index or 0) + 1) % count)

    def set_playing(self, playing: bool) -> None:
        info = self.source_info
        if info is None or (info.frame_count == 1 and not info.is_live):
            playing = False
        elif (
            playing
            and not info.is_live
            and self.latest is not None
            and info.frame_count
            and (self.latest.frame_index or 0) >= info.frame_count - 1
        ):
            self.worker.seek(0)  # play from the start after the end
        self.video.set_playing(playing)
        self.actions_.play.setChecked(playing)
        self.worker.set_playing(playing)

    # ---- worker signals --------------------------------------------------------------------------------

    # ---- recording and saving -------------------------------------------------------------------------

    # ---- dialogs ---------------------------------------------------------------------------------------

    def _show_shortcuts(self) -> None:
        dialogs.show_shortcuts(self, shortcut_rows(self.actions_))

    def show_message(self, kind: MessageKind, text: str) -> None:
        """A non-modal message above the picture and in the status bar; the app stays usable."""
        self.messages.show_message(kind, text)
        self.statusBar().showMessage(text.splitlines()[0], 10_000)
        self.messageShown.emit(kind, text)

    # ---- drag and drop, closing -------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        # A checkpoint and a picture dropped together: load the model first, then open the picture.
        for path in sorted(files, key=lambda p: p.suffix.lower() != CHECKPOINT_SUFFIX):
            self.open_path(path)
        event.acceptProposedAction()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Left and Right step a paused video when no control (a slider) took the keys."""
        steps = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}
        if event.key() in steps and self.video.isVisible():
            self.step_frame(steps[Qt.Key(event.key())])
            event.accept()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.confirm_discard("quit"):
            event.ignore()
            return
        if self.remember_layout:
            self.prefs.save_layout(QByteArray(self.saveGeometry()), QByteArray(self.saveState()))
        self.prefs.sync()
        if not self.worker.stop():
            self.show_message(
                "error", "The inference worker did not stop within 10 s; closing anyway."
            )
        elif not self._released_collection:
            self._released_collection = True
            gc_guard.release()
        super().closeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self._update_scores_wanted)


def _stack(*widgets: QWidget) -> QScrollArea:
    """Panels one above the other in a scroll area, so small screens still reach every control."""
    body = QWidget()
    layout = QVBoxLayout(body)
    layout.setContentsMargins(2, 2, 2, 2)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setWidget(body)
    return scroll
