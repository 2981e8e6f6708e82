"""Fixtures shared by the faces tests: one CPU detector and the bundled sample face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceedit.faces.detect import Face, FaceDetector
from faceedit.media.bundled import astronaut_image_path
from faceedit.media.sources import read_image


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu")


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    return read_image(astronaut_image_path())


@pytest.fixture(scope="module")
def small_sample(sample: np.ndarray) -> np.ndarray:
    """The sample at 256x256: detection tests that need not use full size run 4x faster."""
    return cv2.resize(sample, (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def sample_face(detector: FaceDetector, sample: np.ndarray) -> Face:
    faces = detector.detect(sample)
    assert len(faces) == 1
    return faces[0]
