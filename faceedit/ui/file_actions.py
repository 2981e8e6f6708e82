"""Opening, saving and recording: the window's File menu and what answers the worker's
source signals. Every question about unsaved edits is asked here, after the file is checked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from PySide6.QtGui import QGuiApplication

from faceedit.errors import FaceEditError
from faceedit.inference.session import SourceInfo
from faceedit.media import bundled
from faceedit.media import masks as mask_files
from faceedit.media.cameras import list_cameras
from faceedit.media.images import (
    DEFAULT_JPEG_QUALITY,
    JPEG_SUFFIXES,
    WRITABLE_SUFFIXES,
    save_image,
    save_png,
)
from faceedit.media.probe import probe
from faceedit.ui import dialogs
from faceedit.ui.widgets.image_view import to_qimage
from faceedit.ui.window_parts import WindowParts

CHECKPOINT_SUFFIX: Final[str] = ".safetensors"
NOT_YET: Final[str] = "the picture is still being computed; try again once it is shown"


class FileActions(WindowParts):
    """Open images, videos, cameras and samples; save the edited frame and masks; record."""

    def open_path(self, path: str | Path) -> None:
        """Open an image, a video, or (by its extension) a checkpoint; errors become messages.

        A bundled model follows the picture (`_bundled_model_for`). With the demo model, a
        picture that is not one of its procedural samples is taken for the user's own photo:
        aligned input turns off, so the face is detected; one of its samples turns it on.
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
        self._bundled_model_for(path, path.name)
        if self.demo_in_use:
            self.set_aligned_input(bundled.is_procedural_sample(path), remember=False)
        self._begin_opening(path.name)
        self.worker.open_stream(path)

    def open_camera(self, index: int) -> None:
        if not self.confirm_discard(f"open camera {index}"):
            return
        self._bundled_model_for(None, f"camera {index}")
        if self.demo_in_use:
            self.set_aligned_input(False, remember=False)
        self._begin_opening(f"camera {index}")
        self.worker.open_stream(int(index))

    def _bundled_model_for(self, picture: Path | None, label: str) -> None:
        """With a bundled model loaded, switch to the bundled one made for `picture` (None: a
        camera): the demo model for a procedural sample, the real-face model for a photo,
        each when installed. A model the user chose themselves is never swapped."""
        current = bundled.bundled_word(self._requested_model)
        wanted = bundled.bundled_for([] if picture is None else [picture])
        if current is None or wanted is None or wanted == current:
            return
        kind = "one of the procedural sample faces" if wanted == bundled.DEMO_WORD else "a photo"
        model = bundled.BUNDLED_MODELS[wanted]
        was = bundled.BUNDLED_MODELS[current].label
        self.load_checkpoint(
            wanted, note=f"{label} is {kind}: the {model.label}, made for it, replaces the {was}."
        )

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
        else the bundled sample photo (a held-out real face)."""
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

    def confirm_discard(self, action: str) -> bool:
        """Before `action` drops unsaved edits: ask to save them, drop them, or stay."""
        if not self.document.modified:
            return True
        info = self.source_info
        video = info is not None and (info.is_live or (info.frame_count or 0) > 1)
        answer = dialogs.ask_unsaved(self, action, video)
        if answer == "save":
            return self._ask_save_frame() is not None
        return answer == "discard"

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

    def _stop_recording_at_end(self, reason: str) -> None:
        """Playback stopped: at the end of a video (no reason), its recording ends too."""
        info = self.source_info
        if reason or not self.actions_.record.isChecked() or info is None or info.is_live:
            return
        self.worker.stop_recording()
        self._show_recording(False)

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

    def save_frame(self, path: str | Path, quality: int | None = None) -> Path | None:
        """Save the edited frame in the format its name says (PNG, JPEG with `quality`, BMP;
        another name gets .png); None (with a message) when there is nothing to save."""
        if self.latest is None:
            self.show_message(
                "warning",
                f"There is no frame to save yet: {NOT_YET}."
                if self._opening or self.busy.busy("compute")
                else "There is no frame to save yet.",
            )
            return None
        try:
            if Path(path).suffix.lower() in WRITABLE_SUFFIXES:
                saved = save_image(path, self.latest.output, quality)
            else:
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

    def _ask_open(self) -> None:
        path = dialogs.ask_open(
            self, "Open image or video", self._last_folder(), dialogs.MEDIA_FILTER
        )
        if path:
            self.open_path(path)

    def _ask_camera(self) -> None:
        index = dialogs.ask_camera_index(self, list_cameras())
        if index is not None:
            self.open_camera(index)

    def _ask_save_frame(self) -> Path | None:
        if self.latest is None:
            return self.save_frame("")  # says why there is nothing to save
        suggested = self.suggested_save_path("edited")
        filters = dialogs.image_save_filters(suggested.suffix)
        path = dialogs.ask_save(self, "Save edited frame", suggested, filters)
        if not path:
            return None
        quality = None
        if Path(path).suffix.lower() in JPEG_SUFFIXES:
            quality = dialogs.ask_jpeg_quality(self, DEFAULT_JPEG_QUALITY)
            if quality is None:
                return None
        return self.save_frame(path, quality)

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
        """`<input name>-<what>.<the input's format>` in the save folder (PNG for masks, for
        videos and for formats faceedit does not write): never the input's own name."""
        label = Path(self._source_label or "frame")
        suffix = label.suffix.lower()
        if what == "masks" or suffix not in WRITABLE_SUFFIXES:
            suffix = ".png"
        return self._save_folder() / f"{label.stem}-{what}{suffix}"

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
        """Where Open starts: the folder of the newest recent file that is the user's (never
        the package's own, where the bundled samples live); else the home folder."""
        for recent in self.prefs.existing_recent_files():
            folder = Path(recent).resolve().parent
            if not _inside_package(folder):
                return str(folder)
        return str(Path.home())


def _inside_package(folder: Path) -> bool:
    package = Path(__file__).resolve().parents[1]
    return folder == package or package in folder.parents
