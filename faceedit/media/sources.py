"""Frames from image files, video files and cameras, with errors that say what to do.

Every frame is an (H, W, 3) uint8 RGB array (see faceedit.faces.image on colour order): OpenCV's
BGR is converted at the point of reading and writing, nowhere else.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceedit.errors import InputError, OutputError
from faceedit.faces.image import as_rgb_uint8
from faceedit.fileio import check_output_file, final_mode, free_space_text, output_error

logger = logging.getLogger(__name__)
if os.environ.get("OPENCV_LOG_LEVEL", "").upper() == "ERROR":
    # cv2 reads the variable (faceedit/__init__.py) only if imported after faceedit.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
# Formats whose files may hold several pages; faceedit reads the first and says so.
_MULTI_PAGE_FORMATS: Final[frozenset[str]] = frozenset({"TIFF", "WEBP"})

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)
VIDEO_EXTENSIONS: Final[frozenset[str]] = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".mpg", ".mpeg"}
)
# Pillow's format names for the files we accept ("MPO" is a phone camera's multi-picture JPEG).
_PILLOW_FORMATS: Final[frozenset[str]] = frozenset(
    {"PNG", "JPEG", "MPO", "BMP", "DIB", "TIFF", "WEBP"}
)
_SUPPORTED_IMAGES: Final[str] = "PNG, JPEG, BMP, TIFF or WebP"
_DEFAULT_FPS: Final[float] = 30.0
CAMERA_OPEN_TIMEOUT_S: Final[float] = 5.0
CAMERA_READ_TIMEOUT_S: Final[float] = 2.0
# Camera indices OpenCV accepts; a negative one makes some backends crash in native code.
MAX_CAMERA_INDEX: Final[int] = 999


# ---------------------------------------------------------------- still images


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, turned upright by its EXIF orientation.

    16-bit images are scaled to 8 bits (16-bit colour PNGs by Pillow, keeping the high byte;
    16-bit gray by faceedit, rounding), gray and palette images become RGB and transparency is
    composited onto white. Any file that cannot be fully decoded raises InputError.
    """
    file = _existing_file(path, what="image")
    try:
        with Image.open(file) as opened:
            if opened.format not in _PILLOW_FORMATS:
                raise InputError(
                    f"{file}: {opened.format} images are not supported; convert it to "
                    f"{_SUPPORTED_IMAGES}"
                )
            pages = int(getattr(opened, "n_frames", 1) or 1)
            if pages > 1 and opened.format in _MULTI_PAGE_FORMATS:
                logger.warning(
                    "%s: the file holds %d pages; only the first is read (split the pages "
                    "into separate files to edit the others)",
                    file,
                    pages,
                )
            opened.load()  # decode everything now: truncated files must fail here
            upright = ImageOps.exif_transpose(opened)
            pixels = _pillow_to_array(upright, file)
    except UnidentifiedImageError:
        raise InputError(
            f"{file}: not an image faceedit can read (the content is not {_SUPPORTED_IMAGES}, "
            "whatever the file name says); re-export it from an image editor"
        ) from None
    except PermissionError:
        raise InputError(
            f"{file}: permission denied; check that your user may read this file"
        ) from None
    except Image.DecompressionBombError as error:
        raise InputError(f"{file}: {error}; downscale the image first") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise InputError(
            f"{file}: the image is damaged or truncated and cannot be decoded ({error}); "
            "re-download or re-export it"
        ) from None
    return as_rgb_uint8(pixels, source=str(file))


def _pillow_to_array(image: Image.Image, file: Path) -> np.ndarray:
    """Pillow image -> numpy in a form as_rgb_uint8 understands (uint8/uint16, 1-4 channels)."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "I;16", "I;16L", "I;16B"):
        return np.asarray(image)
    if mode == "I":  # 32-bit integer; Pillow uses it for some 16-bit gray files
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise InputError(f"{file}: 32-bit integer pixels are not supported; save as 16-bit")
        return values.astype(np.uint16)
    if mode == "F":
        return np.asarray(image)  # float: as_rgb_uint8 accepts [0, 1] and refuses the rest
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    return np.asarray(image.convert("RGB"))  # 1, CMYK, YCbCr, LAB, HSV, ...


def _existing_file(path: str | os.PathLike[str], what: str) -> Path:
    file = Path(path).expanduser()
    if file.is_dir():
        raise InputError(
            f"{file} is a folder, not an {what} file; pass one file, or use "
            "`faceedit edit FOLDER` to edit every image in a folder"
        )
    if not file.exists():
        raise InputError(f"{file}: no such file; check the path and its spelling")
    if not file.is_file():
        raise InputError(f"{file}: not a regular file; pass an {what} file")
    if file.stat().st_size == 0:
        raise InputError(f"{file}: the file is empty (0 bytes); it was not saved completely")
    return file


# ---------------------------------------------------------------- frame sources


class FrameSource:
    """Frames one after the other. `read()` returns the next RGB frame or raises InputError;
    iteration stops at the end instead. Use as a context manager (or call `close()`).

    name: what to show the user. is_live: a camera (frames cannot be revisited). frame_count:
    None for a camera. fps: frames per second (0.0 for a still image). size: (width, height).
    index: how many frames have been read since the start (or the last seek).
    """

    name: str
    is_live: bool
    frame_count: int | None
    fps: float
    size: tuple[int, int]
    index: int

    def read(self) -> np.ndarray:
        frame = self._next_frame()
        if frame is None:
            raise InputError(self._end_message())
        self.index += 1
        return frame

    def seek(self, index: int) -> None:
        raise InputError(f"{self.name}: a live source cannot seek")

    def close(self) -> None:
        """Release the file or device; reading afterwards raises InputError."""

    def _next_frame(self) -> np.ndarray | None:
        """The next frame, or None at the end."""
        raise NotImplementedError

    def _end_message(self) -> str:
        return f"end of {self.name}: no more frames"

    def _check_seek(self, index: int) -> None:
        count = self.frame_count or 0
        if not isinstance(index, int) or not 0 <= index < count:
            raise InputError(
                f"{self.name}: cannot seek to frame {index!r}; it has frames 0..{count - 1}"
            )

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        frame = self._next_frame()
        if frame is None:
            raise StopIteration
        self.index += 1
        return frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class ImageSource(FrameSource):
    """One still image as a one-frame source (each read returns a fresh copy)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._frame: np.ndarray | None = read_image(path)
        self.name = Path(path).name
        self.is_live = False
        self.frame_count = 1
        self.fps = 0.0
        self.size = (self._frame.shape[1], self._frame.shape[0])
        self.index = 0

    def seek(self, index: int) -> None:
        self._check_seek(index)
        self.index = index

    def close(self) -> None:
        self._frame = None

    def _next_frame(self) -> np.ndarray | None:
        if self._frame is None:
            raise InputError(f"{self.name}: the source was closed; open it again")
        return self._frame.copy() if self.index == 0 else None

    def _end_message(self) -> str:
        return f"end of image {self.name}: it has one frame; seek(0) to read it again"


class VideoSource(FrameSource):
    """A video file decoded by OpenCV's FFmpeg backend."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        file = _existing_file(path, what="video")
        capture = cv2.VideoCapture(str(file), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise InputError(
                f"{file}: OpenCV cannot open this video (not a video, damaged, or a codec its "
                "FFmpeg lacks); convert it to H.264 MP4, e.g. `ffmpeg -i IN -c:v libx264 out.mp4`"
            )
        self._capture: cv2.VideoCapture | None = capture
        self.name = file.name
        self.is_live = False
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if np.isfinite(fps) and fps > 0 else _DEFAULT_FPS
        self.index = 0
        # Decode the first frame now, so a video without a decodable frame fails at open.
        self._pending: np.ndarray | None = self._decode()
        if self._pending is None:
            self.close()
            raise InputError(
                f"{file}: the video holds no frame OpenCV can decode; it may be damaged or "
                "use an unsupported codec (convert it to H.264 MP4)"
            )
        self.size = (self._pending.shape[1], self._pending.shape[0])
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        # Some containers do not store a count; then it is learnt at the end.
        self.frame_count = count if count > 0 else None

    def seek(self, index: int) -> None:
        """Position so the next read returns frame `index` (0-based)."""
        if self.frame_count is None:
            raise InputError(f"{self.name}: the video does not say how many frames it has")
        self._check_seek(index)
        capture = self._open_capture()
        if not capture.set(cv2.CAP_PROP_POS_FRAMES, index):
            raise InputError(f"{self.name}: OpenCV cannot seek in this video")
        self._pending = None
        self.index = index

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._pending = None

    def _open_capture(self) -> cv2.VideoCapture:
        if self._capture is None:
            raise InputError(f"{self.name}: the video was closed; open it again")
        return self._capture

    def _decode(self) -> np.ndarray | None:
        ok, frame = self._open_capture().read()
        if not ok or frame is None:
            return None
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _next_frame(self) -> np.ndarray | None:
        if self.frame_count is not None and self.index >= self.frame_count:
            return None
        frame, self._pending = self._pending, None
        if frame is None:
            frame = self._decode()
        if frame is None:
            if self.frame_count is not None and self.index < self.frame_count:
                logger.warning(
                    "%s: the header promises %d frames but decoding stopped at %d",
                    self.name,
                    self.frame_count,
                    self.index,
                )
            self.frame_count = self.index
        return frame

    def _end_message(self) -> str:
        return (
            f"end of video {self.name}: all {self.frame_count} frames were read; "
            "seek(0) to start again"
        )


class CameraSource(FrameSource):
    """A camera, read by a background thread that keeps only the newest frame.

    `read()` returns a frame newer than the previous one, waiting at most `read_timeout`
    seconds, so a camera that stops delivering frames raises InputError instead of hanging;
    stale frames are dropped, which keeps a slow consumer at the live moment.
    """

    def __init__(
        self,
        index: int,
        *,
        open_timeout: float = CAMERA_OPEN_TIMEOUT_S,
        read_timeout: float = CAMERA_READ_TIMEOUT_S,
    ) -> None:
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not (0 <= index <= MAX_CAMERA_INDEX)
        ):
            raise InputError(
                f"camera {index!r}: a camera index is a whole number from 0 (the first camera) "
                f"to {MAX_CAMERA_INDEX}"
            )
        for name, value in (("open_timeout", open_timeout), ("read_timeout", read_timeout)):
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"camera {index}: {name} must be a positive number, got {value}")
        self.camera_index = index
        self.name = f"camera {index}"
        self.is_live = True
        self.frame_count = None
        self.index = 0
        self._read_timeout = read_timeout
        self._changed = threading.Condition()
        self._latest: np.ndarray | None = None
        self._latest_id = 0
        self._returned_id = 0
        self._error: str | None = None
        self._stop = False
        self._fps = 0.0
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        first = self._wait_for_frame(open_timeout, opening=True)
        self.size = (first.shape[1], first.shape[0])
        self.fps = self._fps if self._fps > 0 else _DEFAULT_FPS

    def close(self) -> None:
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._read_timeout)

    def _run(self) -> None:
        """The reader thread: owns the capture from opening to release."""
        capture = cv2.VideoCapture(self.camera_index)
        try:
            if not capture.isOpened():
                other = "another index" if self.camera_index == 0 else "index 0"
                self._fail(
                    f"no camera at index {self.camera_index} (or no permission to use it); "
                    f"check that the camera is connected and that this program may use it, "
                    f"or try {other}"
                )
                return
            self._fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            while not self._stop:
                ok, frame = capture.read()
                if not ok or frame is None:
                    self._fail(
                        f"camera {self.camera_index} stopped delivering frames (unplugged, "
                        "or taken by another program?); close other apps using it and retry"
                    )
                    return
                with self._changed:
                    self._latest = frame
                    self._latest_id += 1
                    self._changed.notify_all()
        finally:
            capture.release()

    def _fail(self, message: str) -> None:
        with self._changed:
            self._error = message
            self._changed.notify_all()

    def _wait_for_frame(self, timeout: float, opening: bool = False) -> np.ndarray:
        with self._changed:
            arrived = self._changed.wait_for(
                lambda: self._latest_id > self._returned_id or self._error or self._stop,
                timeout=timeout,
            )
            if self._stop:
                raise InputError(f"{self.name} was closed")
            if self._error is not None:
                error = self._error
            elif not arrived:
                error = (
                    f"camera {self.camera_index} opened but sent no frame within {timeout:g} s "
                    "(busy in another program?); close other apps using it and retry"
                    if opening
                    else f"camera {self.camera_index} sent no frame for {timeout:g} s; "
                    "is it still connected?"
                )
            else:
                self._returned_id = self._latest_id
                frame = self._latest
                error = None
        if error is not None:
            self.close()
            raise InputError(error)
        assert frame is not None
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def _next_frame(self) -> np.ndarray | None:
        return self._wait_for_frame(self._read_timeout)


def open_source(source: str | os.PathLike[str] | int) -> FrameSource:
    """A frame source for an image file, a video file or a camera index.

    A string of digits that is not an existing file is taken as a camera index, so command
    lines can pass `--camera 0` and a path the same way.
    """
    if isinstance(source, bool):
        raise InputError(f"not a file or camera index: {source!r}")
    if isinstance(source, int):
        return CameraSource(source)
    path = Path(source).expanduser()
    if isinstance(source, str) and source.isdigit() and not path.exists():
        return CameraSource(int(source))
    _existing_file(path, what="image or video")
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return ImageSource(path)
    if suffix in VIDEO_EXTENSIONS:
        return VideoSource(path)
    # An unknown extension: ask Pillow first, then OpenCV, before giving up.
    try:
        return ImageSource(path)
    except InputError:
        pass
    try:
        return VideoSource(path)
    except InputError:
        pass
    raise InputError(
        f"{path}: neither an image nor a video faceedit can read; supported images: "
        f"{', '.join(sorted(IMAGE_EXTENSIONS))}; videos: {', '.join(sorted(VIDEO_EXTENSIONS))}"
    )


# ---------------------------------------------------------------- writing video

_FOURCC_BY_EXTENSION: Final[dict[str, str]] = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".avi": "MJPG",
}


def video_file_problem(path: Path, frames: int) -> str:
    """Why the video at `path` is not a playable file of `frames` frames, or "" when it is.

    Opens the file as a player would and compares the container's frame count (from its index,
    so no frame is decoded) with what was written.
    """
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return "the file cannot be opened as a video"
        found = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if found != frames:
        return f"{max(found, 0)} of {frames} frames can be read back"
    return ""


class VideoWriter:
    """Writes RGB frames to .mp4 (mp4v) or .avi (MJPG), atomically.

    Frames go to a temporary file in the destination folder, renamed over `path` by
    `close()` once it has been read back whole (`video_file_problem`); leaving a `with` block by an exception discards it, so a failed export never
    leaves a half-written video behind.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path).expanduser()
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC_BY_EXTENSION:
            raise InputError(
                f"{self.path}: cannot write {suffix or 'extension-less'} videos; use one of "
                f"{', '.join(sorted(_FOURCC_BY_EXTENSION))}"
            )
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the folder {self.path.parent} does not exist")
        check_output_file(self.path, "video")
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0 or not math.isfinite(fps) or not fps > 0:
            raise InputError(f"{self.path}: invalid video size {size} or fps {fps}")
        self.size = (width, height)
        self.fps = float(fps)
        self.frames_written = 0
        fourcc = _FOURCC_BY_EXTENSION[suffix]
        try:
            handle, temp = tempfile.mkstemp(
                prefix=f".{self.path.stem}.", suffix=suffix, dir=self.path.parent
            )
        except OSError as error:
            raise output_error(self.path, error, "video") from None
        os.close(handle)
        self._temp = Path(temp)
        self._writer: cv2.VideoWriter | None = cv2.VideoWriter(
            str(self._temp), cv2.VideoWriter.fourcc(*fourcc), self.fps, self.size
        )
        if not self._writer.isOpened():
            self._discard()
            raise InputError(
                f"{self.path}: OpenCV cannot open a {fourcc} video writer here (codec missing "
                "in its FFmpeg?); try an .avi file name, which uses MJPG"
            )

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame of the writer's size."""
        if self._writer is None:
            raise InputError(f"{self.path}: the video writer is closed")
        rgb = as_rgb_uint8(frame, source=f"frame {self.frames_written} for {self.path.name}")
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise InputError(
                f"{self.path}: frame {self.frames_written} is {rgb.shape[1]}x{rgb.shape[0]}, "
                f"the video is {self.size[0]}x{self.size[1]}"
            )
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place; with no frame written, nothing is saved."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self.frames_written == 0:
            self._temp.unlink(missing_ok=True)
            raise InputError(f"{self.path}: no frame was written, so no video was saved")
        # OpenCV's writer reports no write errors: a full disk leaves a file without its index
        # (mp4's moov atom) that no player opens. Read the file back before it replaces anything.
        problem = video_file_problem(self._temp, self.frames_written)
        if problem:
            self._temp.unlink(missing_ok=True)
            raise OutputError(
                f"video {self.path}: was not written completely ({problem}); "
                f"{free_space_text(self.path.parent)}. Nothing was saved"
                + (" and the existing file is unchanged" if self.path.exists() else "")
            )
        try:
            # mkstemp made the file 0600; a video gets the mode any other output gets.
            os.chmod(self._temp, final_mode(self.path))
            os.replace(self._temp, self.path)
        except OSError as error:
            self._temp.unlink(missing_ok=True)
            raise output_error(self.path, error, "video") from None

    def abort(self) -> None:
        """Stop and delete the partial file; `path` is left as it was."""
        self._discard()

    def _discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
