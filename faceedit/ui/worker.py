"""The inference worker: one QThread owns the engine, the face detector, the pipeline and the source.

The GUI thread never computes. It overwrites "the latest request" (frame, edit settings, a new
request id) under a mutex and wakes the worker; the worker takes whatever is newest when it is
free, so requests that arrive while it computes are overwritten, never queued. Dragging a slider
therefore costs at most one computation in flight plus one after it, however fast it moves.
Results and errors go back as Qt signals carrying numpy arrays and the request id they answer.

Checkpoint loading, opening videos and cameras, reading their frames, seeking and recording also
happen here, because each can block (a camera takes a second to open; a 4K frame takes ~10 ms to
decode), and the GUI thread must stay free to paint.

Speed: the engine runs in the chosen precision; once the first frame of a model is shown, the
networks are compiled in a background thread (torch.compile) and swapped in when ready, so the
window opens at once and gets faster a little later. Video frames between detections reuse the
last parse unless the user asks for a parse on every frame.

This module talks to the engine and the pipeline only: it never imports torch itself.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from PySide6.QtCore import QMutex, QMutexLocker, QThread, QWaitCondition, Signal

from faceedit import __version__
from faceedit.errors import FaceEditError
from faceedit.ui.settings import STILL_MIN_FACE, Preferences

if TYPE_CHECKING:
    from faceedit.inference.engine import EditEngine
    from faceedit.inference.pipeline import FramePipeline
    from faceedit.inference.request import Capabilities, EditRequest
    from faceedit.media.sources import FrameSource, VideoWriter

logger = logging.getLogger(__name__)

# While frames keep coming (video, a dragged slider), edited-face scores are refreshed at most
# this often; scoring re-parses the edited crop, which evicts the engine's one-crop parse cache.
SCORE_INTERVAL_S: Final[float] = 0.5
IDLE_POLL_MS: Final[int] = 1000
WORKER_NICENESS: Final[int] = 5


@dataclass(frozen=True)
class SpeedOptions:
    """What the worker trades for speed; the Model and Playback menus set these.

    precision: the engine's ("auto": bfloat16 where the hardware runs it natively). compile:
    torch.compile the networks in the background after the first frame. reparse_every_frame:
    parse every video frame rather than only when the detector runs. stream_min_face: the
    smallest face looked for in videos and cameras (still images always search from 20 px).
    """

    precision: str = "auto"
    compile: bool = True
    reparse_every_frame: bool = False
    stream_min_face: int = 60

    @classmethod
    def from_preferences(cls, prefs: Preferences) -> SpeedOptions:
        return cls(
            precision=prefs.precision,
            compile=prefs.compile_networks,
            reparse_every_frame=prefs.reparse_every_frame,
            stream_min_face=prefs.stream_min_face,
        )


@dataclass(frozen=True)
class ModelInfo:
    """What the worker loaded: the checkpoint's abilities, its geometry, the device, versions."""

    path: str | None
    capabilities: Capabilities
    crop_size: int
    regions: tuple[str, ...]
    device: str
    versions: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
    precision: str = "float32"


@dataclass(frozen=True)
class SourceInfo:
    """A video file or camera the worker opened."""

    name: str
    path: str
    is_live: bool
    frame_count: int | None
    fps: float
    size: tuple[int, int]


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


@dataclass
class _Pending:
    """Everything the GUI asked for since the worker last looked (guarded by the mutex)."""

    load: tuple[str | None, str] | None = None  # (checkpoint path or None, device)
    open: str | int | None = None  # video path or camera index
    seek: int | None = None
    dirty: bool = False  # the request changed: recompute the current frame


@dataclass(frozen=True)
class _Turn:
    """What one turn of the worker loop works on, copied under the mutex."""

    pending: _Pending
    request: EditRequest | None
    request_id: int
    playing: bool
    detect_every: int
    speed: SpeedOptions
    record_path: str | None
    record_stop: bool
    scores_wanted: bool


class InferenceWorker(QThread):
    """Owns every model; computes the newest request; talks back through signals only."""

    modelLoaded = Signal(object)  # ModelInfo
    modelFailed = Signal(str)
    notice = Signal(str)  # something worth knowing that did not fail (e.g. CPU instead of CUDA)
    compileStatus = Signal(str, str)  # state ("compiling", "ready", "failed"), sentence
    resultReady = Signal(object)  # FrameUpdate
    failed = Signal(int, str)  # request id, message
    sourceOpened = Signal(object)  # SourceInfo
    sourceFailed = Signal(str)
    playbackStopped = Signal(str)  # why (end of video, camera error); empty when paused by user
    recordingFinished = Signal(str, int, str)  # path, frames written, error ("" on success)

    def __init__(
        self,
        device: str = "auto",
        detect_every: int = 5,
        parent: Any = None,
        speed: SpeedOptions | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("faceedit-inference")
        self._mutex = QMutex()
        self._wake = QWaitCondition()
        self._pending = _Pending()
        self._request: EditRequest | None = None
        self._request_id = 0
        self._stopping = False
        self._playing = False
        self._detect_every = detect_every
        self._speed = speed or SpeedOptions()
        self._record_path: str | None = None
        self._record_stop = False
        self._scores_wanted = True
        self._counters = {"submitted": 0, "computed": 0}
        self._device = device
        self._model_path: str | None = None
        # Worker-thread state (touched only inside run()).
        self._engine: EditEngine | None = None
        self._pipeline: FramePipeline | None = None
        self._detector_device: str | None = None
        self._detector: Any = None
        self._source: FrameSource | None = None
        self._source_serial = 0
        self._frame: np.ndarray | None = None
        self._frame_key: object = None
        self._frame_index: int | None = None
        self._next_frame_at = 0.0
        self._writer: VideoWriter | None = None
        self._input_scores_key: object = None
        self._input_scores: np.ndarray | None = None
        self._last_scored = 0.0
        self._compile_reported = "off"  # the last compile state sent to the GUI

    # ---- GUI-thread API: record and wake, never compute ----------------------------------------

    def load_model(self, path: str | Path | None, device: str | None = None) -> None:
        """Load a checkpoint (None: no model, detection and alignment only) on `device`."""
        with QMutexLocker(self._mutex):
            if device is not None:
                self._device = device
            self._model_path = None if path is None else str(path)
            self._pending.load = (self._model_path, self._device)
            self._wake.wakeAll()

    def set_device(self, device: str) -> None:
        """Move to another device: reloads the current checkpoint there."""
        with QMutexLocker(self._mutex):
            self._device = device
            self._pending.load = (self._model_path, device)
            self._wake.wakeAll()

    def open_stream(self, source: str | Path | int) -> None:
        """Open a video file or a camera index; its first frame is computed straight away."""
        with QMutexLocker(self._mutex):
            self._pending.open = source if isinstance(source, int) else str(source)
            self._pending.seek = None
            self._playing = False
            self._wake.wakeAll()

    def submit(self, request: EditRequest) -> int:
        """Make `request` the latest one; returns its id. Older unstarted requests are dropped."""
        with QMutexLocker(self._mutex):
            self._request_id += 1
            self._request = request
            self._pending.dirty = True
            self._counters["submitted"] += 1
            self._wake.wakeAll()
            return self._request_id

    def set_playing(self, playing: bool) -> None:
        with QMutexLocker(self._mutex):
            self._playing = playing
            self._next_frame_at = 0.0
            self._wake.wakeAll()

    def seek(self, index: int) -> None:
        """Show frame `index` of the open video; a newer seek replaces an unstarted one."""
        with QMutexLocker(self._mutex):
            self._pending.seek = int(index)
            self._wake.wakeAll()

    def set_detect_every(self, frames: int) -> None:
        """Run the detector every `frames` frames of a stream and track faces in between."""
        with QMutexLocker(self._mutex):
            self._detect_every = max(1, int(frames))
            self._wake.wakeAll()

    def set_speed_options(self, speed: SpeedOptions) -> None:
        """New speed options. A new precision reloads the model (its networks are converted), and
        so does turning compilation off, which drops compiled networks already in use."""
        with QMutexLocker(self._mutex):
            compile_off = self._speed.compile and not speed.compile
            if speed.precision != self._speed.precision or compile_off:
                self._pending.load = (self._model_path, self._device)
            self._speed = speed
            self._pending.dirty = True
            self._wake.wakeAll()

    def set_scores_wanted(self, wanted: bool) -> None:
        """Expression scores cost a discriminator pass; skip them while nobody looks."""
        with QMutexLocker(self._mutex):
            self._scores_wanted = wanted

    def start_recording(self, path: str | Path) -> None:
        """Write every edited frame from now on to `path` (.mp4 or .avi)."""
        with QMutexLocker(self._mutex):
            self._record_path = str(path)
            self._record_stop = False
            self._wake.wakeAll()

    def stop_recording(self) -> None:
        with QMutexLocker(self._mutex):
            self._record_path = None
            self._record_stop = True
            self._wake.wakeAll()

    def stop(self, timeout_ms: int = 10_000) -> bool:
        """Ask the thread to finish (set the flag, wake it) and wait; True when it ended."""
        with QMutexLocker(self._mutex):
            self._stopping = True
            self._wake.wakeAll()
        if not self.isRunning():
            return True
        return self.wait(timeout_ms)

    def compiling_in_background(self) -> bool:
        """True while the engine's background compile still runs (ask once the thread stopped)."""
        engine = self._engine
        return engine is not None and engine.compile_status.state == "compiling"

    @property
    def computations(self) -> int:
        """How many frames the worker has computed (tests check stale requests were dropped)."""
        with QMutexLocker(self._mutex):
            return self._counters["computed"]

    @property
    def submissions(self) -> int:
        with QMutexLocker(self._mutex):
            return self._counters["submitted"]

    # ---- the thread ------------------------------------------------------------------------------

    def run(self) -> None:
        _yield_to_the_gui()
        while True:
            with QMutexLocker(self._mutex):
                while not self._has_work_locked():
                    self._wake.wait(self._mutex, self._wait_ms_locked())
                if self._stopping:
                    break
                turn = _Turn(
                    pending=self._pending,
                    request=self._request,
                    request_id=self._request_id,
                    playing=self._playing,
                    detect_every=self._detect_every,
                    speed=self._speed,
                    record_path=self._record_path,
                    record_stop=self._record_stop,
                    scores_wanted=self._scores_wanted,
                )
                self._pending = _Pending()
                self._record_stop = False
            try:
                self._step(turn)
            except Exception as error:  # a bug must not kill the thread: report it, keep serving
                logger.exception("the inference worker hit an unexpected error")
                self.failed.emit(
                    turn.request_id,
                    f"unexpected error in the worker ({type(error).__name__}: {error})",
                )
        self._close_source()
        self._finish_recording()

    def _step(self, turn: _Turn) -> None:
        """One turn of the loop, on a snapshot of what the GUI asked for."""
        pending = turn.pending
        if pending.load is not None:
            self._load(*pending.load, precision=turn.speed.precision)
        if pending.open is not None:
            self._open(pending.open)
        if self._pipeline is not None:
            self._apply_speed(turn.detect_every, turn.speed)
        self._update_recording(turn.record_path, turn.record_stop)
        fresh = pending.seek is not None and self._seek(pending.seek)
        if turn.playing and self._source is not None and time.monotonic() >= self._next_frame_at:
            fresh = self._read_next() or fresh
        changed = pending.dirty or pending.load is not None or pending.open is not None or fresh
        if changed and turn.request is not None and self._frame is not None and self._pipeline:
            self._compute(turn.request, turn.request_id, turn.scores_wanted)
            if turn.speed.compile and self._engine is not None:
                # After the first frame is out, so compiling never delays what the user sees.
                self._engine.start_background_compile()
        self._report_compile()

    def _apply_speed(self, detect_every: int, speed: SpeedOptions) -> None:
        """Tracking, parse reuse and the smallest face, for the current source."""
        assert self._pipeline is not None
        self._pipeline.tracker.detect_every = detect_every
        self._pipeline.reparse = "every_frame" if speed.reparse_every_frame else "on_detection"
        stream = self._source is not None and (
            self._source.is_live or (self._source.frame_count or 0) > 1
        )
        min_face = speed.stream_min_face if stream else STILL_MIN_FACE
        if self._detector is not None and self._detector.min_face_size != min_face:
            self._detector.min_face_size = min_face
            self._pipeline.reset()

    def _compile_changed(self) -> bool:
        engine = self._engine
        return engine is not None and engine.compile_status.state != self._compile_reported

    def _report_compile(self) -> None:
        """Tell the GUI when background compilation starts, finishes or fails."""
        if self._engine is None or not self._compile_changed():
            return
        status = self._engine.compile_status
        self._compile_reported = status.state
        if status.state != "off":
            self.compileStatus.emit(status.state, status.message)

    def _has_work_locked(self) -> bool:
        p = self._pending
        if self._stopping or p.load or p.open is not None or p.seek is not None:
            return True
        if self._compile_reported == "compiling" and self._compile_changed():
            return True
        if (
            p.dirty
            or self._record_stop
            or (self._record_path and self._writer is None and self._source)
        ):
            return True
        return (
            self._playing and self._source is not None and time.monotonic() >= self._next_frame_at
        )

    def _wait_ms_locked(self) -> int:
        if self._playing and self._source is not None:
            return max(1, int((self._next_frame_at - time.monotonic()) * 1000))
        return IDLE_POLL_MS

    # ---- steps (worker thread) ----------------------------------------------------------------------

    def _load(self, path: str | None, device: str, precision: str = "float32") -> None:
        """Build engine, detector and pipeline; on failure keep what worked before."""
        from faceedit.faces.detect import FaceDetector
        from faceedit.inference.device import resolve_device
        from faceedit.inference.engine import EditEngine
        from faceedit.inference.pipeline import FramePipeline

        try:
            resolve_device(device)
        except FaceEditError as error:
            self.notice.emit(f"Running on the CPU instead: {error}.")
            device = "cpu"
        try:
            engine = (
                EditEngine.load(path, device, precision)  # type: ignore[arg-type]
                if path
                else EditEngine.empty(device)
            )
        except Exception as error:  # a damaged file can raise anything from a library
            if not isinstance(error, FaceEditError):
                logger.exception("loading %s failed", path)
                error = FaceEditError(
                    f"{path}: could not be loaded ({type(error).__name__}: {error})"
                )
            self.modelFailed.emit(str(error))
            kept = self._engine.checkpoint if self._engine is not None else None
            with QMutexLocker(self._mutex):
                if self._model_path == path:
                    self._model_path = str(kept.path) if kept is not None else None
            if self._engine is not None:
                return
            engine = EditEngine.empty(device)
        try:
            if self._detector is None or self._detector_device != engine.device.type:
                self._detector = FaceDetector(engine.device.type)
                self._detector_device = engine.device.type
        except FaceEditError as error:
            self.modelFailed.emit(f"the face detector cannot start: {error}")
            return
        self._engine = engine
        self._compile_reported = "off"
        self._pipeline = FramePipeline(engine, self._detector, detect_every=self._detect_every)
        self._input_scores_key = None
        loaded = engine.checkpoint
        self.modelLoaded.emit(
            ModelInfo(
                path=str(loaded.path) if loaded else None,
                capabilities=engine.capabilities,
                crop_size=engine.crop_size,
                regions=tuple(engine.regions),
                device=str(engine.device),
                versions=runtime_versions(),
                metadata=dict(loaded.metadata) if loaded else {},
                precision=engine.precision,
            )
        )

    def _open(self, source: str | int) -> None:
        from faceedit.media.sources import open_source

        self._close_source()
        try:
            opened = open_source(source)
            frame = opened.read()
        except FaceEditError as error:
            self.sourceFailed.emit(str(error))
            return
        except Exception as error:
            logger.exception("opening %s failed", source)
            self.sourceFailed.emit(f"{source}: cannot be opened ({type(error).__name__}: {error})")
            return
        self._source = opened
        self._source_serial += 1
        self._frame, self._frame_index = frame, 0
        self._frame_key = (self._source_serial, 0)
        self._new_frame()
        self.sourceOpened.emit(
            SourceInfo(
                name=opened.name,
                path=str(source),
                is_live=opened.is_live,
                frame_count=opened.frame_count,
                fps=opened.fps,
                size=tuple(opened.size),
            )
        )
        self._next_frame_at = time.monotonic() + 1.0 / max(opened.fps, 1.0)

    def _seek(self, index: int) -> bool:
        if self._source is None or self._source.is_live:
            return False
        try:
            self._source.seek(index)
            frame = self._source.read()
        except FaceEditError as error:
            self.failed.emit(self._request_id_snapshot(), str(error))
            return False
        self._frame, self._frame_index = frame, index
        self._frame_key = (self._source_serial, index)
        self._new_frame()
        return True

    def _read_next(self) -> bool:
        """Read the next frame of the playing stream, paced to its frame rate."""
        assert self._source is not None
        source = self._source
        try:
            index = source.index
            frame = source.read()
        except FaceEditError as error:
            with QMutexLocker(self._mutex):
                self._playing = False
            at_end = (
                not source.is_live
                and source.frame_count is not None
                and source.index >= source.frame_count
            )
            self.playbackStopped.emit("" if at_end else str(error))
            return False
        self._frame, self._frame_index = frame, index
        self._frame_key = (self._source_serial, index)
        interval = 1.0 / max(source.fps, 1.0)
        now = time.monotonic()
        # Keep the file's pace, but never try to catch up after a slow frame (that would burst).
        self._next_frame_at = (
            max(self._next_frame_at + interval, now) if self._next_frame_at else now + interval
        )
        return True

    def _new_frame(self) -> None:
        """A frame that does not follow the previous one: forget tracking."""
        if self._pipeline is not None:
            self._pipeline.reset()

    def _compute(self, request: EditRequest, request_id: int, scores_wanted: bool) -> None:
        assert self._pipeline is not None and self._engine is not None and self._frame is not None
        try:
            result = self._pipeline.process(self._frame, request, frame_key=self._frame_key)
            with QMutexLocker(self._mutex):
                self._counters["computed"] += 1
            update = self._update_from(result, request_id)
            if scores_wanted:
                self._score(update)
        except FaceEditError as error:
            self.failed.emit(request_id, str(error))
            return
        except Exception as error:  # keep the app alive; the message names the failure
            logger.exception("computing request %d failed", request_id)
            self.failed.emit(request_id, f"the edit failed ({type(error).__name__}: {error})")
            return
        self._write_frame(update.output)
        self.resultReady.emit(update)

    def _update_from(self, result: Any, request_id: int) -> FrameUpdate:
        faces = result.faces
        chosen = tuple(
            next(i for i, face in enumerate(faces) if face is processed.face)
            for processed in result.processed
        )
        update = FrameUpdate(
            request_id=request_id,
            frame_key=self._frame_key,
            frame_index=self._frame_index,
            input=self._frame,
            output=result.output,
            boxes=[np.array(face.box) for face in faces],
            chosen=chosen,
            alignments=[p.alignment for p in result.processed],
            timings=dict(result.timings),
            detected=result.detected,
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

    def _score(self, update: FrameUpdate) -> None:
        """The classifier's view of the input face (cached per frame) and of the edited face."""
        engine = self._engine
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
        with QMutexLocker(self._mutex):
            busy = self._pending.dirty or (self._playing and self._source is not None)
        if busy and now - self._last_scored < SCORE_INTERVAL_S:
            return
        update.edited_scores = engine.expression_scores(update.edited_crop)
        self._last_scored = now

    # ---- recording ------------------------------------------------------------------------------------

    def _update_recording(self, path: str | None, stop: bool) -> None:
        if stop and self._writer is not None:
            self._finish_recording()
        if path is None or self._writer is not None or self._frame is None:
            return
        from faceedit.media.sources import VideoWriter

        fps = self._source.fps if self._source is not None else 25.0
        h, w = self._frame.shape[:2]
        try:
            self._writer = VideoWriter(path, fps, (w, h))
        except FaceEditError as error:
            with QMutexLocker(self._mutex):
                self._record_path = None
            self.recordingFinished.emit(path, 0, str(error))

    def _write_frame(self, frame: np.ndarray) -> None:
        if self._writer is None:
            return
        try:
            if (frame.shape[1], frame.shape[0]) != self._writer.size:
                raise FaceEditError(
                    f"the frame size changed to {frame.shape[1]}x{frame.shape[0]}; recording stopped"
                )
            self._writer.write(frame)
        except FaceEditError as error:
            path, frames = str(self._writer.path), self._writer.frames_written
            self._writer.abort()
            self._writer = None
            with QMutexLocker(self._mutex):
                self._record_path = None
            self.recordingFinished.emit(path, frames, str(error))

    def _finish_recording(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except FaceEditError as error:
            self.recordingFinished.emit(str(writer.path), writer.frames_written, str(error))
            return
        self.recordingFinished.emit(str(writer.path), writer.frames_written, "")

    def _close_source(self) -> None:
        if self._writer is not None:
            self._finish_recording()
            with QMutexLocker(self._mutex):
                self._record_path = None
        if self._source is not None:
            self._source.close()
            self._source = None

    def _request_id_snapshot(self) -> int:
        with QMutexLocker(self._mutex):
            return self._request_id


def _yield_to_the_gui() -> None:
    """Lower the calling (worker) thread's priority, so the GUI thread wins a busy CPU.

    On a 2-core laptop the engine's intra-op threads fill both cores; at equal priority the
    event loop then waits its turn and stalls for 100 ms or more. Threads the worker starts
    afterwards (the OpenMP team torch runs its layers on) inherit the lower priority. Linux
    sets niceness per thread; elsewhere Qt's thread priority does the same job.
    """
    if sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        try:
            os.setpriority(
                os.PRIO_PROCESS,
                tid,
                min(19, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICENESS),
            )
        except OSError as error:
            logger.debug("could not lower the worker's priority: %s", error)
        return
    thread = QThread.currentThread()
    if thread is not None:
        thread.setPriority(QThread.Priority.LowPriority)


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
