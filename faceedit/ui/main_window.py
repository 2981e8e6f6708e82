"""The main window: assembles the panels, routes their signals to the worker and back.

It holds no image logic of its own: panels draw, the worker computes, overlay.py renders, and
faceedit.media (images, masks) saves. What lives here is the wiring and the user-facing messages.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from pathlib import Path
from typing import Final

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
from faceedit.errors import FaceEditError
from faceedit.inference.request import EditRequest
from faceedit.inference.session import (
    FrameUpdate,
    ModelInfo,
    SourceInfo,
    SpeedOptions,
    source_serial,
)
from faceedit.media import bundled
from faceedit.media import masks as mask_files
from faceedit.media.images import save_png
from faceedit.media.sources import probe
from faceedit.state.document import Document, EditState, scores_note
from faceedit.ui import dialogs, gc_guard, layout
from faceedit.ui.menus import Actions, build_actions, check_speed_actions, shortcut_rows
from faceedit.ui.overlay import OverlaySettings, render_overlay
from faceedit.ui.settings import CompareMode, Preferences
from faceedit.ui.widgets.about_dialog import AboutDialog, about_rows
from faceedit.ui.widgets.availability import set_available
from faceedit.ui.widgets.busy_indicator import BusyIndicator
from faceedit.ui.widgets.compare_view import CompareView
from faceedit.ui.widgets.crop_panel import CropPanel
from faceedit.ui.widgets.expression_panel import ExpressionPanel
from faceedit.ui.widgets.image_view import to_qimage
from faceedit.ui.widgets.message_bar import MessageBar, MessageKind
from faceedit.ui.widgets.overlay_panel import OverlayPanel
from faceedit.ui.widgets.plots_panel import PlotsPanel
from faceedit.ui.widgets.region_panel import RegionPanel
from faceedit.ui.widgets.va_pad import ValenceArousalPanel
from faceedit.ui.widgets.video_controls import VideoControls
from faceedit.ui.worker import InferenceWorker, speed_from_preferences

CHECKPOINT_SUFFIX: Final[str] = ".safetensors"
LOADING: Final[str] = "the model is still loading"
NO_VALENCE_AROUSAL: Final[str] = (
    "the loaded model was not trained with valence and arousal labels, so it cannot steer them"
)
NO_CUDA: Final[str] = "Unavailable: no usable CUDA GPU was found on this machine"
NOT_YET: Final[str] = "the picture is still being computed; try again once it is shown"
SPEED_PREFERENCES: Final[tuple[str, ...]] = (
    "precision",
    "compile_networks",
    "reparse_every_frame",
    "stream_min_face",
)


class MainWindow(QMainWindow):
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

        # ---- panels ----
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
        crop_split.addWidget(_stack(self.overlay))
        crop_split.setStretchFactor(0, 3)
        crop_split.setStretchFactor(1, 2)
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
        self.status_device = QLabel("starting…")
        self.status_fps = QLabel("")
        # Says, for as long as the demo model is loaded, what it is and is not good for.
        self.status_demo = QLabel(bundled.DEMO_NOTE[0].upper() + bundled.DEMO_NOTE[1:])
        self.status_demo.setWordWrap(False)
        self.status_demo.hide()
        self.busy = BusyIndicator()
        self.statusBar().addPermanentWidget(self.busy)
        self.statusBar().addPermanentWidget(self.status_demo)
        self.statusBar().addPermanentWidget(self.status_fps)
        self.statusBar().addPermanentWidget(self.status_device)

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
        w = self.worker
        w.modelLoaded.connect(self._on_model_loaded)
        w.modelFailed.connect(self._on_model_failed)
        w.notice.connect(lambda text: self.show_message("warning", text))
        w.resultReady.connect(self._on_result)
        w.failed.connect(self._on_failed)
        w.sourceOpened.connect(self._on_source_opened)
        w.sourceFailed.connect(self._on_source_failed)
        w.playbackStopped.connect(self._on_playback_stopped)
        w.recordingFinished.connect(self._on_recording_finished)
        w.compileStatus.connect(self._on_compile_status)

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
        self.video.seekRequested.connect(w.seek)
        self.video.recordToggled.connect(self._on_record_toggled)
        self.docks["plots"].visibilityChanged.connect(self._update_scores_wanted)

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
        a.load_demo.triggered.connect(self.load_demo)
        a.load_demo.setEnabled(bundled.demo_available())
        a.aligned_input.setChecked(self.prefs.aligned_input)
        a.aligned_input.toggled.connect(lambda on: self.set_aligned_input(on))
        a.save_frame.triggered.connect(self._ask_save_frame)
        a.save_masks.triggered.connect(self._ask_save_masks)
        a.copy.triggered.connect(self.copy_to_clipboard)
        a.record.triggered.connect(self._on_record_toggled)
        a.quit.triggered.connect(self.close)
        a.reset.triggered.connect(self.reset_expression)
        a.next_face.triggered.connect(self._next_face)
        a.all_faces.toggled.connect(
            lambda on: self._controls_changed("Edit all faces" if on else "Edit one face")
        )
        a.split_view.triggered.connect(lambda: self.set_compare_mode("split"))
        a.side_by_side.triggered.connect(lambda: self.set_compare_mode("side_by_side"))
        a.zoom_fit.triggered.connect(self.compare.zoom_to_fit)
        a.zoom_in.triggered.connect(lambda: self.compare.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: self.compare.zoom_by(0.8))
        a.zoom_actual.triggered.connect(self.compare.zoom_actual)
        a.show_overlay.setChecked(self.overlay.settings().enabled)
        a.show_overlay.toggled.connect(self.overlay.enabled_box.setChecked)
        a.overlay_on_photo.toggled.connect(self._on_overlay_on_photo)
        a.play.triggered.connect(lambda: self.set_playing(not self.video.playing))
        for n, action in a.detect_every.items():
            action.setChecked(n == self.prefs.detect_every)
            action.triggered.connect(lambda _=False, n=n: self.set_detect_every(n))
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
        a.shortcuts.triggered.connect(self._show_shortcuts)
        a.about.triggered.connect(self.show_about)
        mode = self.prefs.compare_mode
        (a.split_view if mode == "split" else a.side_by_side).setChecked(True)
        self.compare.set_mode(mode)

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

    def open_path(self, path: str | Path) -> None:
        """Open an image, a video, or (by its extension) a checkpoint; errors become messages.

        With the demo model, a picture that is not one of its procedural samples is taken for
        the user's own photo: aligned input turns off, so the face is detected.
        """
        path = Path(path).expanduser()
        if path.suffix.lower() == CHECKPOINT_SUFFIX:
            self.load_checkpoint(path)
            return
        try:
            probe(path)  # a file that cannot open is said before any question about this one
        except FaceEditError as error:
            self.show_message("error", str(error))
            return
        if not self.confirm_discard(f"open {path.name}"):
            return
        if self.demo_in_use and not _is_procedural_sample(path):
            self.set_aligned_input(False, remember=False)
        self._begin_opening(path.name)
        self.worker.open_stream(path)

    def open_camera(self, index: int) -> None:
        if not self.confirm_discard(f"open camera {index}"):
            return
        if self.demo_in_use:
            self.set_aligned_input(False, remember=False)
        self._begin_opening(f"camera {index}")
        self.worker.open_stream(int(index))

    def _begin_opening(self, label: str) -> None:
        """A new source is asked for: the views empty at once and wait, busy, for its picture."""
        self._previous_label = self._source_label
        self._source_label = label
        self._opening = label
        self.document.begin_opening()
        self.latest = None
        self.compare.set_frames(None, None)
        self.crop.set_data(None, None, None, None)
        self.statusBar().showMessage(f"Opening {label}…")
        self._opened_at = time.monotonic()
        self._first_result_pending = True
        self.busy.begin("source", f"Opening {label}")

    def open_sample(self) -> None:
        """The sample face: with the demo model, the next procedural one (as an aligned crop),
        else the bundled portrait."""
        if self.demo_in_use and self.open_procedural_sample(self._next_sample):
            self._next_sample += 1
            return
        try:
            self.open_path(bundled.sample_image_path())
        except FaceEditError as error:
            self.show_message("error", str(error))

    def open_procedural_sample(self, index: int = 0) -> bool:
        """Open procedural sample `index` (wrapping) with aligned input on; False when none."""
        samples = bundled.procedural_samples()
        if not samples:
            return False
        self.set_aligned_input(True, remember=False)
        self.open_path(samples[index % len(samples)])
        return True

    def load_checkpoint(self, path: str | Path | None, note: str | None = None) -> None:
        """Load a model in the worker (None: run without one; the word `demo`: the bundled demo
        model); the controls follow its abilities. `note` is said in the model's banner once
        it has loaded (why this model, e.g. the remembered one is gone)."""
        self._model_note = note
        try:
            resolved = None if path is None else bundled.resolve_checkpoint(path)
        except FaceEditError as error:
            self.show_message("error", f"Checkpoint not loaded: {error}")
            if self.model_info is None and self._requested_model is None:
                self.worker.load_model(None)  # nothing loaded yet: still detect and align
            return
        self.statusBar().showMessage(
            f"Loading {resolved.name}…" if resolved else "Unloading the model…"
        )
        self.busy.begin("model", f"Loading {resolved.name}" if resolved else "Unloading the model")
        was_demo = self.demo_in_use
        self._requested_model = None if resolved is None else str(resolved)
        if was_demo and not self.demo_in_use:
            # The demo switched aligned input for its samples; the user's model gets their choice.
            self.set_aligned_input(self.prefs.aligned_input, remember=False)
        self._set_model_controls(None)
        self.worker.load_model(self._requested_model)

    def load_demo(self) -> None:
        """Load the demo model and open a procedural sample on it (Model menu)."""
        self.load_checkpoint(bundled.DEMO_WORD)
        if self.demo_in_use:
            self.open_sample()

    @property
    def demo_in_use(self) -> bool:
        """Whether the demo model is loaded, or the one being loaded."""
        return bundled.is_demo_checkpoint(self._requested_model)

    def set_aligned_input(self, on: bool, remember: bool = True) -> None:
        """Treat pictures as aligned face crops (no detection) or detect faces in them.

        remember: store the choice in the preferences (the menu toggle does; the demo's own
        switching does not, so a later session with the user's model is not affected).
        """
        if remember:
            self.prefs.aligned_input = on
        action = self.actions_.aligned_input
        if action.isChecked() != on:
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)
        self._center_split = True
        self.submit()

    def set_device(self, device: str) -> None:
        self._device_before = self.prefs.device
        self.prefs.device = device  # type: ignore[assignment]  # a device menu entry; Preferences checks it
        self.actions_.devices[device].setChecked(True)
        self.statusBar().showMessage(f"Switching to {device}…")
        self.busy.begin("model", f"Moving the model to {device}")
        self.worker.set_device(device)

    def _check_device(self, info: ModelInfo) -> None:
        """The CUDA entry is offered only where a GPU is usable; CUDA was chosen but the model
        runs on the CPU: tick what runs."""
        cuda = self.actions_.devices["cuda"]
        cuda.setEnabled(info.cuda_available)
        tip = "" if info.cuda_available else NO_CUDA
        cuda.setToolTip(tip or "Run the models on: cuda")
        cuda.setStatusTip(cuda.toolTip())
        if self.prefs.device != "cuda" or not info.device.startswith("cpu"):
            return
        before = self._device_before
        fallback: DeviceChoice = before if before != "cuda" else "auto"
        self.prefs.device = fallback
        self.actions_.devices[fallback].setChecked(True)

    def set_detect_every(self, frames: int) -> None:
        self.prefs.detect_every = frames
        self.actions_.detect_every[frames].setChecked(True)
        self.worker.set_detect_every(frames)

    def speed_options(self) -> SpeedOptions:
        """The worker's speed options, as the preferences hold them."""
        return speed_from_preferences(self.prefs)

    def set_speed(self, **changes: object) -> None:
        """Store speed preferences (precision, compile_networks, reparse_every_frame,
        stream_min_face) and hand them to the worker, which reloads the model for a new
        precision or when compilation is turned off."""
        unknown = set(changes) - set(SPEED_PREFERENCES)
        if unknown:
            raise ValueError(f"not speed preferences: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self.prefs, name, value)
        check_speed_actions(self.actions_, self.prefs)
        if "precision" in changes:
            self.statusBar().showMessage(f"Switching to {changes['precision']} precision…")
        self.worker.set_speed_options(self.speed_options())

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

    def confirm_discard(self, action: str) -> bool:
        """Before `action` drops unsaved edits: ask to save them, drop them, or stay."""
        if not self.document.modified:
            return True
        answer = dialogs.ask_unsaved(self, action)
        if answer == "save":
            return self._ask_save_frame() is not None
        return answer == "discard"

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

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_info = info
        self.compile_state = "off"
        self.busy.end("model")
        self._check_device(info)
        caps = info.capabilities
        name = Path(info.path).name if info.path else "no model"
        demo = bundled.is_demo_checkpoint(info.path)
        self.status_device.setText(self._model_label(info))
        self.status_demo.setVisible(demo)
        if info.path:
            self.prefs.add_recent_checkpoint(info.path)
            if not demo:  # a start without a model offers the demo again anyway
                self.prefs.last_checkpoint = info.path
            self.statusBar().showMessage(f"Loaded {name} on {info.device}", 5000)
        else:
            self.prefs.last_checkpoint = None
        note, self._model_note = self._model_note, None
        if caps.missing or note:
            lines = ([note] if note else []) + list(caps.missing)
            if demo and not caps.missing:
                lines.append(f"Loaded the {bundled.DEMO_NOTE}.")
            self.model_banner.show_message("warning", "\n".join(lines))
        elif demo:
            self.model_banner.show_message("info", f"Loaded the {bundled.DEMO_NOTE}.")
        else:
            self.model_banner.clear()
        self.expressions.set_regions(info.regions)
        self.regions.set_regions(info.regions)
        # Overrides of regions this model lacks went with the old one.
        self.document.rebase(self.edit_state())
        self._set_model_controls(info)
        self.document.settled_request_id = self.submit()
        self.modelReady.emit(info)

    def _on_model_failed(self, text: str) -> None:
        """The worker kept the model it had (if any): give its controls back and explain."""
        self._requested_model = self.model_info.path if self.model_info else None
        self.busy.end("model")
        if self.model_info is not None:
            self._set_model_controls(self.model_info)
            self.status_device.setText(self._model_label(self.model_info))
        self.show_message("error", f"Checkpoint not loaded: {text}")

    def _on_compile_status(self, state: str, message: str) -> None:
        self.compile_state = state
        if self.model_info is not None:
            self.status_device.setText(self._model_label(self.model_info))
        if state == "failed":
            self.show_message("warning", message)
        else:
            self.statusBar().showMessage(message, 8000)

    def _model_label(self, info: ModelInfo) -> str:
        if not info.path:
            return f"no model · {info.device}"
        compiled = {"compiling": " · compiling…", "ready": " · compiled"}.get(
            self.compile_state, ""
        )
        name = "demo model" if bundled.is_demo_checkpoint(info.path) else Path(info.path).name
        return f"{name} · {info.device} · {info.precision}{compiled}"

    def _set_model_controls(self, info: ModelInfo | None) -> None:
        """Enable what the loaded model can do; disabled controls say in their tooltip why."""
        edit_reason: str | None
        parse_reason: str | None
        if info is None:
            edit_reason = parse_reason = LOADING
        else:
            caps = info.capabilities
            missing = " ".join(caps.missing)
            edit_reason = None if caps.can_edit else missing
            parse_reason = None if caps.can_parse else missing
        set_available(self.expressions, edit_reason)
        set_available(self.regions, edit_reason)
        set_available(self.overlay, parse_reason)
        va_reason = edit_reason
        if va_reason is None and info is not None and not info.capabilities.valence_arousal:
            va_reason = NO_VALENCE_AROUSAL
        set_available(self.va, va_reason)
        self.actions_.reset.setEnabled(edit_reason is None)
        self.actions_.save_masks.setEnabled(parse_reason is None)
        self.docks["va"].setVisible(bool(info and info.capabilities.valence_arousal))
        self._update_scores_wanted()
        if self.latest is None:
            self._show_scores(None)

    def _on_source_opened(self, info: SourceInfo) -> None:
        self.source_info = info
        is_video = info.is_live or (info.frame_count or 0) > 1
        self.document.source_opened(info.name, info.serial, is_video)
        self._opening = None
        self._detect_ms.clear()
        self.busy.end("source")
        self.busy.begin("compute", f"Finding and editing faces in {info.name}")
        self._center_split = True
        self._face_index = None
        self._warned_no_face = None
        self.messages.clear()
        self.video.setVisible(is_video)
        self.video.set_source(info.frame_count, info.fps, info.is_live)
        self.video.set_playing(False)
        self.actions_.record.setEnabled(is_video)
        self.actions_.play.setEnabled(is_video)
        if not info.is_live and Path(info.path).exists():
            self.prefs.add_recent_file(info.path)
        self.plots.clear()
        self.plots.set_streaming(is_video)
        self._show_scores(None)
        self.statusBar().showMessage(f"Opened {info.name} ({info.size[0]}x{info.size[1]})", 4000)
        self.submit()
        if info.is_live:
            self.set_playing(True)

    def _on_source_failed(self, text: str) -> None:
        """The new source did not open; the session kept the previous frame: show it again."""
        self._opening = None
        self.busy.end("source")
        self._source_label = self._previous_label
        self.document.source_failed(self.source_info.serial if self.source_info else None)
        if self.source_info is not None:
            self.submit()
        else:
            self.busy.end("compute")
            self._show_scores(None)
        self.show_message("error", text)

    def _on_failed(self, request_id: int, text: str) -> None:
        if request_id >= self.request_id:
            self.busy.end("compute")
        self.show_message("error", text)

    def shows_current_source(self, update: FrameUpdate) -> bool:
        """Whether `update` was computed on the source now open (never one opened before)."""
        return self.document.shows(source_serial(update.frame_key))

    def _on_result(self, update: FrameUpdate) -> None:
        if not self.shows_current_source(update):
            return  # computed on an earlier source, or while a new one is being opened
        if update.request_id >= self.request_id:
            self.busy.end("compute")
        if self._first_result_pending:
            self._first_result_pending = False
            self._first_result_s = time.monotonic() - self._opened_at
        else:
            self._first_result_s = None
        self.latest = update
        self._show_frames(update)
        if self._center_split and update.boxes:
            # A new picture: put the split line through the chosen face, so both halves show it.
            box = update.boxes[update.chosen[0] if update.chosen else 0]
            self.compare.after_view.set_split_position(
                float(box[0] + box[2]) / 2 / update.input.shape[1]
            )
            self._center_split = False
        self.crop.set_data(update.crop, update.edited_crop, update.attention, update.labels)
        self.plots.add_timings(update.timings)
        self._show_scores(update)
        if update.frame_index is not None:
            self.video.set_position(update.frame_index)
        self._report(update)
        self.updateShown.emit(update)

    def _report(self, update: FrameUpdate) -> None:
        fps = self.plots.frames_per_second()
        self.status_fps.setText(f"{fps:.0f} fps" if self.video.isVisible() else "")
        if not update.boxes:
            key = (
                update.frame_key
                if self.source_info is None or not self.video.isVisible()
                else self.source_info.path
            )
            text = f"No face found in {self._source_label or 'this frame'}: try a larger, well-lit, frontal face (about 40 pixels or more)."
            if key != self._warned_no_face:
                self._warned_no_face = key
                self.show_message("warning", text)
            else:
                self.statusBar().showMessage(text)
            return
        if self.messages.kind == "warning" and self._warned_no_face is not None:
            self.messages.clear()
            self._warned_no_face = None
        faces = len(update.boxes)
        self.statusBar().showMessage(
            f"{faces} face{'s' if faces > 1 else ''} · {self._stage_times(update)}"
        )

    def _stage_times(self, update: FrameUpdate) -> str:
        """Each stage's time as it was spent: a reused detection is named with its own time."""
        t = update.timings
        if update.detected:
            self._detect_ms[update.frame_key] = t.get("detect", 0.0)
            detect = f"detect {t.get('detect', 0):.0f} ms"
        elif update.frame_key in self._detect_ms:
            detect = f"faces from the detection ({self._detect_ms[update.frame_key]:.0f} ms)"
        else:
            detect = "faces tracked" if self.video.isVisible() else "aligned crop"
        stages = [detect] + [f"{s} {t.get(s, 0):.0f} ms" for s in ("parse", "generate", "paste")]
        first = self._first_result_s
        if first is not None:
            stages.append(f"shown {first:.1f} s after opening")
        return " · ".join(stages)

    def _on_playback_stopped(self, reason: str) -> None:
        self.video.set_playing(False)
        self.actions_.play.setChecked(False)
        if reason:
            self.show_message("error", reason)

    def _show_frames(self, update: FrameUpdate) -> None:
        """The input and edited frames; the edited one under the parse when that is asked for
        (computed by the worker with the result, in the photo's own pixels)."""
        after = update.output
        parsed = update.frame_parse() if self.actions_.overlay_on_photo.isChecked() else None
        if parsed is not None:
            after = render_overlay(after, parsed[0], self.overlay.settings())
        self.compare.set_frames(update.input, after, update.boxes, update.chosen)

    def _on_overlay_on_photo(self, shown: bool) -> None:
        self.worker.set_frame_parse_wanted(shown)
        if self.latest is not None and not shown:
            self._show_frames(self.latest)

    def _on_overlay(self, settings: OverlaySettings) -> None:
        self.crop.set_overlay(settings)
        if self.latest is not None and self.actions_.overlay_on_photo.isChecked():
            self._show_frames(self.latest)
        self.actions_.show_overlay.setChecked(settings.enabled)
        self.prefs.overlay_opacity = settings.opacity
        self.prefs.overlay_mode = settings.mode

    def _show_scores(self, update: FrameUpdate | None) -> None:
        """The score chart, or the true reason it is empty (faceedit.state.document.scores_note)."""
        if update is not None and update.input_scores is not None:
            self.plots.set_scores(update.input_scores, update.edited_scores)
            return
        info = self.model_info
        note = scores_note(
            None if info is None else info.capabilities.can_score,
            self.source_info is not None,
            None if update is None else bool(update.boxes),
        )
        self.plots.set_scores(None, None, note or "")

    def _update_scores_wanted(self) -> None:
        info = self.model_info
        wanted = bool(info and info.capabilities.can_score) and self.docks["plots"].isVisible()
        self.worker.set_scores_wanted(wanted or not self.isVisible())
        latest = self.latest
        if wanted and latest is not None and latest.input_scores is None and latest.boxes:
            self.submit()  # the chart was hidden when this picture was computed: score it now

    # ---- recording and saving -------------------------------------------------------------------------

    def _on_record_toggled(self, on: bool) -> None:
        if not on:
            self.worker.stop_recording()
            self._show_recording(False)
            return
        suggested = self._save_folder() / f"{Path(self._source_label or 'camera').stem}-edited.mp4"
        path = dialogs.ask_save(self, "Record edited stream", suggested, dialogs.VIDEO_FILTER)
        if not path:
            self._show_recording(False)
            return
        self.start_recording(path)

    def start_recording(self, path: str | Path) -> None:
        self.worker.start_recording(path)
        self._show_recording(True)
        self.statusBar().showMessage(f"Recording to {path}")

    def _show_recording(self, on: bool) -> None:
        self.video.set_recording(on)
        self.actions_.record.setChecked(on)

    def _on_recording_finished(self, path: str, frames: int, error: str) -> None:
        self._show_recording(False)
        if error:
            self.show_message("error", f"Recording to {path} failed: {error}")
        else:
            self.document.mark_saved()  # the edited stream is on disk
            self.show_message("info", f"Saved {frames} frames to {path}")

    def save_frame(self, path: str | Path) -> Path | None:
        """Save the edited frame as PNG; None (with a message) when there is nothing to save."""
        if self.latest is None:
            self.show_message(
                "warning",
                f"There is no frame to save yet: {NOT_YET}."
                if self._opening or self.busy.busy("compute")
                else "There is no frame to save yet.",
            )
            return None
        try:
            saved = save_png(path, self.latest.output)
        except FaceEditError as error:
            self.show_message("error", str(error))
            return None
        self.statusBar().showMessage(f"Saved {saved}", 5000)
        self.prefs.last_save_folder = str(saved.parent)
        self.document.mark_saved()
        return saved

    def save_masks(self, path: str | Path) -> list[Path]:
        """Save the parse of the processed faces as faceedit.media.masks names it (classes,
        colours, regions), at the photo's own size."""
        update = self.latest
        parsed = None if update is None else update.frame_parse()
        if parsed is None or self.model_info is None:
            self.show_message("warning", "There are no masks to save: no face was parsed yet.")
            return []
        try:
            saved = mask_files.save_masks(path, *parsed, self.model_info.regions)
        except FaceEditError as error:
            self.show_message("error", str(error))
            return []
        self.statusBar().showMessage(f"Saved {len(saved)} mask images next to {saved[0]}", 5000)
        return saved

    def copy_to_clipboard(self) -> None:
        if self.latest is None:
            self.show_message("warning", f"There is no frame to copy yet: {NOT_YET}.")
            return
        QGuiApplication.clipboard().setImage(to_qimage(self.latest.output))
        self.statusBar().showMessage("Copied the edited frame to the clipboard", 3000)

    # ---- dialogs ---------------------------------------------------------------------------------------

    def _ask_open(self) -> None:
        path = dialogs.ask_open(
            self, "Open image or video", self._last_folder(), dialogs.MEDIA_FILTER
        )
        if path:
            self.open_path(path)

    def _ask_camera(self) -> None:
        index = dialogs.ask_camera_index(self)
        if index is not None:
            self.open_camera(index)

    def _ask_checkpoint(self) -> None:
        recent = self.prefs.existing_recent_checkpoints()
        folder = str(Path(recent[0]).parent) if recent else str(Path.home())
        path = dialogs.ask_open(self, "Load checkpoint", folder, dialogs.CHECKPOINT_FILTER)
        if path:
            self.load_checkpoint(path)

    def _ask_save_frame(self) -> Path | None:
        if self.latest is None:
            return self.save_frame("")  # says why there is nothing to save
        path = dialogs.ask_save(
            self, "Save edited frame", self.suggested_save_path("edited"), dialogs.PNG_FILTER
        )
        return self.save_frame(path) if path else None

    def _ask_save_masks(self) -> None:
        path = dialogs.ask_save(
            self,
            "Save masks (several PNG files)",
            self.suggested_save_path("masks"),
            dialogs.PNG_FILTER,
        )
        if path:
            self.save_masks(path)

    def suggested_save_path(self, what: str) -> Path:
        """`<input name>-<what>.png` in the save folder: never the input's own name."""
        stem = Path(self._source_label or "frame").stem
        return self._save_folder() / f"{stem}-{what}.png"

    def _save_folder(self) -> Path:
        """Where the last save went; else the input's folder unless it is inside the package
        (the bundled samples); else the home folder."""
        last = self.prefs.last_save_folder
        if last and Path(last).is_dir():
            return Path(last)
        info = self.source_info
        if info is not None and not info.is_live:
            folder = Path(info.path).expanduser().resolve().parent
            if folder.is_dir() and not _inside_package(folder):
                return folder
        return Path.home()

    def _last_folder(self) -> str:
        recent = self.prefs.existing_recent_files()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def about_rows(self) -> list[tuple[str, str]]:
        info = self.model_info
        versions = info.versions if info else {}
        model = None
        if info and info.path:
            steps = info.metadata.get("trained_steps") or info.metadata.get("step")
            model = f"{info.path} (crop {info.crop_size}, regions {', '.join(info.regions)}" + (
                f", {steps} training steps)" if steps else ")"
            )
        rows = about_rows(versions, info.device if info else None, model)
        if info and bundled.is_demo_checkpoint(info.path):
            rows.append(("Note", f"This is the {bundled.DEMO_NOTE}."))
        return rows

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.about_rows(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

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


def _inside_package(folder: Path) -> bool:
    package = Path(__file__).resolve().parents[1]
    return folder == package or package in folder.parents


def _is_procedural_sample(path: Path) -> bool:
    try:
        resolved = path.resolve()
        return any(resolved == sample.resolve() for sample in bundled.procedural_samples())
    except OSError:
        return False


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
