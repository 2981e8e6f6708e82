"""An editing session: the model, the detector, the open source and its current frame.

What the app's inference worker does, without the thread: load a checkpoint (keeping the old
one when the new one fails), open and seek videos and cameras, compute the result of an edit
request on the current frame, score faces, and record edited frames. Qt-free and synchronous;
one thread owns a session (docs/architecture.md §3). Failures come back as FaceEditError or as
the `error` field of a report, never as a traceback.

torch is imported only when a model is loaded, so importing this module costs the UI nothing.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from faceedit import __version__
from faceedit.device import cuda_available
from faceedit.errors import FaceEditError
from faceedit.inference.request import Capabilities, CompileStatus, EditRequest

if TYPE_CHECKING:
    from faceedit.inference.engine import EditEngine
    from faceedit.inference.pipeline import FramePipeline, FrameResult
    from faceedit.media.sources import FrameSource, VideoWriter

logger = logging.getLogger(__name__)

# Engines loaded ahead of time by `load_ahead`, keyed by (path, device, precision) and taken by
# the next EditSession.load of exactly that key.
_loaded_ahead: dict[tuple[str, str, str], EditEngine] = {}


def load_ahead(path: str, device: str, precision: str) -> bool:
    """Load `path` now, on the calling thread, for the next `EditSession.load` of the same
    (path, device, precision); True when it loaded.

    Why: the app's worker thread shares Python's global lock with the GUI thread, and building
    a model is Python-heavy (module construction, copies, checks). Done in the worker while the
    window is up, it froze the window for 0.3-0.45 s at start-up on a 2-core machine with both
    cores busy; done before the window shows, it only delays the window. A file that does not
    load is left to that later load, which reports the error in the window.
    """
    from faceedit.inference.engine import EditEngine

    try:
        engine = EditEngine.load(path, device, precision)  # type: ignore[arg-type]  # checked by the engine
    except Exception as error:  # reported by the worker's own load of the same file
        logger.info("loading %s ahead failed (%s); the worker will report it", path, error)
        return False
    _loaded_ahead.clear()
    _loaded_ahead[(path, device, precision)] = engine
    return True


# While frames keep coming (video, a dragged slider), edited-face scores are refreshed at most
# this often; scoring costs a parse of the edited crop and a discriminator pass per face.
SCORE_INTERVAL_S: Final[float] = 0.5
# Smallest face (pixels) searched for in still images; streams use SpeedOptions.stream_min_face.
STILL_MIN_FACE: Final[int] = 20
# The frame rate a recording gets when there is no stream to take one from (a still image).
STILL_RECORDING_FPS: Final[float] = 25.0


@dataclass(frozen=True)
class SpeedOptions:
    """What the session trades for speed; the app's Model and Playback menus set these.

    precision: the engine's ("auto": bfloat16 where the hardware runs it natively). compile:
    torch.compile the networks in the background after the first frame. reparse_every_frame:
    parse every video frame rather than only when the detector runs. stream_min_face: the
    smallest face looked for in videos and cameras (still images always search from 20 px).
    """

    precision: str = "auto"
    compile: bool = True
    reparse_every_frame: bool = False
    stream_min_face: int = 60


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded: the checkpoint's abilities, its geometry, the device, versions."""

    path: str | None
    capabilities: Capabilities
    crop_size: int
    regions: tuple[str, ...]
    device: str
    versions: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
    precision: str = "float32"
    cuda_available: bool = False  # whether the Device menu can offer a CUDA GPU


@dataclass(frozen=True)
class LoadReport:
    """What a load did. `info` is set when a model (maybe the empty one) was put in place;
    `error` says why the asked-for checkpoint was not; `notice` tells of a CPU fallback."""

    info: ModelInfo | None
    error: str | None = None
    notice: str | None = None


@dataclass(frozen=True)
class SourceInfo:
    """A video file or camera that was opened."""

    name: str
    path: str
    is_live: bool
    frame_count: int | None
    fps: float
    size: tuple[int, int]
    # Which opening this is (the app's source tag): every FrameUpdate of it carries the same
    # number first in its frame_key, so a result computed on an earlier source is recognised.
    serial: int = 0


def source_serial(frame_key: object) -> int | None:
    """The source serial a FrameUpdate.frame_key belongs to (None for a key without one)."""
    if isinstance(frame_key, tuple) and frame_key and isinstance(frame_key[0], int):
        return frame_key[0]
    return None


@dataclass(frozen=True)
class RecordingEnd:
    """A recording that ended: where, how many frames, and why ("" when closed normally)."""

    path: str
    frames: int
    error: str = ""


@dataclass
class FrameUpdate:
    """One computed frame, all numpy. Crops, parse and edit are those of the first chosen face."""

    request_id: int
    frame_key: object
    frame_index: int | None
    input: np.ndarray  # (H, W, 3) uint8 RGB, the frame as read
    output: np.ndarray  # (H, W, 3) uint8 RGB, the edited frame
    boxes: list[np.ndarray]  # (4,) x0, y0, x1, y1 per detected face, largest first
    chosen: tuple[int, ...]  # indices into boxes of the processed faces
    alignments: list[Any]  # faceedit.faces.align.Alignment per processed face
    crop: np.ndarray | None = None  # (S, S, 3) aligned input crop
    edited_crop: np.ndarray | None = None  # (S, S, 3)
    labels: np.ndarray | None = None  # (S, S) uint8 class indices
    region_masks: np.ndarray | None = None  # (K, S, S) float32
    attention: np.ndarray | None = None  # (S, S) float32, the global generator's; 1 keeps input
    timings: dict[str, float] = field(default_factory=dict)
    detected: bool = True
    edited: bool = False
    input_scores: np.ndarray | None = None  # (8,) softmax, None when the model cannot score
    edited_scores: np.ndarray | None = None
    # faceedit.inference.outputs.Parsing (or None) per processed face, in `alignments` order.
    parsings: list[Any] = field(default_factory=list)
    _frame_parse: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def frame_parse(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(H, W) uint8 class indices and (K, H, W) float32 region masks of the processed faces
        in the photo's own pixels (background and 0 elsewhere): the segmentation overlay drawn
        on the photo, and Save masks at the image's size. None when no face was parsed.

        Computed on the first call (about 20 ms for labels plus 10-20 ms for masks at
        1024 px on a 2-core CPU) and kept with this update.
        """
        if self._frame_parse is None:
            parsed = [
                (alignment, parsing.probabilities, parsing.region_masks)
                for alignment, parsing in zip(self.alignments, self.parsings, strict=True)
                if parsing is not None
            ]
            if not parsed:
                return None
            from faceedit.faces.frame_maps import frame_parse

            regions = len(parsed[0][2])
            self._frame_parse = frame_parse(parsed, self.input.shape, regions)
        return self._frame_parse


class EditSession:
    """The model, detector, pipeline, source, current frame and recording of one app window."""

    def __init__(self, detect_every: int = 5) -> None:
        self.detect_every = detect_every
        self.engine: EditEngine | None = None
        self.pipeline: FramePipeline | None = None
        self.source: FrameSource | None = None
        self.frame: np.ndarray | None = None
        self.frame_index: int | None = None
        self.frame_key: object = None
        self._detector: Any = None
        self._detector_device: str | None = None
        self._source_serial = 0
        self._writer: VideoWriter | None = None
        self._input_scores_key: object = None
        self._input_scores: np.ndarray | None = None
        self._last_scored = 0.0
        self._compile_reported = "off"  # the last compile state handed out

    # ---- the model ------------------------------------------------------------------------

    @property
    def model_path(self) -> str | None:
        """The loaded checkpoint's path; None without a model or with the empty one."""
        loaded = self.engine.checkpoint if self.engine is not None else None
        return str(loaded.path) if loaded is not None else None

    def load(self, path: str | None, device: str, precision: str = "float32") -> LoadReport:
        """Build engine, detector and pipeline for `path` (None: no model, detection only).

        When the checkpoint cannot be loaded the previous model stays; with no previous one
        the empty engine takes its place, so faces are still found and shown.
        """
        from faceedit.device import resolve_device
        from faceedit.inference.engine import EditEngine

        notice = None
        try:
            resolve_device(device)
        except FaceEditError as error:
            # Said in the app's words (its Model > Device menu), not the command line's flags.
            notice = f"{device!r} cannot be used here ({_first_clause(error)}); the models run on the CPU."
            device = "cpu"
        error_text = None
        ahead = _loaded_ahead.pop((path, device, precision), None) if path else None
        _loaded_ahead.clear()  # a different model was asked for: free the one loaded ahead
        try:
            engine = ahead or (
                EditEngine.load(path, device, precision)  # type: ignore[arg-type]  # precision from the menus; the engine checks it
                if path
                else EditEngine.empty(device)
            )
        except Exception as error:  # a damaged file can raise anything from a library
            if not isinstance(error, FaceEditError):
                logger.exception("loading %s failed", path)
                error = FaceEditError(
                    f"{path}: could not be loaded ({type(error).__name__}: {error})"
                )
            error_text = str(error)
            if self.engine is not None:
                return LoadReport(info=None, error=error_text, notice=notice)
            engine = EditEngine.empty(device)
        try:
            self._ensure_detector(engine.device.type)
        except FaceEditError as error:
            reasons = [error_text, f"the face detector cannot start: {error}"]
            return LoadReport(info=None, error="; ".join(r for r in reasons if r), notice=notice)
        self._install(engine)
        return LoadReport(info=self.model_info(), error=error_text, notice=notice)

    def _ensure_detector(self, device_type: str) -> None:
        from faceedit.faces.detect import FaceDetector

        if self._detector is None or self._detector_device != device_type:
            self._detector = FaceDetector(device_type)
            self._detector_device = device_type

    def _install(self, engine: EditEngine) -> None:
        from faceedit.inference.pipeline import FramePipeline

        if self.engine is not None and self.engine is not engine:
            self.engine.stop_background_compile()  # its compiler would only take CPU time now
        self.engine = engine
        self._compile_reported = "off"
        self.pipeline = FramePipeline(engine, self._detector, detect_every=self.detect_every)
        self._input_scores_key = None

    def model_info(self) -> ModelInfo | None:
        """What is loaded now, for the window's labels and the About dialog."""
        engine = self.engine
        if engine is None:
            return None
        loaded = engine.checkpoint
        return ModelInfo(
            path=str(loaded.path) if loaded else None,
            capabilities=engine.capabilities,
            crop_size=engine.crop_size,
            regions=tuple(engine.regions),
            device=str(engine.device),
            versions=runtime_versions(),
            metadata=dict(loaded.metadata) if loaded else {},
            precision=engine.precision,
            cuda_available=cuda_available(),
        )

    def apply_speed(self, detect_every: int, speed: SpeedOptions) -> None:
        """Tracking, parse reuse and the smallest face searched for, for the current source."""
        self.detect_every = detect_every
        if self.pipeline is None:
            return
        self.pipeline.tracker.detect_every = detect_every
        self.pipeline.reparse = "every_frame" if speed.reparse_every_frame else "on_detection"
        min_face = speed.stream_min_face if self.is_stream else STILL_MIN_FACE
        if self._detector is not None and self._detector.min_face_size != min_face:
            self._detector.min_face_size = min_face
            self.pipeline.reset()

    # ---- background compilation -------------------------------------------------------------

    def start_background_compile(self) -> None:
        """Compile the networks in a background thread; call after the first frame is out."""
        if self.engine is not None:
            self.engine.start_background_compile()

    @property
    def compiling(self) -> bool:
        return self.engine is not None and self.engine.compile_status.state == "compiling"

    def compile_changed(self) -> bool:
        """Whether the compile state moved since `compile_news` last handed it out."""
        engine = self.engine
        return engine is not None and engine.compile_status.state != self._compile_reported

    def compile_ended_unreported(self) -> bool:
        """Whether compiling, last handed out as started, has since finished or failed."""
        return self._compile_reported == "compiling" and self.compile_changed()

    def compile_news(self) -> CompileStatus | None:
        """The compile status when it changed since last asked (and is not "off"), else None."""
        if self.engine is None or not self.compile_changed():
            return None
        status = self.engine.compile_status
        self._compile_reported = status.state
        return None if status.state == "off" else status

    # ---- sources ------------------------------------------------------------------------------

    @property
    def is_stream(self) -> bool:
        """A camera or a video of more than one frame (a still image is not)."""
        source = self.source
        return source is not None and (source.is_live or (source.frame_count or 0) > 1)

    def open(self, source: str | int) -> SourceInfo:
        """Open a video file or camera index and read its first frame; the old source closes."""
        from faceedit.media.sources import open_source

        self.close_source()
        try:
            opened = open_source(source)
            frame = opened.read()
        except FaceEditError:
            raise
        except Exception as error:
            logger.exception("opening %s failed", source)
            raise FaceEditError(
                f"{source}: cannot be opened ({type(error).__name__}: {error})"
            ) from error
        self.source = opened
        self._source_serial += 1
        self._show(frame, 0, continues=False)
        return SourceInfo(
            name=opened.name,
            path=str(source),
            is_live=opened.is_live,
            frame_count=opened.frame_count,
            fps=opened.fps,
            size=(int(opened.size[0]), int(opened.size[1])),
            serial=self._source_serial,
        )

    def seek(self, index: int) -> bool:
        """Make frame `index` of the open video current; False when there is nothing to seek."""
        if self.source is None or self.source.is_live:
            return False
        self.source.seek(index)
        frame = self.source.read()
        self._show(frame, index, continues=False)
        return True

    def read_next(self) -> None:
        """Make the stream's next frame current (tracking carries on from the last one)."""
        if self.source is None:
            raise FaceEditError("no video or camera is open")
        index = self.source.index
        frame = self.source.read()
        self._show(frame, index, continues=True)

    @property
    def at_end(self) -> bool:
        """Whether the open video has no frame left (a camera never ends this way)."""
        source = self.source
        return (
            source is not None
            and not source.is_live
            and source.frame_count is not None
            and source.index >= source.frame_count
        )

    def _show(self, frame: np.ndarray, index: int, continues: bool) -> None:
        self.frame, self.frame_index = frame, index
        self.frame_key = (self._source_serial, index)
        if not continues and self.pipeline is not None:
            self.pipeline.reset()  # a frame that does not follow the previous one

    def close_source(self) -> RecordingEnd | None:
        """Close the source; a recording of it ends too (returned when there was one)."""
        ended = self.finish_recording()
        if self.source is not None:
            self.source.close()
            self.source = None
        return ended

    # ---- computing ------------------------------------------------------------------------

    def compute(
        self,
        request: EditRequest,
        request_id: int = 0,
        scores: bool = True,
        busy: bool = False,
        frame_parse: bool = False,
    ) -> FrameUpdate:
        """The current frame edited as `request` says, with its faces, crops and masks.

        scores: also score the input and edited faces (a discriminator pass each). busy: more
        frames are coming right away, so the edited face's score is refreshed at most every
        SCORE_INTERVAL_S. frame_parse: also compute the parse in the photo's pixels here (the
        worker's thread), so `update.frame_parse()` costs the GUI nothing (an overlay drawn on
        the photo). Any failure is a FaceEditError.
        """
        if self.pipeline is None or self.frame is None:
            raise FaceEditError("nothing to edit yet: load a model and open an image or video")
        try:
            result = self.pipeline.process(self.frame, request, frame_key=self.frame_key)
            update = self._update_from(result, request_id)
            if frame_parse:
                update.frame_parse()
            if scores:
                self._score(update, busy)
        except FaceEditError:
            raise
        except Exception as error:  # the message names the failure; the app stays up
            logger.exception("computing request %d failed", request_id)
            raise FaceEditError(f"the edit failed ({type(error).__name__}: {error})") from error
        return update

    def _update_from(self, result: FrameResult, request_id: int) -> FrameUpdate:
        assert self.frame is not None
        faces = result.faces
        chosen = tuple(
            next(i for i, face in enumerate(faces) if face is processed.face)
            for processed in result.processed
        )
        update = FrameUpdate(
            request_id=request_id,
            frame_key=self.frame_key,
            frame_index=self.frame_index,
            input=self.frame,
            output=result.output,
            boxes=[np.array(face.box) for face in faces],
            chosen=chosen,
            alignments=[p.alignment for p in result.processed],
            timings=dict(result.timings),
            detected=result.detected,
            parsings=[p.parsing for p in result.processed],
        )
        if result.processed:
            first = result.processed[0]
            update.crop = first.alignment.crop
            if first.parsing is not None:
                update.labels = first.parsing.labels
                update.region_masks = first.parsing.region_masks
            if first.edit is not None:
                update.edited = True
                update.edited_crop = first.edit.crop
                update.attention = first.edit.attention[0]
                update.region_masks = first.edit.region_masks
        return update

    def _score(self, update: FrameUpdate, busy: bool) -> None:
        """The classifier's view of the input face (cached per frame) and of the edited face."""
        engine = self.engine
        if engine is None or not engine.capabilities.can_score or update.crop is None:
            return
        key = (update.frame_key, update.chosen[:1])
        if key != self._input_scores_key or self._input_scores is None:
            self._input_scores = engine.expression_scores(update.crop)
            self._input_scores_key = key
        update.input_scores = self._input_scores
        if update.edited_crop is None:
            update.edited_scores = self._input_scores
            return
        now = time.monotonic()
        if busy and now - self._last_scored < SCORE_INTERVAL_S:
            return
        update.edited_scores = engine.expression_scores(update.edited_crop)
        self._last_scored = now

    # ---- recording ----------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def start_recording(self, path: str) -> None:
        """Write edited frames to `path` from now on, at the source's frame rate and size."""
        from faceedit.media.sources import VideoWriter

        if self._writer is not None:
            raise FaceEditError(f"already recording to {self._writer.path}")
        if self.frame is None:
            raise FaceEditError("nothing to record yet: open an image or video first")
        fps = self.source.fps if self.source is not None else STILL_RECORDING_FPS
        height, width = self.frame.shape[:2]
        self._writer = VideoWriter(path, fps, (width, height))

    def record(self, frame: np.ndarray) -> RecordingEnd | None:
        """Append `frame` to the recording, if any; a frame that cannot be written ends it."""
        writer = self._writer
        if writer is None:
            return None
        try:
            if (frame.shape[1], frame.shape[0]) != writer.size:
                raise FaceEditError(
                    f"the frame size changed to {frame.shape[1]}x{frame.shape[0]}; "
                    "recording stopped"
                )
            writer.write(frame)
        except FaceEditError as error:
            writer.abort()
            self._writer = None
            return RecordingEnd(str(writer.path), writer.frames_written, str(error))
        return None

    def finish_recording(self) -> RecordingEnd | None:
        """Close the recording, if any, and say how it ended."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        try:
            writer.close()
        except FaceEditError as error:
            return RecordingEnd(str(writer.path), writer.frames_written, str(error))
        return RecordingEnd(str(writer.path), writer.frames_written)


def _first_clause(error: Exception) -> str:
    """An error's text up to its advice (after ';'), which names command-line flags."""
    return str(error).split(";", 1)[0].strip()


def runtime_versions() -> dict[str, str]:
    """Versions for the About dialog, read from installed package metadata (no torch import)."""
    versions = {"faceedit": __version__, "Python": platform.python_version()}
    for name, dist in (
        ("torch", "torch"),
        ("numpy", "numpy"),
        ("OpenCV", "opencv-python-headless"),
    ):
        try:
            versions[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
