"""dlib's face descriptor on the bundled sample face (needs dlib and its models)."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import dlib_landmarks
from trainer.judges.real.identity import SAME_PERSON, descriptor_distance

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not dlib_landmarks.available(), reason="dlib is not installed"),
]


def test_a_face_is_itself_and_a_mirror_is_still_the_same_person() -> None:
    from faceedit.faces.detect import FaceDetector
    from tests.trainer.fixtures import face_photo
    from trainer.judges.real.identity import shared_describer

    photo = face_photo(0, side=160)
    face = FaceDetector(device="cpu").detect(photo)[0]
    describer = shared_describer()
    first = describer.describe(photo, face.box)
    assert first.shape == (128,)
    assert descriptor_distance(first, describer.describe(photo.copy(), face.box)) == 0.0
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    other = FaceDetector(device="cpu").detect(mirrored)[0]
    assert descriptor_distance(first, describer.describe(mirrored, other.box)) < SAME_PERSON
    assert describer.landmarks(photo, face.box).shape == (68, 2)
