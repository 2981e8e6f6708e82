"""faceedit.faces.face: MTCNN on the sample, alignment, paste-back, input conversion, the NMS import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceedit.errors import InputError
from faceedit.faces import face as face_module
from faceedit.faces.face import (
    CANONICAL_LANDMARKS,
    Face,
    FaceDetector,
    align,
    as_rgb_uint8,
    crop_feather,
    estimate_similarity,
    face_region_mask,
    paste_back,
    template_landmarks,
)
from faceedit.media.bundled import sample_image_path
from faceedit.media.sources import read_image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(device="cpu")


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    return read_image(sample_image_path())


@pytest.fixture(scope="module")
def small_sample(sample: np.ndarray) -> np.ndarray:
    """The sample at 256x256: detection tests that need not use full size run 4x faster."""
    return cv2.resize(sample, (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def sample_face(detector: FaceDetector, sample: np.ndarray) -> Face:
    faces = detector.detect(sample)
    assert len(faces) == 1
    return faces[0]


def torchvision_modules() -> list[str]:
    return [
        name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")
    ]


# ---------------------------------------------------------------- detection


def test_the_sample_has_one_confident_face_with_plausible_landmarks(
    sample_face: Face, sample: np.ndarray
) -> None:
    face = sample_face
    assert face.score > 0.95
    assert face.box.dtype == np.float32 and face.landmarks.dtype == np.float32
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= sample.shape[1] and 0 <= y1 < y2 <= sample.shape[0]
    xs, ys = face.landmarks[:, 0], face.landmarks[:, 1]
    assert np.all((xs > x1) & (xs < x2) & (ys > y1) & (ys < y2))
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert left_eye[0] < nose[0] < right_eye[0]
    assert mouth_left[0] < nose[0] < mouth_right[0]


def test_faces_are_immutable(sample_face: Face) -> None:
    with pytest.raises(ValueError):
        sample_face.box[0] = 0
    with pytest.raises(AttributeError):
        sample_face.score = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("kind", ["gray", "noise"])
def test_no_face_gives_an_empty_list(detector: FaceDetector, kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "gray":
        image = np.full((160, 160, 3), 128, dtype=np.uint8)
    else:
        image = rng.integers(0, 256, size=(160, 160, 3), dtype=np.uint8)
    assert detector.detect(image) == []


def test_largest_face_first(detector: FaceDetector, sample: np.ndarray) -> None:
    # The sample face twice, side by side, the second at half the size.
    canvas = np.full((320, 480, 3), 200, dtype=np.uint8)
    canvas[:, :320] = cv2.resize(sample, (320, 320), interpolation=cv2.INTER_AREA)
    canvas[80:240, 320:480] = cv2.resize(sample, (160, 160), interpolation=cv2.INTER_AREA)
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].area > 3 * faces[1].area
    assert faces[0].box[0] < 320 <= faces[1].box[0]


def test_detect_batch_matches_single_calls(
    detector: FaceDetector, small_sample: np.ndarray
) -> None:
    gray = np.full_like(small_sample, 90)
    odd_size = np.full((100, 90), 7, np.uint8)
    batch = detector.detect_batch([small_sample, gray, odd_size])
    assert [len(faces) for faces in batch] == [1, 0, 0]
    single = detector.detect(small_sample)
    np.testing.assert_allclose(batch[0][0].box, single[0].box, atol=1e-3)
    np.testing.assert_allclose(batch[0][0].landmarks, single[0].landmarks, atol=1e-3)


def test_the_torchvision_stand_ins_are_gone_after_import() -> None:
    face_module._import_mtcnn()
    assert face_module.NMS_BACKEND in ("torchvision", "faceedit")
    detect_face = sys.modules["facenet_pytorch.models.utils.detect_face"]
    if face_module.NMS_BACKEND == "faceedit":
        from faceedit.faces.nms import batched_nms

        assert detect_face.batched_nms is batched_nms
        assert torchvision_modules() == []
    for name in torchvision_modules():
        assert not getattr(sys.modules[name], "__faceedit_stand_in__", False), name


def _fake_torchvision(root: Path, init: str) -> None:
    package = root / "torchvision"
    (package / "ops").mkdir(parents=True)
    (package / "transforms").mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(init))
    (package / "_loaded_first.py").write_text("")
    (package / "ops" / "__init__.py").write_text("from .boxes import batched_nms, nms\n")
    (package / "ops" / "boxes.py").write_text(
        "from faceedit.faces import nms as _own\n\n"
        "def nms(*args):\n    return _own.nms(*args)\n\n"
        "def batched_nms(*args):\n    return _own.batched_nms(*args)\n"
    )
    (package / "transforms" / "__init__.py").write_text("")
    (package / "transforms" / "functional.py").write_text("def to_tensor(x):\n    return x\n")


def test_a_broken_torchvision_is_probed_and_left_without_a_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a CUDA torchvision does on CPU torch: a submodule loads, then the import fails.
    _fake_torchvision(
        tmp_path,
        """
        from . import _loaded_first
        raise RuntimeError("operator torchvision::nms does not exist")
        """,
    )
    for name in torchvision_modules():
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert face_module._torchvision_usable() is False
    assert torchvision_modules() == []


@pytest.mark.slow
def test_a_working_torchvision_is_used_when_it_imports(tmp_path: Path) -> None:
    # A fresh interpreter, where torchvision imports fine: MTCNN must use it, not the stand-ins.
    _fake_torchvision(tmp_path, "from . import ops, transforms\n")
    script = textwrap.dedent(
        """
        import sys
        from faceedit.faces import face
        face._import_mtcnn()
        detect_face = sys.modules["facenet_pytorch.models.utils.detect_face"]
        real = sys.modules["torchvision.ops.boxes"]
        assert not getattr(real, "__faceedit_stand_in__", False)
        assert detect_face.batched_nms is real.batched_nms
        assert detect_face.F is sys.modules["torchvision.transforms.functional"]
        print(face.NMS_BACKEND)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "torchvision"


def test_detector_configuration_is_validated() -> None:
    from faceedit.errors import ConfigError

    with pytest.raises(ConfigError, match="device"):
        FaceDetector(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_face_size"):
        FaceDetector(device="cpu", min_face_size=5)
    with pytest.raises(ConfigError, match="thresholds"):
        FaceDetector(device="cpu", thresholds=(0.6, 0.7, 1.5))


def test_smallest_face_can_change_between_sources() -> None:
    """A still photo searches down to 20 px; a video can skip small faces (cheaper pyramid)."""
    from faceedit.errors import ConfigError

    small = cv2.resize(read_image(sample_image_path()), (96, 96), interpolation=cv2.INTER_AREA)
    frame = np.full((240, 320, 3), 128, np.uint8)
    frame[72:168, 112:208] = small  # a face about 70 px wide
    detector = FaceDetector(device="cpu", min_face_size=20)
    assert any(face.box[2] - face.box[0] > 50 for face in detector.detect(frame))
    detector.min_face_size = 160
    assert detector.min_face_size == 160 and detector.detect(frame) == []
    with pytest.raises(ConfigError, match="min_face_size"):
        detector.min_face_size = 8


# ---------------------------------------------------------------- alignment


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


def test_landmarks_follow_a_rotated_face(
    detector: FaceDetector, sample: np.ndarray, sample_face: Face
) -> None:
    rotation = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
    rotated = cv2.warpAffine(sample, rotation, (512, 512), borderMode=cv2.BORDER_REFLECT_101)
    faces = detector.detect(rotated)
    assert len(faces) == 1
    moved = sample_face.landmarks @ rotation[:, :2].T + rotation[:, 2]
    eye_distance = np.linalg.norm(moved[1] - moved[0])
    assert np.linalg.norm(faces[0].landmarks - moved, axis=1).max() < 0.15 * eye_distance


def test_paste_back_of_an_unchanged_crop_restores_the_frame(
    sample: np.ndarray, sample_face: Face
) -> None:
    before = sample.copy()
    alignment = align(sample, sample_face, size=256)
    result = paste_back(sample, alignment, alignment.crop)
    mask = face_region_mask(alignment, sample.shape)
    assert result is not sample and np.array_equal(sample, before)
    error = np.abs(result.astype(np.float64) - sample.astype(np.float64)).mean(axis=2)
    assert error[mask > 0.5].mean() < 2.0  # i.e. < 2/255
    assert (mask == 0).any() and (mask > 0.99).any()
    assert np.array_equal(result[mask == 0], sample[mask == 0])


def test_paste_back_blends_an_edit_with_a_seamless_feather(
    sample: np.ndarray, sample_face: Face
) -> None:
    alignment = align(sample, sample_face, size=128)
    black = np.zeros_like(alignment.crop)
    result = paste_back(sample, alignment, black)
    mask = face_region_mask(alignment, sample.shape)
    assert result[mask > 0.999].max() <= 1
    # The feather has no step anywhere: neighbouring pixels differ by little.
    assert np.abs(np.diff(mask, axis=0)).max() < 0.1 and np.abs(np.diff(mask, axis=1)).max() < 0.1
    assert np.array_equal(result[mask == 0], sample[mask == 0])
    feather = crop_feather(128)
    assert feather[0].max() == 0 and feather[:, -1].max() == 0 and feather[64, 64] == 1
    assert crop_feather(128) is feather  # built once per size


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


# ---------------------------------------------------------------- input conversion


def test_conversions_to_rgb_uint8() -> None:
    gray = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    rgb = as_rgb_uint8(gray)
    assert rgb.shape == (32, 32, 3) and np.array_equal(rgb[..., 1], gray)
    assert as_rgb_uint8(gray[:, :, None]).shape == (32, 32, 3)

    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:10, :, 3] = 255  # top half opaque red, bottom half fully transparent
    out = as_rgb_uint8(rgba)
    assert out[0, 0].tolist() == [200, 0, 0] and out[-1, -1].tolist() == [255, 255, 255]

    deep = np.full((16, 16, 3), 257 * 100, dtype=np.uint16)
    deep[0, 0] = [0, 65535, 257 * 100 + 128]
    out = as_rgb_uint8(deep)
    assert out[0, 0].tolist() == [0, 255, 100] and out[5, 5, 0] == 100

    floats = np.full((16, 16, 3), 0.5, dtype=np.float32)
    assert as_rgb_uint8(floats)[0, 0].tolist() == [128, 128, 128]

    ready = np.zeros((16, 16, 3), dtype=np.uint8)
    assert as_rgb_uint8(ready) is ready


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((1, 1, 3), np.uint8), "1x1 pixels"),
        (np.zeros((2, 32, 32, 3), np.uint8), "one at a time"),
        (np.zeros((32, 32), bool), "boolean"),
        (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
        (np.full((32, 32, 3), 200.0), "divide by 255"),
        (np.zeros((32, 32, 5), np.uint8), "5 channels"),
        (np.zeros((0, 32, 3), np.uint8), "empty"),
        (np.zeros((32, 32, 3), np.int64), "int64"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_arrays_are_refused_with_a_reason(array: object, words: str) -> None:
    with pytest.raises(InputError, match=words) as raised:
        as_rgb_uint8(array, source="my_frame")
    assert "my_frame" in str(raised.value)


def test_detector_accepts_the_converted_forms(
    detector: FaceDetector, small_sample: np.ndarray
) -> None:
    gray = cv2.cvtColor(small_sample, cv2.COLOR_RGB2GRAY)
    assert len(detector.detect(gray)) == 1
    assert len(detector.detect(small_sample.astype(np.float32) / 255)) == 1
    with pytest.raises(InputError):
        detector.detect(np.zeros((1, 1, 3), np.uint8))
