"""The window's small dialogs: file choosers, the camera index, recent-file menus, shortcuts.

Kept apart from the main window so it only wires panels and reacts to the worker.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox, QWidget

from faceedit.media.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS


def _patterns(extensions: frozenset[str]) -> str:
    return " ".join(f"*{e}" for e in sorted(extensions))


MEDIA_FILTER: Final[str] = ";;".join(
    [
        f"Images and videos ({_patterns(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)})",
        f"Images ({_patterns(IMAGE_EXTENSIONS)})",
        f"Videos ({_patterns(VIDEO_EXTENSIONS)})",
        "All files (*)",
    ]
)
CHECKPOINT_FILTER: Final[str] = "faceedit checkpoints (*.safetensors);;All files (*)"
PNG_FILTER: Final[str] = "PNG image (*.png)"
VIDEO_FILTER: Final[str] = "MP4 video (*.mp4);;AVI video (*.avi)"


def ask_open(parent: QWidget, title: str, folder: str, filters: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, title, folder, filters)
    return path or None


def ask_save(parent: QWidget, title: str, suggested: Path, filters: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, title, str(suggested), filters)
    return path or None


_IMAGE_FORMATS: Final[dict[str, tuple[str, str]]] = {
    ".png": ("PNG image", "*.png"),
    ".jpg": ("JPEG image", "*.jpg *.jpeg"),
    ".jpeg": ("JPEG image", "*.jpg *.jpeg"),
    ".bmp": ("BMP image", "*.bmp"),
}


def image_save_filters(input_suffix: str) -> str:
    """The input's own format first (when faceedit writes it), then PNG."""
    first = _IMAGE_FORMATS.get(input_suffix.lower(), _IMAGE_FORMATS[".png"])
    formats = [first] + [f for f in dict.fromkeys(_IMAGE_FORMATS.values()) if f != first]
    return ";;".join(f"{name} ({patterns})" for name, patterns in formats)


def ask_jpeg_quality(parent: QWidget, quality: int) -> int | None:
    """The JPEG quality to save with (1-100); None when cancelled."""
    value, ok = QInputDialog.getInt(
        parent,
        "JPEG quality",
        "JPEG quality (1-100; higher is larger and closer to the picture):",
        quality,
        1,
        100,
    )
    return value if ok else None


UnsavedAnswer = Literal["save", "discard", "cancel"]


def ask_unsaved(parent: QWidget, action: str, video: bool = False) -> UnsavedAnswer:
    """Before `action` ("quit", "open x.png") drops unsaved edits: save, discard or cancel.
    For a video or camera, Save saves the frame on screen (Record keeps the whole stream)."""
    buttons = QMessageBox.StandardButton
    question = (
        f"The edits to this video have not been saved. Save the edited frame on screen before "
        f"you {action}? (Record saves the whole edited video.)"
        if video
        else f"The edited picture has not been saved. Save it before you {action}?"
    )
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Unsaved edits",
        question,
        buttons.Save | buttons.Discard | buttons.Cancel,
        parent,
    )
    box.setDefaultButton(buttons.Save)
    answer = box.exec()
    if answer == buttons.Save:
        return "save"
    return "discard" if answer == buttons.Discard else "cancel"


def ask_camera_index(parent: QWidget, cameras: list[tuple[int, str]]) -> int | None:
    """The camera to open: picked from `cameras` ((index, name), as listed by the system),
    or, when none is listed, by its number."""
    if cameras:
        items = [camera_choice(index, name) for index, name in cameras]
        item, ok = QInputDialog.getItem(parent, "Open camera", "Camera:", items, 0, False)
        return cameras[items.index(item)][0] if ok and item in items else None
    index, ok = QInputDialog.getInt(
        parent,
        "Open camera",
        "No camera is listed by the system; open one by its number (0 is the first):",
        0,
        0,
        63,
    )
    return index if ok else None


def camera_choice(index: int, name: str) -> str:
    return f"{name} (camera {index})"


def fill_recent_menu(
    menu: QMenu, paths: list[str], opener: Callable[[str], object], clear: Callable[[], None]
) -> None:
    """Rebuild a recent-files menu (called as it is about to show, so it is always current)."""
    menu.clear()
    for path in paths:
        action = menu.addAction(Path(path).name)
        action.setToolTip(path)
        action.setStatusTip(path)
        action.triggered.connect(lambda _=False, p=path: opener(p))
    if not paths:
        menu.addAction("(none yet)").setEnabled(False)
        return
    menu.addSeparator()
    menu.addAction("Clear List", clear)


def show_shortcuts(parent: QWidget, rows: list[tuple[str, str]]) -> QMessageBox:
    """A non-modal table of shortcuts."""
    table = "".join(
        f"<tr><td style='padding-right:16px'><b>{html.escape(k)}</b></td>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    box = QMessageBox(
        QMessageBox.Icon.NoIcon,
        "Keyboard shortcuts",
        f"<table>{table}</table>",
        QMessageBox.StandardButton.Close,
        parent,
    )
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
