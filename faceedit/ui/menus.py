"""The window's actions, menus and toolbar: every command in one place with its shortcut."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

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
    load_real: QAction
    view_menu: QMenu
    shortcuts: QAction
    about: QAction
    toolbar: QToolBar


StandardKey = QKeySequence.StandardKey
Pixmap = QStyle.StandardPixmap


@dataclass(frozen=True)
class Spec:
    """One command: its menu text, shortcut, tip, and where else it shows."""

    text: str
    shortcut: StandardKey | str | None = None
    tip: str = ""
    checkable: bool = False
    icon: Pixmap | None = None
    short: str | None = None  # its toolbar text
    enabled: bool = True


# Every command of the window. Named as the Actions fields the window connects.
ACTIONS: Final[dict[str, Spec]] = {
    "open": Spec(
        "&Open Image or Video…", StandardKey.Open, "Open an image or a video file",
        icon=Pixmap.SP_DialogOpenButton, short="Open",
    ),
    "open_camera": Spec(
        "Open &Camera…", "Ctrl+Shift+O", "Edit a webcam's stream live",
        icon=Pixmap.SP_ComputerIcon, short="Camera",
    ),
    "open_sample": Spec(
        "Open &Sample Face", None,
        "Open the bundled sample photo (with the demo model: its next procedural face)",
    ),
    "load_checkpoint": Spec(
        "&Load Checkpoint…", "Ctrl+L", "Load a faceedit model (.safetensors)",
        icon=Pixmap.SP_DriveHDIcon, short="Checkpoint",
    ),
    "unload_checkpoint": Spec("&Unload Checkpoint", None, "Run detection and alignment only"),
    "save_frame": Spec(
        "&Save Edited Frame…", StandardKey.Save, "Save the edited frame as PNG",
        icon=Pixmap.SP_DialogSaveButton, short="Save",
    ),
    "save_masks": Spec(
        "Save &Masks…", "Ctrl+Shift+S",
        "Save the parse: coloured labels, class indices, region masks (PNG)",
    ),
    "copy": Spec(
        "&Copy Edited Frame", StandardKey.Copy, "Copy the edited frame to the clipboard"
    ),
    "record": Spec(
        "&Record Edited Stream…", "Ctrl+R", "Record the edited video or camera stream to a file",
        checkable=True,
    ),
    "quit": Spec("&Quit", StandardKey.Quit, "Quit faceedit"),
    "undo": Spec("&Undo", StandardKey.Undo, "Undo the last change of the edit settings",
        enabled=False,),
    "redo": Spec("&Redo", StandardKey.Redo, "Redo the change just undone", enabled=False),
    "reset": Spec(
        "&Reset to Input", "R",
        "All sliders to 0, no region targets, no valence/arousal: the input's own look "
        "(one step, undone with Ctrl+Z)",
        icon=Pixmap.SP_BrowserReload, short="Reset",
    ),
    "next_face": Spec("&Next Face", "N", "Edit the next detected face (or click a face)"),
    "all_faces": Spec(
        "Edit &All Faces", "Shift+A", "Apply the edit to every detected face", checkable=True
    ),
    "split_view": Spec(
        "&Split View", "Ctrl+1", "Before and after in one view, split by a draggable line",
        checkable=True, short="Split",
    ),
    "side_by_side": Spec(
        "Side &by Side", "Ctrl+2", "Before and after next to each other",
        checkable=True, short="Side by side",
    ),
    "zoom_fit": Spec("Zoom to &Fit", "F", "Fit the frame in the window"),
    "zoom_in": Spec("Zoom &In", StandardKey.ZoomIn, "Zoom in"),
    "zoom_out": Spec("Zoom &Out", StandardKey.ZoomOut, "Zoom out"),
    "zoom_actual": Spec("&Actual Pixels", "Ctrl+0", "One image pixel per screen pixel"),
    "show_overlay": Spec(
        "Segmentation &Overlay", "O", "Show the parser's classes over the face crop",
        checkable=True,
    ),
    "overlay_on_photo": Spec(
        "Segmentation on the &Photo", "Shift+O",
        "Also draw the parser's classes over the photo itself, in its own pixels",
        checkable=True,
    ),
    "play": Spec(
        "&Play / Pause", "Space", "Play or pause the video", checkable=True,
        icon=Pixmap.SP_MediaPlay,
    ),
    "previous_frame": Spec("Pre&vious Frame", None, "Step back one frame (Left)"),
    "next_frame": Spec("Ne&xt Frame", None, "Step forward one frame (Right)"),
    "reparse_every_frame": Spec(
        "&Parse Every Frame", None,
        "Parse the face on every frame so masks follow a moving mouth (slower); otherwise "
        "tracked frames reuse the parse of the last detection",
        checkable=True,
    ),
    "compile_networks": Spec(
        "&Compile Networks in the Background", None,
        "After the first frame, compile the networks with TorchInductor in a background "
        "process and switch to them when ready (worth it on a GPU; on a CPU about 10 % faster "
        "for a 30-50 s compile). For this run only; --compile turns it on at start",
        checkable=True,
    ),
    "aligned_input": Spec(
        "Input Is an &Aligned Face Crop", None,
        "Treat each picture as an already aligned face crop: no face detection, the whole "
        "picture is scaled to the model's crop, edited and scaled back",
        checkable=True,
    ),
    "load_real": Spec(
        "Load &Real-Face Model", None,
        "Load the bundled real-face model (trained on real photographs, 128 px), the default",
    ),
    "load_demo": Spec(
        "Load &Demo Model", None,
        "Load the bundled demo model (trained on procedural faces) and open a procedural sample",
    ),
    "shortcuts": Spec(
        "&Keyboard Shortcuts", StandardKey.HelpContents, "List the keyboard shortcuts"
    ),
    "about": Spec("&About faceedit", None, "Versions, device and model in use"),
}  # fmt: skip

# Submenus the window fills when they open.
RECENT_MENUS: Final[dict[str, str]] = {
    "recent_files": "Open &Recent",
    "recent_checkpoints": "Recent C&heckpoints",
}
EXCLUSIVE: Final[tuple[tuple[str, ...], ...]] = (("split_view", "side_by_side"),)


def _detect_choice(n: int) -> tuple[str, str]:
    if n == 1:
        return "Detect Every Frame", "Run the detector on every frame"
    return (
        f"Detect Every {n} Frames, Track Between",
        f"Detect every {n} frames; optical flow follows the face in between "
        "(steadier boxes, faster)",
    )


_DEVICE_NAMES: Final[dict[str, str]] = {
    "auto": "&Automatic (CUDA if Available)",
    "cpu": "&CPU",
    "cuda": "C&UDA GPU",
}
_PRECISION_NAMES: Final[dict[str, tuple[str, str]]] = {
    "auto": (
        "&Automatic (bfloat16 Where the Hardware Is Fast at It)",
        "bfloat16 on CPUs with AVX-512 BF16 or AMX and on recent GPUs: about 1.7x faster, "
        "within a few grey levels of float32",
    ),
    "float32": ("&Exact (float32)", "Always float32: slower on capable hardware, exact"),
}


@dataclass(frozen=True)
class Choices:
    """A submenu of exclusive choices (key -> text, tip), then other actions after a line."""

    title: str
    items: tuple[tuple[object, str, str], ...]
    after: tuple[str, ...] = ()


CHOICES: Final[dict[str, Choices]] = {
    "detect_every": Choices(
        "&Face Detection",
        tuple((n, *_detect_choice(n)) for n in DETECT_EVERY_CHOICES),
        after=("reparse_every_frame",),
    ),
    "min_face": Choices(
        "&Smallest Face",
        tuple(
            (
                px,
                f"{px} px",
                f"Videos and cameras: look for faces of {px} pixels and more (larger is "
                "faster; still images always search from 20 px)",
            )
            for px in STREAM_MIN_FACE_CHOICES
        ),
    ),
    "devices": Choices(
        "&Device", tuple((d, _DEVICE_NAMES[d], f"Run the models on: {d}") for d in DEVICES)
    ),
    "precisions": Choices("&Precision", tuple((p, *_PRECISION_NAMES[p]) for p in PRECISIONS)),
}

# The menu bar: action names, "-" a separator, a RECENT_MENUS or CHOICES name a submenu.
MENUS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("&File", (
        "open", "open_camera", "open_sample", "recent_files", "-",
        "load_checkpoint", "recent_checkpoints", "unload_checkpoint", "-",
        "save_frame", "save_masks", "copy", "record", "-", "quit",
    )),
    ("&Edit", ("undo", "redo", "-", "reset", "next_face", "all_faces")),
    ("&View", (
        "split_view", "side_by_side", "-", "zoom_fit", "zoom_in", "zoom_out", "zoom_actual",
        "-", "show_overlay", "overlay_on_photo", "-",
    )),
    ("&Playback", ("play", "previous_frame", "next_frame", "detect_every", "min_face")),
    ("&Model", (
        "devices", "precisions", "compile_networks", "aligned_input", "-",
        "load_checkpoint", "load_real", "load_demo", "unload_checkpoint",
    )),
    ("&Help", ("shortcuts", "about")),
)  # fmt: skip
TOOLBAR: Final[tuple[str, ...]] = (
    "open", "open_camera", "load_checkpoint", "save_frame", "-",
    "reset", "split_view", "side_by_side",
)  # fmt: skip


def _action(window: QMainWindow, spec: Spec) -> QAction:
    action = QAction(spec.text, window)
    if spec.shortcut is not None:
        action.setShortcut(QKeySequence(spec.shortcut))
    if spec.tip:
        key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setStatusTip(spec.tip)
        action.setToolTip(f"{spec.tip} ({key})" if key else spec.tip)
    action.setCheckable(spec.checkable)
    action.setEnabled(spec.enabled)
    if spec.icon is not None:
        action.setIcon(window.style().standardIcon(spec.icon))
    if spec.short is not None:
        action.setIconText(spec.short)
    return action


def _choice_menu(window: QMainWindow, menu: QMenu, choices: Choices) -> dict[Any, QAction]:
    group = QActionGroup(window)
    made: dict[Any, QAction] = {}
    for key, text, tip in choices.items:
        item = _action(window, Spec(text, None, tip, checkable=True))
        group.addAction(item)
        menu.addAction(item)
        made[key] = item
    return made


def build_actions(window: QMainWindow) -> Actions:
    """Create the menus and the toolbar of `window` from the tables above; the caller connects
    the actions."""
    made: dict[str, Any] = {name: _action(window, spec) for name, spec in ACTIONS.items()}
    made |= {name: QMenu(title, window) for name, title in RECENT_MENUS.items()}
    for names in EXCLUSIVE:
        group = QActionGroup(window)
        for name in names:
            group.addAction(made[name])
    menus: dict[str, QMenu] = {}
    for title, entries in MENUS:
        menu = menus[title] = window.menuBar().addMenu(title)
        for entry in entries:
            if entry == "-":
                menu.addSeparator()
            elif entry in RECENT_MENUS:
                menu.addMenu(made[entry])
            elif entry in CHOICES:
                choices = CHOICES[entry]
                submenu = menu.addMenu(choices.title)
                made[entry] = _choice_menu(window, submenu, choices)
                if choices.after:
                    submenu.addSeparator()
                    for name in choices.after:
                        submenu.addAction(made[name])
            else:
                menu.addAction(made[entry])
    toolbar = QToolBar("Main", window)
    toolbar.setObjectName("main-toolbar")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for entry in TOOLBAR:
        if entry == "-":
            toolbar.addSeparator()
        else:
            toolbar.addAction(made[entry])
    window.addToolBar(toolbar)
    wanted = {f.name for f in fields(Actions)} - {"view_menu", "toolbar"}
    return Actions(
        view_menu=menus["&View"], toolbar=toolbar, **{name: made[name] for name in wanted}
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
