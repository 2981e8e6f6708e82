"""One frame in, one edited frame out: detect, align, parse, generate, paste back (docs/architecture.md §3).

Shared by the app's inference worker, the `faceedit edit` command and the benchmark, so all
three measure and run exactly the same path. Qt-free; returns numpy arrays and per-stage
milliseconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import numpy as np

from faceedit.errors import ConfigError
from faceedit.faces.align import Alignment, align, paste_back, whole_image_face
from faceedit.faces.detect import Face, FaceDetector
from faceedit.faces.image import as_rgb_uint8
from faceedit.faces.tracking import FaceTracker
from faceedit.inference.engine import EditEngine
from faceedit.inference.outputs import EditResult, Parsing
from faceedit.inference.request import REPARSE_POLICIES, EditRequest, ReparsePolicy

STAGES: Final[tuple[str, ...]] = ("detect", "align", "parse", "generate", "paste")


@dataclass
class FaceResult:
    """One processed face: where it is, its aligned crop, its parse and its edit (when run)."""

    face: Face
    alignment: Alignment
    parsing: Parsing | None = None
    edit: EditResult | None = None


@dataclass
class FrameResult:
    """The edited frame, every detected face, the processed ones, and stage timings (ms)."""

    output: np.ndarray
    faces: list[Face]
    processed: list[FaceResult]
    timings: dict[str, float]
    detected: bool = True


class FramePipeline:
    """Runs the whole editing path on frames; caches detection per frame key and parses per crop.

    `detector` may be None when every request is `aligned` (the frame is the face crop).
    """

    def __init__(
        self,
        engine: EditEngine,
        detector: FaceDetector | None,
        detect_every: int = 1,
        reparse: ReparsePolicy = "every_frame",
    ) -> None:
        if reparse not in REPARSE_POLICIES:
            raise ValueError(f"reparse must be one of {REPARSE_POLICIES}, got {reparse!r}")
        self.engine = engine
        self.detector = detector
        self.tracker = FaceTracker(detector, detect_every=detect_every)  # type: ignore[arg-type]
        self.reparse: ReparsePolicy = reparse
        self._frame_key: object = None
        self._faces: list[Face] = []
        self._parses: dict[int, Parsing] = {}  # face index -> its parse at the last detection

    def reset(self) -> None:
        """Forget faces and tracking (new source, seek)."""
        self.tracker.reset()
        self._frame_key, self._faces = None, []
        self._parses = {}

    def faces(self, frame: np.ndarray, frame_key: object = None) -> tuple[list[Face], bool]:
        """Faces of `frame`; a repeated non-None `frame_key` (a still image) reuses the last ones."""
        if frame_key is not None and frame_key == self._frame_key:
            return self._faces, False
        if self.detector is None:
            raise ConfigError(
                "this pipeline has no face detector: only aligned face crops can be edited "
                "(--aligned)"
            )
        faces = self.tracker.update(frame)
        self._frame_key, self._faces = frame_key, faces
        return faces, self.tracker.last_was_detection

    def process(
        self, frame: np.ndarray, request: EditRequest, frame_key: object = None
    ) -> FrameResult:
        """Edit the chosen face(s) of `frame` as `request` says; faces are kept outside the frame."""
        timings = dict.fromkeys(STAGES, 0.0)
        start = time.perf_counter()
        frame = as_rgb_uint8(frame, source="frame")
        if request.aligned:
            # The frame is the crop: no detector, and the detection and parse caches of the
            # detected path are left as they are (neither applies to this face).
            faces, detected = [whole_image_face(frame.shape)], False
        else:
            faces, detected = self.faces(frame, frame_key)
            if detected:
                self._parses = {}
        timings["detect"] = (time.perf_counter() - start) * 1000
        chosen = self._chosen(faces, request)
        output = frame
        processed: list[FaceResult] = []
        caps = self.engine.capabilities
        for index, face in chosen:
            t0 = time.perf_counter()
            alignment = align(frame, face, size=self.engine.crop_size)
            t1 = time.perf_counter()
            timings["align"] += (t1 - t0) * 1000
            result = FaceResult(face, alignment)
            tracked = self.reparse == "on_detection" and not request.aligned
            reused = self._parses.get(index) if tracked else None
            if caps.can_parse:
                result.parsing = reused if reused is not None else self.engine.parse(alignment.crop)
                if not request.aligned:
                    self._parses[index] = result.parsing
                timings["parse"] += (time.perf_counter() - t1) * 1000
            if caps.can_edit and not request.is_identity:
                edit = self.engine.edit(
                    alignment.crop,
                    request.condition,
                    region_conditions=request.region_conditions or None,
                    editable_regions=request.editable_regions,
                    valence_arousal=request.valence_arousal,
                    region_masks=None if reused is None else reused.region_masks,
                )
                result.edit = edit
                timings["generate"] += edit.timings.get("generate", 0.0)
                t2 = time.perf_counter()
                output = paste_back(
                    output, alignment, edit.crop, crop_mask=edit.weight, region_mask=edit.lock
                )
                timings["paste"] += (time.perf_counter() - t2) * 1000
            processed.append(result)
        if output is frame:
            output = frame.copy()
        timings["total"] = (time.perf_counter() - start) * 1000
        return FrameResult(
            output=output, faces=faces, processed=processed, timings=timings, detected=detected
        )

    @staticmethod
    def _chosen(faces: list[Face], request: EditRequest) -> list[tuple[int, Face]]:
        """(index, face) pairs to process; tracking keeps a face's index until the next detection."""
        if not faces:
            return []
        if request.all_faces:
            return list(enumerate(faces))
        index = request.face_index or 0
        return [(index, faces[index])] if 0 <= index < len(faces) else [(0, faces[0])]
