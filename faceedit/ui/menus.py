"""The window's actions, menus and toolbar: every command in one place with its shortcut."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QStyle, QToolBar

from faceedit.device import DEVICES
from faceedit.ui.settings import (
    DETECT_EVERY_CHOICES,
    PRECISIONS,
    STREAM_MIN_FACE_CHOICES,
    Preferences,
)


@dataclass
class Actions:
    """Named actions the main window connects to its handlers."""

    open: QAction
    open_camera: QAction
    open_sample: QAction
    recent_files: QMenu
    load_checkpoint: QAction
    recent_checkpoints: QMenu
    unload_checkpoint: QAction
    save_frame: QAction
    save_masks: QAction
    copy: QAction
    record: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    reset: QAction
    next_face: QAction
    all_faces: QAction
    split_view: QAction
    side_by_side: QAction
    zoom_fit: QAction
    zoom_in: QAction
    zoom_out: QAction
    zoom_actual: QAction
    show_overlay: QAction
    overlay_on_photo: QAction
    play: QAction
    previous_frame: QAction
    next_frame: QAction
    detect_every: dict[int, QAction]
    reparse_every_frame: QAction
    min_face: dict[int, QAction]
    devices: dict[str, QAction]
    precisions: dict[str, QAction]
    compile_networks: QAction
    aligned_input: QAction
    load_demo: QAction
    view_menu: QMenu
    shortcuts: QAction
    about: QAction
    toolbar: QToolBar


def _action(
    window: QMainWindow,
    text: str,
    shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
    tip: str = "",
    checkable: bool = False,
) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(
            f"{tip} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
            if shortcut
            else tip
        )
    action.setCheckable(checkable)
    return action


def build_actions(window: QMainWindow) -> Actions:
    """Create the menus and the toolbar of `window`; the caller connects the actions."""
    style = window.style()
    icon = style.standardIcon
    sp = QStyle.StandardPixmap
    std = QKeySequence.StandardKey

    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    open_ = _action(window, "&Open Image or Video…", std.Open, "Open an image or a video file")
    open_.setIcon(icon(sp.SP_DialogOpenButton))
    open_camera = _action(window, "Open &Camera…", "Ctrl+Shift+O", "Edit a webcam's stream live")
    open_camera.setIcon(icon(sp.SP_ComputerIcon))
    open_sample = _action(
        window, "Open &Sample Face", None, "Open the bundled public-domain portrait"
    )
    recent_files = QMenu("Open &Recent", window)
    load_checkpoint = _action(
        window, "&Load Checkpoint…", "Ctrl+L", "Load a faceedit model (.safetensors)"
    )
    load_checkpoint.setIcon(icon(sp.SP_DriveHDIcon))
    recent_checkpoints = QMenu("Recent C&heckpoints", window)
    unload_checkpoint = _action(
        window, "&Unload Checkpoint", None, "Run detection and alignment only"
    )
    save_frame = _action(window, "&Save Edited Frame…", std.Save, "Save the edited frame as PNG")
    save_frame.setIcon(icon(sp.SP_DialogSaveButton))
    save_masks = _action(
        window,
        "Save &Masks…",
        "Ctrl+Shift+S",
        "Save the parse: coloured labels, class indices, region masks (PNG)",
    )
    copy = _action(window, "&Copy Edited Frame", std.Copy, "Copy the edited frame to the clipboard")
    record = _action(
        window,
        "&Record Edited Stream…",
        "Ctrl+R",
        "Record the edited video or camera stream to a file",
        checkable=True,
    )
    quit_ = _action(window, "&Quit", std.Quit, "Quit faceedit")
    for item in (open_, open_camera, open_sample):
        file_menu.addAction(item)
    file_menu.addMenu(recent_files)
    file_menu.addSeparator()
    file_menu.addAction(load_checkpoint)
    file_menu.addMenu(recent_checkpoints)
    file_menu.addAction(unload_checkpoint)
    file_menu.addSeparator()
    for item in (save_frame, save_masks, copy, record):
        file_menu.addAction(item)
    file_menu.addSeparator()
    file_menu.addAction(quit_)

    edit_menu = bar.addMenu("&Edit")
    undo = _action(window, "&Undo", std.Undo, "Undo the last change of the edit settings")
    redo = _action(window, "&Redo", std.Redo, "Redo the change just undone")
    for item in (undo, redo):
        item.setEnabled(False)
        edit_menu.addAction(item)
    edit_menu.addSeparator()
    reset = _action(
        window,
        "&Reset to Input",
        "R",
        "All sliders to 0, no region targets, no valence/arousal: the input's own look "
        "(one step, undone with Ctrl+Z)",
    )
    reset.setIcon(icon(sp.SP_BrowserReload))
    next_face = _action(window, "&Next Face", "N", "Edit the next detected face (or click a face)")
    all_faces = _action(
        window,
        "Edit &All Faces",
        "Shift+A",
        "Apply the edit to every detected face",
        checkable=True,
    )
    for item in (reset, next_face, all_faces):
        edit_menu.addAction(item)

    view_menu = bar.addMenu("&View")
    compare = QActionGroup(window)
    split_view = _action(
        window,
        "&Split View",
        "Ctrl+1",
        "Before and after in one view, split by a draggable line",
        checkable=True,
    )
    side_by_side = _action(
        window, "Side &by Side", "Ctrl+2", "Before and after next to each other", checkable=True
    )
    for item in (split_view, side_by_side):
        compare.addAction(item)
        view_menu.addAction(item)
    view_menu.addSeparator()
    zoom_fit = _action(window, "Zoom to &Fit", "F", "Fit the frame in the window")
    zoom_in = _action(window, "Zoom &In", std.ZoomIn, "Zoom in")
    zoom_out = _action(window, "Zoom &Out", std.ZoomOut, "Zoom out")
    zoom_actual = _action(window, "&Actual Pixels", "Ctrl+0", "One image pixel per screen pixel")
    for item in (zoom_fit, zoom_in, zoom_out, zoom_actual):
        view_menu.addAction(item)
    view_menu.addSeparator()
    show_overlay = _action(
        window,
        "Segmentation &Overlay",
        "O",
        "Show the parser's classes over the face crop",
        checkable=True,
    )
    view_menu.addAction(show_overlay)
    overlay_on_photo = _action(
        window,
        "Segmentation on the &Photo",
        "Shift+O",
        "Also draw the parser's classes over the photo itself, in its own pixels",
        checkable=True,
    )
    view_menu.addAction(overlay_on_photo)
    view_menu.addSeparator()

    play_menu = bar.addMenu("&Playback")
    play = _action(window, "&Play / Pause", "Space", "Play or pause the video", checkable=True)
    play.setIcon(icon(sp.SP_MediaPlay))
    play_menu.addAction(play)
    previous_frame = _action(window, "Pre&vious Frame", None, "Step back one frame (Left)")
    next_frame = _action(window, "Ne&xt Frame", None, "Step forward one frame (Right)")
    play_menu.addAction(previous_frame)
    play_menu.addAction(next_frame)
    detect_menu = play_menu.addMenu("&Face Detection")
    detect_group = QActionGroup(window)
    detect_every: dict[int, QAction] = {}
    for n in DETECT_EVERY_CHOICES:
        text = "Detect Every Frame" if n == 1 else f"Detect Every {n} Frames, Track Between"
        tip = (
            "Run the detector on every frame"
            if n == 1
            else f"Detect every {n} frames; optical flow follows the face in between (steadier boxes, faster)"
        )
        item = _action(window, text, None, tip, checkable=True)
        detect_group.addAction(item)
        detect_menu.addAction(item)
        detect_every[n] = item
    detect_menu.addSeparator()
    reparse_every_frame = _action(
        window,
        "&Parse Every Frame",
        None,
        "Parse the face on every frame so masks follow a moving mouth (slower); otherwise "
        "tracked frames reuse the parse of the last detection",
        checkable=True,
    )
    detect_menu.addAction(reparse_every_frame)
    min_face_menu = play_menu.addMenu("&Smallest Face")
    min_face_group = QActionGroup(window)
    min_face: dict[int, QAction] = {}
    for pixels in STREAM_MIN_FACE_CHOICES:
        item = _action(
            window,
            f"{pixels} px",
            None,
            f"Videos and cameras: look for faces of {pixels} pixels and more (larger is faster; "
            "still images always search from 20 px)",
            checkable=True,
        )
        min_face_group.addAction(item)
        min_face_menu.addAction(item)
        min_face[pixels] = item

    model_menu = bar.addMenu("&Model")
    device_menu = model_menu.addMenu("&Device")
    device_group = QActionGroup(window)
    devices: dict[str, QAction] = {}
    names = {"auto": "&Automatic (CUDA if Available)", "cpu": "&CPU", "cuda": "C&UDA GPU"}
    for device in DEVICES:
        item = _action(window, names[device], None, f"Run the models on: {device}", checkable=True)
        device_group.addAction(item)
        device_menu.addAction(item)
        devices[device] = item
    precision_menu = model_menu.addMenu("&Precision")
    precision_group = QActionGroup(window)
    precisions: dict[str, QAction] = {}
    precision_names = {
        "auto": (
            "&Automatic (bfloat16 Where the Hardware Is Fast at It)",
            "bfloat16 on CPUs with AVX-512 BF16 or AMX and on recent GPUs: about 1.7x faster, "
            "within a few grey levels of float32",
        ),
        "float32": ("&Exact (float32)", "Always float32: slower on capable hardware, exact"),
    }
    for precision in PRECISIONS:
        text, tip = precision_names[precision]
        item = _action(window, text, None, tip, checkable=True)
        precision_group.addAction(item)
        precision_menu.addAction(item)
        precisions[precision] = item
    compile_networks = _action(
        window,
        "&Compile Networks in the Background",
        None,
        "After the first frame, compile the networks with TorchInductor in a background "
        "process and switch to them when ready (worth it on a GPU; on a CPU about 10 % faster "
        "for a 30-50 s compile, so off by default)",
        checkable=True,
    )
    model_menu.addAction(compile_networks)
    aligned_input = _action(
        window,
        "Input Is an &Aligned Face Crop",
        None,
        "Treat each picture as an already aligned face crop: no face detection, the whole "
        "picture is scaled to the model's crop, edited and scaled back",
        checkable=True,
    )
    model_menu.addAction(aligned_input)
    model_menu.addSeparator()
    model_menu.addAction(load_checkpoint)
    load_demo = _action(
        window,
        "Load &Demo Model",
        None,
        "Load the bundled demo model (trained on procedural faces) and open a procedural sample",
    )
    model_menu.addAction(load_demo)
    model_menu.addAction(unload_checkpoint)

    help_menu = bar.addMenu("&Help")
    shortcuts = _action(
        window, "&Keyboard Shortcuts", std.HelpContents, "List the keyboard shortcuts"
    )
    about = _action(window, "&About faceedit", None, "Versions, device and model in use")
    help_menu.addAction(shortcuts)
    help_menu.addAction(about)

    toolbar = QToolBar("Main", window)
    toolbar.setObjectName("main-toolbar")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for item, short in (
        (open_, "Open"),
        (open_camera, "Camera"),
        (load_checkpoint, "Checkpoint"),
        (save_frame, "Save"),
        (reset, "Reset"),
        (split_view, "Split"),
        (side_by_side, "Side by side"),
    ):
        item.setIconText(short)
    for item in (open_, open_camera, load_checkpoint, save_frame):
        toolbar.addAction(item)
    toolbar.addSeparator()
    toolbar.addAction(reset)
    toolbar.addAction(split_view)
    toolbar.addAction(side_by_side)
    window.addToolBar(toolbar)

    return Actions(
        open=open_,
        open_camera=open_camera,
        open_sample=open_sample,
        recent_files=recent_files,
        load_checkpoint=load_checkpoint,
        recent_checkpoints=recent_checkpoints,
        unload_checkpoint=unload_checkpoint,
        save_frame=save_frame,
        save_masks=save_masks,
        copy=copy,
        record=record,
        quit=quit_,
        undo=undo,
        redo=redo,
        reset=reset,
        next_face=next_face,
        all_faces=all_faces,
        split_view=split_view,
        side_by_side=side_by_side,
        zoom_fit=zoom_fit,
        zoom_in=zoom_in,
        zoom_out=zoom_out,
        zoom_actual=zoom_actual,
        show_overlay=show_overlay,
        overlay_on_photo=overlay_on_photo,
        play=play,
        previous_frame=previous_frame,
        next_frame=next_frame,
        detect_every=detect_every,
        reparse_every_frame=reparse_every_frame,
        min_face=min_face,
        devices=devices,
        precisions=precisions,
        compile_networks=compile_networks,
        aligned_input=aligned_input,
        load_demo=load_demo,
        view_menu=view_menu,
        shortcuts=shortcuts,
        about=about,
        toolbar=toolbar,
    )


def check_speed_actions(actions: Actions, prefs: Preferences) -> None:
    """Tick the speed actions (precision, compile, parse, smallest face) as `prefs` hold them."""
    actions.precisions[prefs.precision].setChecked(True)
    actions.min_face[prefs.stream_min_face].setChecked(True)
    for action, on in (
        (actions.compile_networks, prefs.compile_networks),
        (actions.reparse_every_frame, prefs.reparse_every_frame),
    ):
        if action.isChecked() != on:
            action.setChecked(on)


def shortcut_rows(actions: Actions) -> list[tuple[str, str]]:
    """(shortcut, command) for the shortcuts dialog, in menu order."""
    rows = []
    for value in vars(actions).values():
        if isinstance(value, QAction) and not value.shortcut().isEmpty():
            key = value.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            rows.append((key, value.text().replace("&", "")))
    rows += [
        ("Left / Right", "Previous / next frame of a paused video"),
        ("Wheel / drag", "Zoom / pan the frame"),
        ("Double-click", "Zoom to fit"),
        ("Click a face", "Choose the face to edit"),
    ]
    return rows
