"""faceedit.faces.align: the template, similarity alignment and feathered paste-back."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceedit.errors import InputError
from faceedit.faces.align import (
    CANONICAL_LANDMARKS,
    REGION_FULL,
    REGION_LEVEL,
    align,
    crop_feather,
    estimate_similarity,
    face_oval,
    face_region_mask,
    paste_back,
    region_gate,
    template_landmarks,
    warp_to_frame,
)
from faceedit.faces.detect import Face


def test_similarity_is_recovered_exactly_and_never_reflects() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(5, 2)) * 30 + 100
    angle, scale, shift = 0.4, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = points @ (scale * rotation).T + shift
    matrix = estimate_similarity(points, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)
    mirrored = target * np.array([-1.0, 1.0])
    assert np.linalg.det(estimate_similarity(points, mirrored)[:, :2]) > 0
    with pytest.raises(InputError, match="degenerate"):
        estimate_similarity(np.ones((5, 2)), target)


def test_template_is_a_centred_whole_face_layout() -> None:
    left_eye, right_eye, nose, mouth_left, _ = CANONICAL_LANDMARKS
    assert np.all((CANONICAL_LANDMARKS > 0.3) & (CANONICAL_LANDMARKS < 0.7))
    assert abs(nose[0] - 0.5) < 0.01 and abs((left_eye[0] + right_eye[0]) / 2 - 0.5) < 0.01
    # Room above the eyes for brows and forehead, below the mouth for the chin.
    assert left_eye[1] > 0.35 and mouth_left[1] < 0.7
    np.testing.assert_allclose(template_landmarks(128), CANONICAL_LANDMARKS * 128 - 0.5)


def test_align_puts_the_landmarks_on_the_template(sample: np.ndarray, sample_face: Face) -> None:
    alignment = align(sample, sample_face, size=128)
    assert alignment.crop.shape == (128, 128, 3) and alignment.crop.dtype == np.uint8
    in_crop = alignment.to_crop(sample_face.landmarks)
    residual = np.linalg.norm(in_crop - template_landmarks(128), axis=1)
    assert residual.max() < 128 * 0.05
    np.testing.assert_allclose(alignment.to_frame(in_crop), sample_face.landmarks, atol=1e-3)


def test_align_is_invariant_to_rotating_the_frame(sample: np.ndarray, sample_face: Face) -> None:
    rotation = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
    rotated = cv2.warpAffine(sample, rotation, (512, 512), borderMode=cv2.BORDER_REFLECT_101)
    moved = sample_face.landmarks @ rotation[:, :2].T + rotation[:, 2]
    upright = align(sample, sample_face, size=64).crop.astype(np.float32)
    turned = align(rotated, moved, size=64).crop.astype(np.float32)
    unrelated = align(sample, moved, size=64).crop.astype(np.float32)
    assert np.abs(upright - turned).mean() < 4  # grey levels
    assert np.abs(upright - unrelated).mean() > 30


def test_paste_back_of_an_unchanged_crop_restores_the_frame_bit_for_bit(
    sample: np.ndarray, sample_face: Face
) -> None:
    before = sample.copy()
    for size in (128, 256):
        alignment = align(sample, sample_face, size=size)
        result = paste_back(sample, alignment, alignment.crop)
        assert result is not sample and np.array_equal(sample, before)
        # The change is 0, so no pixel moves (pasting the crop's picture moved most of them).
        assert np.array_equal(result, sample)


def test_paste_back_adds_the_change_and_keeps_the_photos_detail(
    sample: np.ndarray, sample_face: Face
) -> None:
    alignment = align(sample, sample_face, size=128)
    brighter = np.clip(alignment.crop.astype(np.int16) + 30, 0, 255).astype(np.uint8)
    result = paste_back(sample, alignment, brighter)
    mask = face_region_mask(alignment, sample.shape)
    inner = (mask > 0.999) & (sample.max(axis=2) < 200)  # not clipped in the crop either
    lifted = result[inner].astype(np.int16) - sample[inner]
    # The crop's +30 lands as +30 on the photo's own pixels, not as the blurrier crop.
    assert np.mean(lifted == 30) > 0.95 and np.abs(lifted - 30).max() <= 30
    # Seamless: the feather has no step anywhere, and outside it nothing changes.
    assert np.abs(np.diff(mask, axis=0)).max() < 0.1 and np.abs(np.diff(mask, axis=1)).max() < 0.1
    assert np.array_equal(result[mask == 0], sample[mask == 0])
    feather = crop_feather(128)
    assert feather[0].max() == 0 and feather[:, -1].max() == 0 and feather[64, 64] == 1
    assert crop_feather(128) is feather  # built once per size


def test_the_face_oval_covers_the_templates_face_and_nothing_beyond() -> None:
    oval = face_oval(128)
    assert oval.dtype == np.float32 and not oval.flags.writeable and face_oval(128) is oval
    assert oval.min() >= 0.0 and oval.max() == 1.0
    points = template_landmarks(128)
    for x, y in points.round().astype(int):  # eyes, nose tip, mouth corners: full weight
        assert oval[y, x] == 1.0
    assert oval[10, 64] == 0 and oval[64, 5] == 0 and oval[125, 64] == 0  # hair, side, neck
    assert np.abs(np.diff(oval, axis=0)).max() < 0.2  # a soft edge, no step


def test_a_greyscale_photo_stays_greyscale_under_a_coloured_edit(
    sample: np.ndarray, sample_face: Face
) -> None:
    grey = np.repeat(sample.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    alignment = align(grey, sample_face, size=128)
    tinted = alignment.crop.astype(np.int16)
    tinted[..., 0] += 40  # a reddish edit, as an untrained generator may paint
    result = paste_back(grey, alignment, np.clip(tinted, 0, 255).astype(np.uint8))
    assert not np.array_equal(result, grey)  # it did change
    assert np.array_equal(result[..., 0], result[..., 1])
    assert np.array_equal(result[..., 1], result[..., 2])
    colour = align(sample, sample_face, size=128)
    redder = colour.crop.astype(np.int16)
    redder[..., 0] += 40
    kept = paste_back(sample, colour, np.clip(redder, 0, 255).astype(np.uint8))
    assert (kept[..., 0].astype(int) - sample[..., 0]).max() > 20  # colour photos keep the colour


def test_paste_back_with_a_region_lock_changes_nothing_outside_its_footprint(
    sample: np.ndarray, sample_face: Face
) -> None:
    alignment = align(sample, sample_face, size=128)
    lock = np.zeros((128, 128), dtype=np.float32)
    lock[80:100, 40:90] = 1.0
    lock = cv2.GaussianBlur(lock, (0, 0), 3)  # soft, as parser masks are
    result = paste_back(sample, alignment, np.zeros_like(alignment.crop), region_mask=lock)
    height, width = sample.shape[:2]
    footprint = warp_to_frame(lock, alignment, slice(0, height), slice(0, width), cv2.INTER_LINEAR)
    changed = (result != sample).any(axis=2)
    assert changed.sum() > 100
    assert not (changed & (footprint < REGION_LEVEL)).any()
    assert np.array_equal(
        region_gate(np.array([0.0, REGION_LEVEL, REGION_FULL, 1.0])), [0, 0, 1, 1]
    )


def test_paste_back_respects_an_extra_crop_mask(sample: np.ndarray, sample_face: Face) -> None:
    alignment = align(sample, sample_face, size=64)
    only_left = np.zeros((64, 64), dtype=np.float32)
    only_left[:, :32] = 1
    mask = face_region_mask(alignment, sample.shape, crop_mask=only_left)
    full = face_region_mask(alignment, sample.shape)
    assert 0 < mask.sum() < 0.7 * full.sum()
    result = paste_back(sample, alignment, np.zeros_like(alignment.crop), crop_mask=only_left)
    assert np.array_equal(result[mask == 0], sample[mask == 0])


def test_a_face_half_outside_the_frame_is_aligned_not_refused(
    sample: np.ndarray, sample_face: Face
) -> None:
    nose_x = int(sample_face.landmarks[2, 0])
    cut = sample[:, nose_x:]  # the left half of the face has left the frame
    shifted = sample_face.landmarks - np.array([nose_x, 0], dtype=np.float32)
    full = align(sample, sample_face, size=128)
    partial = align(cut, shifted, size=128)
    assert partial.crop.shape == (128, 128, 3)
    # Where the crop still sees the frame, it shows the same pixels as before.
    source_x = full.to_frame(np.stack(np.meshgrid(np.arange(128), np.arange(128)), -1))[:, 0]
    inside = (source_x > nose_x + 1).reshape(128, 128)
    assert inside.mean() > 0.3
    diff = np.abs(partial.crop.astype(int) - full.crop.astype(int))[inside]
    assert diff.mean() < 1.0
    pasted = paste_back(cut, partial, partial.crop)
    assert pasted.shape == cut.shape


def test_downscaling_alignment_averages_instead_of_aliasing(
    sample: np.ndarray, sample_face: Face
) -> None:
    # The sample blown up 4x by pixel repetition must align to (nearly) the same crop.
    big = cv2.resize(sample, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    landmarks = sample_face.landmarks.astype(np.float64) * 4 + 1.5
    small = align(sample, sample_face, size=64).crop.astype(np.float32)
    from_big = align(big, landmarks, size=64).crop.astype(np.float32)
    assert np.abs(small - from_big).mean() < 4.0


def test_paste_back_computes_on_a_rectangle_what_the_whole_frame_would_give(
    sample: np.ndarray, sample_face: Face
) -> None:
    alignment = align(sample, sample_face, size=64)
    rng = np.random.default_rng(0)
    edited = alignment.crop.copy()
    edited[30:40, 20:44] = rng.integers(0, 256, (10, 24, 3), dtype=np.uint8)  # a local edit
    weights = np.zeros((64, 64), np.float32)
    weights[28:42, 10:50] = rng.uniform(0, 1, (14, 40))
    lock = np.zeros((64, 64), np.float32)
    lock[25:45, 15:40] = 0.9
    result = paste_back(sample, alignment, edited, crop_mask=weights, region_mask=lock)
    # The same formula evaluated on every pixel of the frame.
    height, width = sample.shape[:2]
    every = (slice(0, height), slice(0, width))
    change = edited.astype(np.float32) - alignment.crop
    weight = warp_to_frame(crop_feather(64) * weights, alignment, *every, cv2.INTER_LINEAR)
    weight *= region_gate(warp_to_frame(lock, alignment, *every, cv2.INTER_LINEAR))
    moved = warp_to_frame(change, alignment, *every, cv2.INTER_CUBIC) * weight[:, :, None]
    expected = np.clip(np.rint(sample + moved), 0, 255).astype(np.uint8)
    assert (result != sample).any()
    assert np.abs(result.astype(int) - expected).max() <= 1  # OpenCV's and numpy's rounding
    assert np.array_equal(result[weight == 0], sample[weight == 0])
