"""The inference worker: one QThread runs the editing session; the GUI thread never computes.

The GUI overwrites "the latest request" (edit settings, a new request id) under a mutex and wakes
the worker; the worker takes whatever is newest when it is free, so requests that arrive while it
computes are overwritten, never queued. Dragging a slider therefore costs at most one computation
in flight plus one after it, however fast it moves. Results and errors go back as Qt signals
carrying numpy arrays and the request id they answer.

The work itself (loading checkpoints, opening and seeking videos and cameras, computing,
scoring, recording) is faceedit.inference.session's, which is Qt-free; each of those steps can
block (a camera takes a second to open; a 4K frame takes ~10 ms to decode), which is why it runs
here. This module adds the thread, the mailbox, playback pacing and the signals.

Speed: with compile on, once the first frame of a model is shown, the networks are compiled in
a background process (inference/compile_process.py) and swapped in when ready, so the window
opens at once and gets faster a little later. The session imports torch only when it loads a model, inside this thread, so
importing this module never loads torch.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QMutex, QMutexLocker, QThread, QWaitCondition, Signal

from faceedit.errors import FaceEditError
from faceedit.inference.request import EditRequest
from faceedit.inference.session import (
    EditSession,
    RecordingEnd,
    SpeedOptions,
)
from faceedit.ui.settings import Preferences

logger = logging.getLogger(__name__)

IDLE_POLL_MS: Final[int] = 1000
WORKER_NICENESS: Final[int] = 5


def speed_from_preferences(prefs: Preferences) -> SpeedOptions:
    """The session's speed options as the user's preferences hold them."""
    return SpeedOptions(
        precision=prefs.precision,
        compile=prefs.compile_networks,
        reparse_every_frame=prefs.reparse_every_frame,
        stream_min_face=prefs.stream_min_face,
    )


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
    frame_parse_wanted: bool = False


class InferenceWorker(QThread):
    """Runs the session on its own thread; computes the newest request; answers with signals."""

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
        self._frame_parse_wanted = False
        self._counters = {"submitted": 0, "computed": 0}
        self._device = device
        self._model_path: str | None = None
        # Touched only inside run(), apart from `compiling_in_background` once it stopped.
        self._session = EditSession(detect_every=detect_every)
        self._next_frame_at = 0.0

    # ---- GUI-thread API: record and wake, never compute ----------------------------------------

    def load_model(self, path: str | Path | None, device: str | None = None) -> None:
        """Load a checkpoint (None: no model, detection and alignment only) on `device`."""
        with QMutexLocker(self._mutex):
            if device is not None:
                self._device = device
            self._model_path = None if path is None else str(path)
            self._pending.load = (self._model_path, self._device)
            self._wake.wakeAll()

    @property
    def device(self) -> str:
        """The device the next model load uses (as given: "auto", "cpu" or "cuda")."""
        with QMutexLocker(self._mutex):
            return self._device

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

    def set_frame_parse_wanted(self, wanted: bool) -> None:
        """Compute the parse in the photo's pixels with each result (the overlay on the photo);
        turning it on recomputes the current frame."""
        with QMutexLocker(self._mutex):
            if wanted and not self._frame_parse_wanted:
                self._pending.dirty = True
                self._wake.wakeAll()
            self._frame_parse_wanted = wanted

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
        return self._session.compiling

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
                    frame_parse_wanted=self._frame_parse_wanted,
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
        self._recording_ended(self._session.close_source())

    def _step(self, turn: _Turn) -> None:
        """One turn of the loop, on a snapshot of what the GUI asked for."""
        session = self._session
        pending = turn.pending
        if pending.load is not None:
            self._load(*pending.load, precision=turn.speed.precision)
        if pending.open is not None:
            self._open(pending.open)
        session.apply_speed(turn.detect_every, turn.speed)
        self._update_recording(turn.record_path, turn.record_stop)
        fresh = pending.seek is not None and self._seek(pending.seek)
        if turn.playing and session.source is not None and time.monotonic() >= self._next_frame_at:
            fresh = self._read_next() or fresh
        changed = pending.dirty or pending.load is not None or pending.open is not None or fresh
        if changed and turn.request is not None and session.frame is not None and session.pipeline:
            self._compute(
                turn.request, turn.request_id, turn.scores_wanted, turn.frame_parse_wanted
            )
            if turn.speed.compile:
                # After the first frame is out, so compiling never delays what the user sees.
                session.start_background_compile()
        status = session.compile_news()
        if status is not None:
            self.compileStatus.emit(status.state, status.message)

    def _has_work_locked(self) -> bool:
        p = self._pending
        session = self._session
        if self._stopping or p.load or p.open is not None or p.seek is not None:
            return True
        if session.compile_ended_unreported():
            return True
        if (
            p.dirty
            or self._record_stop
            or (self._record_path and not session.recording and session.source is not None)
        ):
            return True
        return (
            self._playing and session.source is not None and time.monotonic() >= self._next_frame_at
        )

    def _wait_ms_locked(self) -> int:
        if self._playing and self._session.source is not None:
            return max(1, int((self._next_frame_at - time.monotonic()) * 1000))
        return IDLE_POLL_MS

    # ---- steps (worker thread): the session works, the worker reports ---------------------------

    def _load(self, path: str | None, device: str, precision: str = "float32") -> None:
        report = self._session.load(path, device, precision)
        if report.notice:
            self.notice.emit(report.notice)
        if report.error:
            self.modelFailed.emit(report.error)
            with QMutexLocker(self._mutex):
                if self._model_path == path:
                    self._model_path = self._session.model_path
        if report.info is not None:
            self.modelLoaded.emit(report.info)

    def _open(self, source: str | int) -> None:
        ended = self._session.finish_recording()  # a recording belongs to its source
        if ended is not None:
            with QMutexLocker(self._mutex):
                self._record_path = None
            self._recording_ended(ended)
        try:
            info = self._session.open(source)
        except FaceEditError as error:
            self.sourceFailed.emit(str(error))
            return
        self.sourceOpened.emit(info)
        self._next_frame_at = time.monotonic() + 1.0 / max(info.fps, 1.0)

    def _seek(self, index: int) -> bool:
        try:
            return self._session.seek(index)
        except FaceEditError as error:
            self.failed.emit(self._request_id_snapshot(), str(error))
            return False

    def _read_next(self) -> bool:
        """Read the next frame of the playing stream, paced to its frame rate."""
        session = self._session
        assert session.source is not None
        try:
            session.read_next()
        except FaceEditError as error:
            with QMutexLocker(self._mutex):
                self._playing = False
            self.playbackStopped.emit("" if session.at_end else str(error))
            return False
        interval = 1.0 / max(session.source.fps, 1.0)
        now = time.monotonic()
        # Keep the file's pace, but never try to catch up after a slow frame (that would burst).
        self._next_frame_at = (
            max(self._next_frame_at + interval, now) if self._next_frame_at else now + interval
        )
        return True

    def _compute(
        self, request: EditRequest, request_id: int, scores_wanted: bool, frame_parse: bool
    ) -> None:
        with QMutexLocker(self._mutex):
            busy = self._pending.dirty or (self._playing and self._session.source is not None)
        try:
            update = self._session.compute(
                request, request_id, scores=scores_wanted, busy=busy, frame_parse=frame_parse
            )
        except FaceEditError as error:
            self.failed.emit(request_id, str(error))
            return
        with QMutexLocker(self._mutex):
            self._counters["computed"] += 1
        ended = self._session.record(update.output)
        if ended is not None:
            with QMutexLocker(self._mutex):
                self._record_path = None
            self._recording_ended(ended)
        self.resultReady.emit(update)

    def _update_recording(self, path: str | None, stop: bool) -> None:
        session = self._session
        if stop:
            self._recording_ended(session.finish_recording())
        if path is None or session.recording or session.frame is None:
            return
        try:
            session.start_recording(path)
        except FaceEditError as error:
            with QMutexLocker(self._mutex):
                self._record_path = None
            self.recordingFinished.emit(path, 0, str(error))

    def _recording_ended(self, ended: RecordingEnd | None) -> None:
        if ended is not None:
            self.recordingFinished.emit(ended.path, ended.frames, ended.error)

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
