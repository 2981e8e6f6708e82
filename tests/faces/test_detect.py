"""faceedit.faces.detect: MTCNN on the sample, the detector's settings, the NMS import."""

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
from faceedit.faces import detect as detect_module
from faceedit.faces.detect import Face, FaceDetector
from faceedit.media.bundled import astronaut_image_path
from faceedit.media.sources import read_image

ROOT = Path(__file__).resolve().parents[2]


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
        sample_face.score = 0.0  # type: ignore[misc]  # frozen: assigning must raise


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
    detect_module._import_mtcnn()
    assert detect_module.NMS_BACKEND in ("torchvision", "faceedit")
    detect_face = sys.modules["facenet_pytorch.models.utils.detect_face"]
    if detect_module.NMS_BACKEND == "faceedit":
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
    assert detect_module._torchvision_usable() is False
    assert torchvision_modules() == []


@pytest.mark.slow
def test_a_working_torchvision_is_used_when_it_imports(tmp_path: Path) -> None:
    # A fresh interpreter, where torchvision imports fine: MTCNN must use it, not the stand-ins.
    _fake_torchvision(tmp_path, "from . import ops, transforms\n")
    script = textwrap.dedent(
        """
        import sys
        from faceedit.faces import detect
        detect._import_mtcnn()
        detect_face = sys.modules["facenet_pytorch.models.utils.detect_face"]
        real = sys.modules["torchvision.ops.boxes"]
        assert not getattr(real, "__faceedit_stand_in__", False)
        assert detect_face.batched_nms is real.batched_nms
        assert detect_face.F is sys.modules["torchvision.transforms.functional"]
        print(detect.NMS_BACKEND)
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


def tight_photo(
    sample: np.ndarray, face: Face, above: float, below: float, trim: float
) -> tuple[np.ndarray, np.ndarray]:
    """The sample face cut from `above` eye-to-mouth spans above the eyes to `below` under the
    mouth, its sides `trim` of the box's width inside the box, at 160 px wide (as photo
    collections of faces crop them), and the (2, 3) matrix mapping the sample's pixels into it."""
    x1, _, x2, _ = face.box
    eyes_y, mouth_y = face.landmarks[:2, 1].mean(), face.landmarks[3:, 1].mean()
    span = mouth_y - eyes_y
    top, bottom = int(eyes_y - above * span), int(mouth_y + below * span)
    left, right = int(x1 + trim * (x2 - x1)), int(x2 - trim * (x2 - x1))
    scale = 160 / (right - left)
    crop = sample[top:bottom, left:right]
    photo = cv2.resize(crop, (160, round(crop.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    # pixel centres: x' + 0.5 = scale * (x - left + 0.5)
    offset = (scale * (0.5 - left) - 0.5, scale * (0.5 - top) - 0.5)
    return photo, np.array([[scale, 0, offset[0]], [0, scale, offset[1]]])


def landmark_error(found: list[Face], expected: np.ndarray) -> float:
    """The largest distance of the first face's points from `expected`, in eye distances."""
    if not found:
        return float("inf")
    eye_distance = float(np.linalg.norm(expected[1] - expected[0]))
    return float(np.linalg.norm(found[0].landmarks - expected, axis=1).max()) / eye_distance


@pytest.mark.parametrize(
    ("above", "below", "trim", "alone"),
    [
        (0.4, 0.9, 0.1, "missed"),  # from just above the eyes, cheeks trimmed
        (0.6, 1.2, 0.0, "off"),  # from the brows; found, but its points far off
    ],
)
def test_a_face_that_fills_the_photo_is_found_in_a_grey_frame(
    detector: FaceDetector,
    sample: np.ndarray,
    sample_face: Face,
    above: float,
    below: float,
    trim: float,
    alone: str,
) -> None:
    photo, matrix = tight_photo(sample, sample_face, above, below, trim)
    expected = sample_face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    unframed = FaceDetector(device="cpu", border_pad=0.0).detect(photo)
    if alone == "missed":
        assert unframed == []
    else:
        assert len(unframed) == 1 and landmark_error(unframed, expected) > 0.3
    faces = detector.detect(photo)
    assert len(faces) == 1 and landmark_error(faces, expected) < 0.1
    x1, y1, x2, y2 = faces[0].box  # in the photo's coordinates, reaching past its border
    assert x1 < 0 or y1 < 0 or x2 > photo.shape[1] or y2 > photo.shape[0]
    batch = detector.detect_batch([photo, photo])
    assert len(batch[1]) == 1 and landmark_error(batch[1], expected) < 0.1


def test_detector_configuration_is_validated() -> None:
    from faceedit.errors import ConfigError

    with pytest.raises(ConfigError, match="device"):
        FaceDetector(device="tpu")
    with pytest.raises(ConfigError, match="min_face_size"):
        FaceDetector(device="cpu", min_face_size=5)
    with pytest.raises(ConfigError, match="thresholds"):
        FaceDetector(device="cpu", thresholds=(0.6, 0.7, 1.5))
    with pytest.raises(ConfigError, match="border_pad"):
        FaceDetector(device="cpu", border_pad=-0.1)


def test_smallest_face_can_change_between_sources() -> None:
    """A still photo searches down to 20 px; a video can skip small faces (cheaper pyramid)."""
    from faceedit.errors import ConfigError

    small = cv2.resize(read_image(astronaut_image_path()), (96, 96), interpolation=cv2.INTER_AREA)
    frame = np.full((240, 320, 3), 128, np.uint8)
    frame[72:168, 112:208] = small  # a face about 70 px wide
    detector = FaceDetector(device="cpu", min_face_size=20)
    assert any(face.box[2] - face.box[0] > 50 for face in detector.detect(frame))
    detector.min_face_size = 160
    assert detector.min_face_size == 160 and detector.detect(frame) == []
    with pytest.raises(ConfigError, match="min_face_size"):
        detector.min_face_size = 8


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


def test_detector_accepts_the_converted_forms(
    detector: FaceDetector, small_sample: np.ndarray
) -> None:
    gray = cv2.cvtColor(small_sample, cv2.COLOR_RGB2GRAY)
    assert len(detector.detect(gray)) == 1
    assert len(detector.detect(small_sample.astype(np.float32) / 255)) == 1
    with pytest.raises(InputError):
        detector.detect(np.zeros((1, 1, 3), np.uint8))
