"""What the window's parts share: its panels, its state and the few methods they call on each
other. The main window assembles them (main_window.py); opening, saving and recording live in
file_actions.py, the model and its menus in model_actions.py, showing results in results.py.

Only declarations: for the type checker these classes are QMainWindows; at run time each is
a plain mixin and MainWindow is the one QMainWindow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow

from faceedit.device import DeviceChoice
from faceedit.inference.session import FrameUpdate, ModelInfo, SourceInfo
from faceedit.state.document import Document, EditState
from faceedit.ui.menus import Actions
from faceedit.ui.settings import Preferences
from faceedit.ui.widgets.busy_indicator import BusyIndicator
from faceedit.ui.widgets.compare_view import CompareView
from faceedit.ui.widgets.crop_panel import CropPanel
from faceedit.ui.widgets.expression_panel import ExpressionPanel
from faceedit.ui.widgets.message_bar import MessageBar, MessageKind
from faceedit.ui.widgets.overlay_panel import OverlayPanel
from faceedit.ui.widgets.plots_panel import PlotsPanel
from faceedit.ui.widgets.region_panel import RegionPanel
from faceedit.ui.widgets.va_pad import ValenceArousalPanel
from faceedit.ui.widgets.video_controls import VideoControls
from faceedit.ui.worker import InferenceWorker

_Base = QMainWindow if TYPE_CHECKING else object


class WindowParts(_Base):  # type: ignore[misc,valid-type]
    """The window's panels and state, as every part sees them."""

    prefs: Preferences
    worker: InferenceWorker
    document: Document
    actions_: Actions
    docks: dict[str, QDockWidget]
    messages: MessageBar
    model_banner: MessageBar
    compare: CompareView
    video: VideoControls
    crop: CropPanel
    overlay: OverlayPanel
    expressions: ExpressionPanel
    regions: RegionPanel
    va: ValenceArousalPanel
    plots: PlotsPanel
    busy: BusyIndicator
    status_device: QLabel
    status_fps: QLabel
    status_model_note: QLabel

    model_info: ModelInfo | None
    source_info: SourceInfo | None
    latest: FrameUpdate | None
    compile_state: str
    _source_label: str
    _previous_label: str
    _opening: str | None
    _opened_at: float
    _first_result_pending: bool
    _first_result_s: float | None
    _face_index: int | None
    _warned_no_face: object
    _center_split: bool
    _requested_model: str | None
    _model_note: str | None
    _next_sample: int
    _detect_ms: dict[object, float]
    _device_before: DeviceChoice

    # Methods one part calls on another.
    show_message: Callable[[MessageKind, str], None]
    submit: Callable[[], int]
    edit_state: Callable[[], EditState]
    set_playing: Callable[[bool], None]
    load_checkpoint: Callable[..., None]
    set_aligned_input: Callable[..., None]
    confirm_discard: Callable[[str], bool]
    open_sample: Callable[[], None]
    save_frame: Callable[[str | Path], Path | None]
    _set_model_controls: Callable[[ModelInfo | None], None]
    _show_scores: Callable[[FrameUpdate | None], None]
    _update_scores_wanted: Callable[[], None]
