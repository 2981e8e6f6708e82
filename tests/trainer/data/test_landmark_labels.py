"""Label maps drawn from 68 landmarks: the right class where each part is, 255 where the points
say nothing, image-left parts in the l_* classes; and dlib's predictor on a real face."""

from __future__ import annotations

import numpy as np
import pytest

from faceedit.vocab.labels import CLASS_INDEX as C
from faceedit.vocab.labels import flip_permutation
from tests.trainer.fixtures import face_photo
from trainer.data import dlib_landmarks
from trainer.data.landmark_labels import UNLABELLED, landmark_label_map

SIZE = 64


def hand_points() -> np.ndarray:
    """(68, 2) iBUG points of a frontal face in a 64 px map, placed by hand: eyes at y 26,
    brows' upper edge at y 18, nose tip at (32, 36), mouth from x 22 to 42 around y 46, chin at
    y 58, jaw from x 10 to 54."""
    p = np.zeros((68, 2))
    angles = np.linspace(np.pi, 0, 17)  # image-left ear, round the chin, image-right ear
    p[0:17] = np.stack([32 + 22 * np.cos(angles), 26 + 32 * np.sin(angles)], 1)
    p[17:22] = np.stack([np.linspace(14, 28, 5), [19, 18, 17.5, 18, 19]], 1)  # outer -> inner
    p[22:27] = np.stack([np.linspace(36, 50, 5), [19, 18, 17.5, 18, 19]], 1)  # inner -> outer
    p[27:31] = np.stack([np.full(4, 32.0), np.linspace(25, 36, 4)], 1)
    p[31:36] = np.stack([np.linspace(28, 36, 5), [37, 38, 38.5, 38, 37]], 1)
    for start, cx in ((36, 22.0), (42, 42.0)):  # corner, two upper, corner, two lower
        p[start : start + 6] = [
            (cx - 5, 26), (cx - 2, 24), (cx + 2, 24), (cx + 5, 26), (cx + 2, 28), (cx - 2, 28)
        ]  # fmt: skip
    p[48:60] = [
        (22, 46), (25, 43), (29, 42), (32, 43), (35, 42), (39, 43), (42, 46),
        (39, 50), (35, 52), (32, 52.5), (29, 52), (25, 50),
    ]  # fmt: skip
    p[60:68] = [(24, 46), (29, 45), (32, 45.5), (35, 45), (40, 46), (35, 48), (32, 48.5), (29, 48)]
    return p


def test_each_part_is_labelled_where_the_points_put_it() -> None:
    labels = landmark_label_map(hand_points(), SIZE)
    assert labels.shape == (SIZE, SIZE) and labels.dtype == np.uint8
    expected = {
        (26, 22): C["l_eye"],  # (row, column): the image-left eye
        (26, 42): C["r_eye"],
        (19, 20): C["l_brow"],
        (19, 44): C["r_brow"],
        (32, 32): C["nose"],
        (43, 29): C["u_lip"],
        (47, 32): C["mouth"],
        (51, 32): C["l_lip"],
        (40, 18): C["skin"],  # cheek
        (55, 32): C["skin"],  # chin
        (21, 32): C["skin"],  # between the brows
    }
    for (row, col), cls in expected.items():
        assert labels[row, col] == cls, (row, col, labels[row, col], cls)
    # What landmarks cannot tell: forehead, hair, beyond the jaw, the corners.
    for row, col in ((8, 32), (14, 20), (2, 2), (40, 4), (62, 32), (30, 60)):
        assert labels[row, col] == UNLABELLED, (row, col)
    assert C["background"] not in labels and C["hair"] not in labels
    present = set(np.unique(labels).tolist())
    assert present == {UNLABELLED, *(C[n] for n in ("skin", "l_brow", "r_brow", "l_eye",
                                                    "r_eye", "nose", "mouth", "u_lip", "l_lip"))}  # fmt: skip


def test_a_mirrored_face_swaps_left_and_right_classes() -> None:
    points = hand_points()
    labels = landmark_label_map(points, SIZE)
    # Mirroring the image moves each point to x' = W - 1 - x; the iBUG order also mirrors
    # (point 0 becomes the image-left one again), so re-index as a mirrored annotation would.
    order = [*range(16, -1, -1), *range(26, 16, -1), *range(27, 31), *range(35, 30, -1)]
    order += [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    order += [*range(54, 47, -1), *range(59, 54, -1), *range(64, 59, -1), *range(67, 64, -1)]
    mirrored = points[order] * [-1, 1] + [SIZE - 1, 0]
    flipped = landmark_label_map(mirrored, SIZE)
    agree = flip_permutation()[labels[:, ::-1].clip(0, 18)] == flipped
    agree |= (labels[:, ::-1] == UNLABELLED) & (flipped == UNLABELLED)
    assert agree.mean() > 0.97  # rasterisation differs by a pixel along some edges


def test_points_outside_or_not_finite_leave_the_map_unlabelled() -> None:
    assert (landmark_label_map(np.full((68, 2), np.nan), 16) == UNLABELLED).all()
    far = landmark_label_map(hand_points() + 500, SIZE)
    assert (far == UNLABELLED).all()
    with pytest.raises(ValueError, match="68"):
        landmark_label_map(np.zeros((5, 2)), SIZE)
    rect = landmark_label_map(hand_points(), (80, SIZE))
    assert rect.shape == (SIZE, 80)


def test_the_world_agrees_with_landmark_labels_on_sides() -> None:
    """The procedural world draws l_* on the image's left and lists its 68 points as iBUG does:
    each part's polygon overlaps the world's own part on the same side, not the other one."""
    from trainer.world.actions import action_units
    from trainer.world.render import IdentityRenderer
    from trainer.world.world import identity_of

    rendering = IdentityRenderer(identity_of(0, 0), 128).render(action_units("neutral", 1.0))
    ours = landmark_label_map(rendering.landmarks, 128)
    truth = rendering.labels

    def iou(a: int, b: int) -> float:
        x, y = ours == a, truth == b
        return float((x & y).sum() / max((x | y).sum(), 1))

    for left, right in (("l_eye", "r_eye"), ("l_brow", "r_brow")):
        assert iou(C[left], C[left]) > 0.3 and iou(C[left], C[right]) == 0.0
        assert iou(C[right], C[right]) > 0.3 and iou(C[right], C[left]) == 0.0
    for part in ("skin", "nose", "u_lip", "l_lip"):
        assert iou(C[part], C[part]) > 0.3, part


@pytest.mark.skipif(not dlib_landmarks.available(), reason="dlib or its 68-point model is not "
                    "installed (pip install -e '.[landmarks]')")  # fmt: skip
def test_dlib_finds_the_parts_of_a_real_face_in_the_apps_crop() -> None:
    from faceedit.faces.align import align
    from faceedit.faces.detect import FaceDetector
    from trainer.data.facial_expressions import landmark_disagreement

    photo = face_photo(0, side=160)
    face = FaceDetector(device="cpu").detect(photo)[0]
    points = dlib_landmarks.shared_predictor().predict(photo, face.box)
    assert points.shape == (68, 2)
    alignment = align(photo, face, size=SIZE)
    crop_points = alignment.to_crop(points)
    assert landmark_disagreement(crop_points, alignment.to_crop(face.landmarks)) < 0.15
    labels = landmark_label_map(crop_points, SIZE)
    five = alignment.to_crop(face.landmarks).round().astype(int)  # eyes, nose, mouth corners
    assert labels[five[0][1], five[0][0]] == C["l_eye"]
    assert labels[five[1][1], five[1][0]] == C["r_eye"]
    assert labels[five[2][1], five[2][0]] in (C["nose"], C["skin"])
    for part in ("skin", "l_brow", "r_brow", "nose", "u_lip", "l_lip"):
        assert (labels == C[part]).sum() > 4, part
