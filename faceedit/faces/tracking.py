"""Follow faces between detections so live video is fast and boxes do not jitter.

MTCNN costs ~60 ms a frame on a laptop CPU; optical flow on five points costs well under 1 ms.
The tracker detects every `detect_every` frames and in between moves each face's landmarks with
pyramidal Lucas-Kanade flow. Landmarks are smoothed with an exponential moving average whose
weight falls as motion grows, so a still face is steady and a moving one is not left behind.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from faceedit.faces.detect import Face, FaceDetector

_LK_PARAMS = {
    "winSize": (21, 21),
    "maxLevel": 3,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
}


# Landmark motion, in eye distances, below which a change is treated as detector noise.
_NOISE_SCALE = 0.1


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceTracker:
    """Faces for each frame of a stream: detection every N frames, optical flow in between."""

    def __init__(
        self, detector: FaceDetector, detect_every: int = 5, smoothing: float = 0.6
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.detector = detector
        self.detect_every = detect_every
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        """Forget the stream (call on seek or source change)."""
        self._faces: list[Face] = []
        self._gray: np.ndarray | None = None
        self._since_detection = 0
        self.last_was_detection = False

    def update(self, frame: np.ndarray) -> list[Face]:
        """Faces in `frame` (RGB uint8), largest first."""
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        tracked = (
            self._track(gray) if self._faces and self._since_detection < self.detect_every else None
        )
        if tracked is None:
            detected = self.detector.detect(frame)
            faces = [self._smooth_against_previous(face) for face in detected]
            self._since_detection = 1
            self.last_was_detection = True
        else:
            faces = tracked
            self._since_detection += 1
            self.last_was_detection = False
        self._faces, self._gray = faces, gray
        return faces

    def _track(self, gray: np.ndarray) -> list[Face] | None:
        """Move every face by optical flow; None (re-detect) if any point is lost."""
        assert self._gray is not None
        if self._gray.shape != gray.shape:
            return None
        points = (
            np.concatenate([f.landmarks for f in self._faces]).astype(np.float32).reshape(-1, 1, 2)
        )
        # None for nextPts lets OpenCV allocate it; the stubs want an array there.
        moved, status, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, points, None, **_LK_PARAMS)  # type: ignore[call-overload]  # see above
        if moved is None or not status.all():
            return None
        back, back_status, _ = cv2.calcOpticalFlowPyrLK(gray, self._gray, moved, None, **_LK_PARAMS)  # type: ignore[call-overload]  # as above
        if back is None or not back_status.all():
            return None
        moved = moved.reshape(-1, 5, 2)
        # Forward-backward error: points that do not return home were tracked onto something else.
        error = np.linalg.norm(back.reshape(-1, 5, 2) - points.reshape(-1, 5, 2), axis=2)
        faces = []
        for face, landmarks, err in zip(self._faces, moved, error, strict=True):
            scale = float(np.linalg.norm(face.landmarks[0] - face.landmarks[1])) or 1.0
            if err.max() > 0.1 * scale:
                return None
            faces.append(self._follow(face, landmarks))
        return faces

    def _follow(self, face: Face, landmarks: np.ndarray) -> Face:
        """The face moved so its landmarks land on `landmarks` (box shifted and scaled alike)."""
        old_center, new_center = face.landmarks.mean(0), landmarks.mean(0)
        old_spread = float(np.linalg.norm(face.landmarks - old_center, axis=1).mean()) or 1.0
        ratio = float(np.linalg.norm(landmarks - new_center, axis=1).mean()) / old_spread
        box = face.box.reshape(2, 2)
        new_box = (box - old_center) * ratio + new_center
        return replace(
            face, box=new_box.reshape(4).astype(np.float32), landmarks=landmarks.astype(np.float32)
        )

    def _smooth_against_previous(self, face: Face) -> Face:
        """Blend a fresh detection with the tracked face it matches, weighted by how far it moved."""
        match = max(self._faces, key=lambda old: box_iou(old.box, face.box), default=None)
        if match is None or box_iou(match.box, face.box) < 0.3 or self.smoothing == 0:
            return face
        size = float(np.linalg.norm(face.landmarks[0] - face.landmarks[1])) or 1.0
        motion = float(np.linalg.norm(face.landmarks - match.landmarks, axis=1).mean()) / size
        # Motion of a few per cent of the eye distance is detector noise (MTCNN's landmarks move
        # 1-3 px between identical frames): keep most of the old value; real motion wins quickly.
        keep = self.smoothing * float(np.exp(-motion / _NOISE_SCALE))
        landmarks = keep * match.landmarks + (1 - keep) * face.landmarks
        box = keep * match.box + (1 - keep) * face.box
        return replace(face, box=box.astype(np.float32), landmarks=landmarks.astype(np.float32))
