from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceedit.faces.detect import Face, FaceDetector
from faceedit.faces.tracking import FaceTracker, box_iou
from faceedit.media.bundled import astronaut_image_path
from faceedit.media.sources import read_image


class CountingDetector:
    """A real detector that counts its calls and can add jitter, as MTCNN does frame to frame."""

    def __init__(self, inner: FaceDetector, jitter: float = 0.0) -> None:
        self.inner, self.jitter, self.calls = inner, jitter, 0
        self.rng = np.random.default_rng(0)

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        faces = self.inner.detect(image)
        if not self.jitter:
            return faces
        return [
            Face(
                box=f.box + self.rng.normal(0, self.jitter, 4).astype(np.float32),
                score=f.score,
                landmarks=f.landmarks + self.rng.normal(0, self.jitter, (5, 2)).astype(np.float32),
            )
            for f in faces
        ]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu")


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


def test_tracks_between_detections(detector: FaceDetector) -> None:
    image = read_image(astronaut_image_path())
    counting = CountingDetector(detector)
    tracker = FaceTracker(counting, detect_every=5, smoothing=0.0)
    first = tracker.update(image)
    assert len(first) == 1 and tracker.last_was_detection
    for step in range(1, 5):
        faces = tracker.update(shifted(image, 2.0 * step, -1.0 * step))
        assert not tracker.last_was_detection
        expected = first[0].landmarks + np.array([2.0 * step, -1.0 * step])
        assert np.abs(faces[0].landmarks - expected).max() < 1.5
        assert box_iou(faces[0].box, first[0].box + np.array([2, -1, 2, -1]) * step) > 0.95
    tracker.update(shifted(image, 10, -5))
    assert counting.calls == 2 and tracker.last_was_detection


def test_lost_points_force_a_new_detection(detector: FaceDetector) -> None:
    image = read_image(astronaut_image_path())
    counting = CountingDetector(detector)
    tracker = FaceTracker(counting, detect_every=30)
    assert len(tracker.update(image)) == 1
    assert tracker.update(np.full_like(image, 128)) == []
    assert counting.calls == 2


class JitteryDetector:
    """The same face every call, with landmark noise like MTCNN's between identical frames."""

    def __init__(self, face: Face, jitter: float) -> None:
        self.face, self.jitter, self.rng = face, jitter, np.random.default_rng(0)

    def detect(self, image: np.ndarray) -> list[Face]:
        noise = self.rng.normal(0, self.jitter, (5, 2)).astype(np.float32)
        return [
            Face(box=self.face.box, score=self.face.score, landmarks=self.face.landmarks + noise)
        ]


def test_smoothing_reduces_detector_jitter() -> None:
    face = Face(
        box=np.float32([100, 100, 260, 300]),
        score=0.99,
        landmarks=np.float32([[150, 180], [210, 180], [180, 220], [155, 260], [205, 260]]),
    )
    frame = np.zeros((400, 400, 3), np.uint8)

    def spread(smoothing: float) -> float:
        tracker = FaceTracker(
            JitteryDetector(face, jitter=1.5), detect_every=1, smoothing=smoothing
        )
        marks = np.stack([tracker.update(frame)[0].landmarks for _ in range(40)])
        return float(marks.std(axis=0).mean())

    assert spread(0.8) < 0.6 * spread(0.0)


def test_bad_settings_are_refused(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="detect_every"):
        FaceTracker(detector, detect_every=0)
    with pytest.raises(ValueError, match="smoothing"):
        FaceTracker(detector, smoothing=1.0)
