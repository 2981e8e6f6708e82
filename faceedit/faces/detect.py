"""Face detection: MTCNN (facenet-pytorch) behind a numpy-in, Face-out API.

Landmark order (as MTCNN reports it, in image coordinates): left eye, right eye, nose, left
mouth corner, right mouth corner, where "left" is the one on the image's left side (the
subject's right eye in an unmirrored photo).

Faces that fill the photo or touch its border (tight brow-to-chin crops, as in photo
collections of faces) are missed by MTCNN on the photo as it is, or found with their five points
far off (half an eye distance and more). When no face is found, or a face's box touches the
photo's border, the search runs once more on the photo inside a grey frame (BORDER_PAD), scaled
back to the photo's size so that it costs what the first search cost; its faces are moved back
into the photo's coordinates (where their boxes may reach past its border) and replace the
faces at the border they overlap. Faces inside the photo are found as before, at the same cost.

torch is imported lazily, inside the detector, so importing this module (for `Face`) costs
nothing. facenet-pytorch needs torchvision at import time; where torchvision does not work,
`_import_mtcnn` lends it stand-ins that carry faceedit's own NMS (faceedit/faces/nms.py).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import cv2
import numpy as np

from faceedit.device import DEVICES, DeviceChoice, resolve_device
from faceedit.errors import ConfigError, FaceEditError
from faceedit.faces.image import as_rgb_uint8

logger = logging.getLogger(__name__)

NmsBackend = Literal["torchvision", "faceedit"]

LANDMARK_NAMES: Final[tuple[str, ...]] = (
    "left_eye",
    "right_eye",
    "nose",
    "mouth_left",
    "mouth_right",
)

_MTCNN_LOCK = threading.Lock()
_MTCNN_CLASS: type | None = None
# Which NMS MTCNN runs with; set by the first `_import_mtcnn()` (None until then).
NMS_BACKEND: NmsBackend | None = None
_STAND_IN_FLAG: Final[str] = "__faceedit_stand_in__"
# The frame put around a photo with no face or a face at its border, as a share of its longer
# side on each side, and its grey. On tight crops of the sample face (tests/faces) MTCNN's five
# points were off by up to 0.9 eye distances without a frame, 0.5 with a 10 % one, 0.06 with
# 50 % (scaled back); on facial_expressions' 13,500 labelled tight photos the detector finds a
# face in 13,459 with it, 13,415 without (docs/real-faces.md, "Finding tight faces").
BORDER_PAD: Final[float] = 0.5
BORDER_GREY: Final[int] = 127
# A framed face replaces a face at the border when their boxes overlap at least this much.
_SAME_FACE_IOU: Final[float] = 0.3


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face. Arrays are float32, read-only, in the frame's pixel coordinates.

    box: (4,) x1, y1, x2, y2. landmarks: (5, 2) (x, y) in LANDMARK_NAMES order: left eye, right
    eye, nose, left mouth corner, right mouth corner, "left" meaning the image's left side.
    (eq is off: comparing numpy arrays with == does not give one truth value.)
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        box = np.array(self.box, dtype=np.float32)
        landmarks = np.array(self.landmarks, dtype=np.float32)
        if box.shape != (4,) or landmarks.shape != (5, 2):
            raise ValueError(
                f"a Face needs a (4,) box and (5, 2) landmarks, got {box.shape} and "
                f"{landmarks.shape}"
            )
        box.setflags(write=False)
        landmarks.setflags(write=False)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "landmarks", landmarks)
        object.__setattr__(self, "score", float(self.score))

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))


class FaceDetector:
    """MTCNN (facenet-pytorch's weights, shipped in its wheel) behind a numpy-in, Face-out API.

    device: "auto" picks CUDA when torch sees a GPU. min_face_size: the smallest face, in
    pixels, the image pyramid looks for (smaller is slower). thresholds: the three stages'
    score thresholds. border_pad: the grey frame (share of the longer side) a photo is searched
    in again when it has no face or one at its border (see the module's docstring); 0 turns
    that second search off.
    """

    def __init__(
        self,
        device: DeviceChoice | str = "auto",  # checked below: a torch.device.type fits too
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        border_pad: float = BORDER_PAD,
    ) -> None:
        import torch  # lazily: see the module docstring

        if device not in DEVICES:
            raise ConfigError(f"FaceDetector.device: {device!r} is not 'auto', 'cpu' or 'cuda'")
        try:
            resolved = resolve_device(device)
        except ConfigError as error:
            raise ConfigError(f"FaceDetector.device: {error}") from None
        _check_min_face_size(min_face_size)
        if len(thresholds) != 3 or not all(0 < t < 1 for t in thresholds):
            raise ConfigError(
                f"FaceDetector.thresholds: need three values in (0, 1), got {thresholds!r}"
            )
        if not 0.0 <= border_pad <= 1.0:
            raise ConfigError(f"FaceDetector.border_pad: must be in [0, 1], got {border_pad!r}")
        self.device: Literal["cpu", "cuda"] = "cuda" if resolved.type == "cuda" else "cpu"
        self.thresholds = tuple(float(t) for t in thresholds)
        self.border_pad = float(border_pad)
        mtcnn_class = _import_mtcnn()
        self._torch = torch
        self._mtcnn = mtcnn_class(
            min_face_size=min_face_size,
            thresholds=list(self.thresholds),
            keep_all=True,
            device=resolved,
        ).eval()

    @property
    def min_face_size(self) -> int:
        """The smallest face searched for, in pixels: the pyramid's first scale follows from it,
        so raising it from 20 to 60 makes a 640x480 frame about 2.4x faster to search."""
        return int(self._mtcnn.min_face_size)

    @min_face_size.setter
    def min_face_size(self, pixels: int) -> None:
        _check_min_face_size(pixels)
        self._mtcnn.min_face_size = pixels  # read on every call by facenet-pytorch's detect

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB image, largest box first; [] when there is none (also after the
        search in a frame, see `border_pad`)."""
        rgb = as_rgb_uint8(image, source="frame")
        return self._reframed(rgb, self._detect_rgb(rgb))

    def _reframed(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """`faces` of `rgb`, with those at its border (all, when there are none) replaced by
        what the search in a frame finds there."""
        shape = rgb.shape
        if self.border_pad <= 0 or (faces and not any(_at_border(f, shape) for f in faces)):
            return faces
        framed = self._detect_framed(rgb)
        if not faces:
            return framed
        kept = []
        for face in faces:
            overlaps = (
                [(_iou(face.box, f.box), f) for f in framed] if _at_border(face, shape) else []
            )
            best = max(overlaps, key=lambda pair: pair[0], default=(0.0, face))
            kept.append(best[1] if best[0] >= _SAME_FACE_IOU else face)
        return sorted(kept, key=lambda face: -face.area)

    def _detect_rgb(self, rgb: np.ndarray) -> list[Face]:
        if min(rgb.shape[:2]) < self.min_face_size:
            return []  # no face that large fits; MTCNN would fail on an empty image pyramid
        with self._torch.inference_mode():
            boxes, scores, points = self._mtcnn.detect(rgb, landmarks=True)
        return _faces_from(boxes, scores, points)

    def _detect_framed(self, rgb: np.ndarray) -> list[Face]:
        """Faces of `rgb` searched inside a grey frame scaled back to `rgb`'s longer side, in
        `rgb`'s coordinates."""
        pad = round(self.border_pad * max(rgb.shape[:2]))
        if pad <= 0:
            return []
        framed = cv2.copyMakeBorder(
            rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(BORDER_GREY,) * 3
        )
        scale = max(rgb.shape[:2]) / max(framed.shape[:2])
        size = (round(framed.shape[1] * scale), round(framed.shape[0] * scale))
        small = cv2.resize(framed, size, interpolation=cv2.INTER_AREA)
        # pixel centres: x_small + 0.5 = scale * (x_framed + 0.5), x_framed = x + pad
        return [
            _moved(face, 1.0 / scale, 0.5 / scale - 0.5 - pad) for face in self._detect_rgb(small)
        ]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """`detect` for several images; images of equal size share one pyramid pass."""
        rgbs = [as_rgb_uint8(image, source=f"frame {i}") for i, image in enumerate(images)]
        results: list[list[Face]] = [[] for _ in rgbs]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, rgb in enumerate(rgbs):
            by_shape.setdefault(rgb.shape, []).append(i)
        for shape, members in by_shape.items():
            if min(shape[:2]) < self.min_face_size:
                continue  # no face that large fits (see detect)
            stack = np.stack([rgbs[i] for i in members])  # (B, H, W, 3) uint8
            with self._torch.inference_mode():
                boxes, scores, points = self._mtcnn.detect(stack, landmarks=True)
            for slot, i in enumerate(members):
                results[i] = _faces_from(boxes[slot], scores[slot], points[slot])
        # The search in a frame (no face, or one at the border), one image at a time.
        return [self._reframed(rgb, faces) for rgb, faces in zip(rgbs, results, strict=True)]


def _check_min_face_size(pixels: object) -> None:
    if not isinstance(pixels, int) or isinstance(pixels, bool) or pixels < 12:
        raise ConfigError(
            f"FaceDetector.min_face_size: must be an integer >= 12 (MTCNN's smallest "
            f"window), got {pixels!r}"
        )


def _moved(face: Face, scale: float, offset: float) -> Face:
    """The same face with its box and landmarks scaled by `scale`, then shifted by `offset`
    pixels on both axes."""
    return Face(
        box=face.box * scale + offset, score=face.score, landmarks=face.landmarks * scale + offset
    )


def _at_border(face: Face, shape: tuple[int, ...]) -> bool:
    """Whether the face's box reaches the image's border (or past it)."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    return x1 < 1 or y1 < 1 or x2 > shape[1] - 1 or y2 > shape[0] - 1


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    height = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    inter = width * height
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def _faces_from(boxes: Any, scores: Any, points: Any) -> list[Face]:
    """MTCNN's per-image output (object arrays under numpy 2, None without faces) -> Faces."""
    if boxes is None or len(boxes) == 0:
        return []
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    points = np.asarray(points, dtype=np.float32).reshape(-1, 5, 2)
    faces = [
        Face(box=b, score=float(s), landmarks=p)
        for b, s, p in zip(boxes, scores, points, strict=True)
    ]
    return sorted(faces, key=lambda face: -face.area)


# ---------------------------------------------------------------- MTCNN import


# ---------------------------------------------------------------- MTCNN import


def _import_mtcnn() -> type:
    """facenet-pytorch's MTCNN class, importable with or without a working torchvision.

    facenet-pytorch imports `torchvision.ops.boxes.batched_nms` and
    `torchvision.transforms.functional` at import time. A working torchvision (a CUDA
    machine) is used as is. Otherwise (absent, or a CUDA build on CPU torch, which fails
    with "operator torchvision::nms does not exist") minimal stand-in modules that carry
    faceedit's own NMS are placed in sys.modules for the duration of the import only, so
    nothing else ever sees a fake torchvision.
    """
    global _MTCNN_CLASS, NMS_BACKEND
    with _MTCNN_LOCK:
        if _MTCNN_CLASS is not None:
            return _MTCNN_CLASS
        if _torchvision_usable():
            package = _import_facenet()
        else:
            stand_ins = _torchvision_stand_ins()
            sys.modules.update(stand_ins)
            try:
                package = _import_facenet()
            finally:
                for name, module in stand_ins.items():
                    if sys.modules.get(name) is module:
                        del sys.modules[name]
        from faceedit.faces import nms as own_nms

        detect_face = sys.modules["facenet_pytorch.models.utils.detect_face"]
        uses_own = getattr(detect_face, "batched_nms", None) is own_nms.batched_nms
        NMS_BACKEND = "faceedit" if uses_own else "torchvision"
        logger.info("face detection: MTCNN with %s NMS", NMS_BACKEND)
        _MTCNN_CLASS = package.MTCNN
        return _MTCNN_CLASS


def _torchvision_usable() -> bool:
    """Whether the real torchvision.ops imports; a failed attempt leaves no torchvision.* behind."""
    try:
        importlib.import_module("torchvision.ops")
    except Exception as error:  # ImportError, RuntimeError (missing operators), OSError (CUDA libs)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        logger.debug("torchvision is not usable (%s: %s)", type(error).__name__, error)
        return False
    return True


def _import_facenet() -> types.ModuleType:
    try:
        return importlib.import_module("facenet_pytorch")
    except ImportError as error:
        raise FaceEditError(
            f"cannot import facenet-pytorch ({error}); install it with "
            "`pip install facenet-pytorch==2.5.3 --no-deps` (scripts/setup.sh does this)"
        ) from error


def _torchvision_stand_ins() -> dict[str, types.ModuleType]:
    """The few torchvision names facenet-pytorch imports, backed by faceedit code."""
    from faceedit.faces import nms as own_nms

    # Any: the stand-ins get their attributes assigned below, which ModuleType does not declare.
    modules: dict[str, Any] = {
        name: types.ModuleType(name)
        for name in (
            "torchvision",
            "torchvision.ops",
            "torchvision.ops.boxes",
            "torchvision.transforms",
            "torchvision.transforms.functional",
        )
    }
    for module in modules.values():
        module.__path__ = []  # a package, so submodule imports resolve from sys.modules
        setattr(module, _STAND_IN_FLAG, True)
    boxes = modules["torchvision.ops.boxes"]
    boxes.nms = own_nms.nms
    boxes.batched_nms = own_nms.batched_nms
    ops = modules["torchvision.ops"]
    ops.boxes, ops.nms, ops.batched_nms = boxes, own_nms.nms, own_nms.batched_nms
    functional = modules["torchvision.transforms.functional"]
    functional.to_tensor = _to_tensor
    modules["torchvision.transforms"].functional = functional
    modules["torchvision"].ops = ops
    modules["torchvision"].transforms = modules["torchvision.transforms"]
    return modules


def _to_tensor(picture: Any) -> Any:
    """torchvision's to_tensor for arrays and PIL images: (H, W, C) -> (C, H, W); uint8 / 255."""
    import torch

    array = np.asarray(picture)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if tensor.dtype == torch.uint8:
        return tensor.float().div(255)
    return tensor
