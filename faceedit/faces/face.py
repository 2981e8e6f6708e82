"""Faces in frames: MTCNN detection, 5-point similarity alignment and feathered paste-back.

Colour order: every array in faceedit's API is RGB. numpy arrays do not record their channel
order, so this is a contract, not a check: `faceedit.media.sources.read_image` and every frame source
return RGB, and every cv2 call in faceedit converts explicitly.

Landmark order (as MTCNN reports it, in image coordinates): left eye, right eye, nose, left
mouth corner, right mouth corner, where "left" is the one on the image's left side (the
subject's right eye in an unmirrored photo).

torch is imported lazily, inside the detector, so image conversion and alignment can be used
without paying for it (e.g. by frame sources).
"""

from __future__ import annotations

import functools
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

from faceedit.errors import ConfigError, FaceEditError, InputError

logger = logging.getLogger(__name__)

DeviceChoice = Literal["cpu", "cuda", "auto"]
NmsBackend = Literal["torchvision", "faceedit"]

MIN_IMAGE_SIDE: Final[int] = 16
LANDMARK_NAMES: Final[tuple[str, ...]] = (
    "left_eye",
    "right_eye",
    "nose",
    "mouth_left",
    "mouth_right",
)

# The ArcFace/insightface template for 112x112 recognition crops, in pixels. It crops tightly
# (no brows' top, no chin), which suits recognition but not editing: the parser and the
# generators must see the whole face.
_ARCFACE_112: Final[np.ndarray] = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
# Shrunk by 0.7 about its landmarks' centre, which then sits at (0.5, 0.53): eyes at 0.40 and
# mouth corners at 0.66 of the crop's height, eyes 0.22 of its width apart (as in CelebA's
# aligned crops). With usual proportions the hairline falls near 0.2 and the chin near 0.87,
# so a 128 crop shows hair, forehead, brows and the whole chin with the face centred
# (checked on the bundled sample, see tests/test_face.py).
_TEMPLATE_SHRINK: Final[float] = 0.7
_TEMPLATE_CENTRE: Final[tuple[float, float]] = (0.5, 0.53)


def _canonical_landmarks() -> np.ndarray:
    unit = _ARCFACE_112 / 112.0
    centre = unit.mean(axis=0)
    points = (unit - centre) * _TEMPLATE_SHRINK + np.asarray(_TEMPLATE_CENTRE)
    points.setflags(write=False)
    return points


# (5, 2) float64 landmark positions in a square crop, in unit coordinates: (0, 0) is the crop's
# top-left corner and (1, 1) its bottom-right corner (not pixel centres).
CANONICAL_LANDMARKS: Final[np.ndarray] = _canonical_landmarks()

# Paste-back feather, as fractions of the crop size: the mask is exactly 0 within MARGIN of the
# crop's border and rises to 1 over FEATHER with a smoothstep, with rounded corners.
_FEATHER_MARGIN: Final[float] = 0.02
_FEATHER_WIDTH: Final[float] = 0.12

_MTCNN_LOCK = threading.Lock()
_MTCNN_CLASS: type | None = None
# Which NMS MTCNN runs with; set by the first `_import_mtcnn()` (None until then).
NMS_BACKEND: NmsBackend | None = None
_STAND_IN_FLAG: Final[str] = "__faceedit_stand_in__"


# ---------------------------------------------------------------- images as arrays


def as_rgb_uint8(image: Any, *, source: str = "image") -> np.ndarray:
    """The image as a contiguous (H, W, 3) uint8 RGB array, or an InputError naming `source`.

    Accepted: grayscale (H, W) or (H, W, 1), gray + alpha (H, W, 2), RGB (H, W, 3) and RGBA
    (H, W, 4) in uint8, uint16 (divided by 257, rounded) or float in [0, 1] (times 255,
    rounded). Alpha is composited onto white, which is how image viewers show transparent
    images. An array that needs no conversion is returned as is (not copied).
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.dtype == np.bool_:
        raise InputError(
            f"{source}: a boolean array is a mask, not an image; "
            "convert it with .astype(np.uint8) * 255 if you meant black and white"
        )
    if image.ndim not in (2, 3):
        hint = " (a batch of images? pass them one at a time)" if image.ndim == 4 else ""
        raise InputError(
            f"{source}: expected an (H, W) or (H, W, C) image, got shape {image.shape}{hint}"
        )
    if image.size == 0:
        raise InputError(f"{source}: the image is empty (shape {image.shape})")
    height, width = image.shape[:2]
    if height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
        raise InputError(
            f"{source}: the image is only {width}x{height} pixels; faceedit needs at least "
            f"{MIN_IMAGE_SIDE} pixels on each side (and a face of about 40 pixels or more)"
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels > 4:
        raise InputError(
            f"{source}: {channels} channels; expected 1 (gray), 2 (gray + alpha), 3 (RGB) "
            "or 4 (RGBA)"
        )
    pixels = _to_uint8(image, source)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if channels in (2, 4):
        pixels = _composite_on_white(pixels)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def _to_uint8(image: np.ndarray, source: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise InputError(f"{source}: the float image contains NaN or infinite values")
        low, high = float(image.min()), float(image.max())
        if low < -1e-3 or high > 1 + 1e-3:
            raise InputError(
                f"{source}: float images must lie in [0, 1], this one spans "
                f"[{low:.3g}, {high:.3g}]; divide by 255 if it holds 0..255 values"
            )
        return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
    raise InputError(
        f"{source}: unsupported pixel type {image.dtype}; use uint8, uint16 or float in [0, 1] "
        "(for 0..255 integers, convert with .astype(np.uint8))"
    )


def _composite_on_white(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C+1) uint8 with alpha last -> (H, W, C) composited onto white."""
    colour = pixels[:, :, :-1].astype(np.uint16)
    alpha = pixels[:, :, -1:].astype(np.uint16)
    # c * a / 255 + 255 * (1 - a / 255), rounded, in integers.
    blended = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


# ---------------------------------------------------------------- detection


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
    score thresholds.
    """

    def __init__(
        self,
        device: DeviceChoice = "auto",
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    ) -> None:
        import torch  # lazily: see the module docstring

        if device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"FaceDetector.device: {device!r} is not 'cpu', 'cuda' or 'auto'")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "FaceDetector.device: 'cuda' was asked for but torch sees no GPU; "
                "use device='cpu' or 'auto'"
            )
        _check_min_face_size(min_face_size)
        if len(thresholds) != 3 or not all(0 < t < 1 for t in thresholds):
            raise ConfigError(
                f"FaceDetector.thresholds: need three values in (0, 1), got {thresholds!r}"
            )
        self.device: Literal["cpu", "cuda"] = device
        self.thresholds = tuple(float(t) for t in thresholds)
        mtcnn_class = _import_mtcnn()
        self._torch = torch
        self._mtcnn = mtcnn_class(
            min_face_size=min_face_size,
            thresholds=list(self.thresholds),
            keep_all=True,
            device=torch.device(device),
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
        """Faces in an RGB image, largest box first; [] when there is none."""
        rgb = as_rgb_uint8(image, source="frame")
        with self._torch.inference_mode():
            boxes, scores, points = self._mtcnn.detect(rgb, landmarks=True)
        return _faces_from(boxes, scores, points)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """`detect` for several images; images of equal size share one pyramid pass."""
        rgbs = [as_rgb_uint8(image, source=f"frame {i}") for i, image in enumerate(images)]
        results: list[list[Face]] = [[] for _ in rgbs]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, rgb in enumerate(rgbs):
            by_shape.setdefault(rgb.shape, []).append(i)
        for members in by_shape.values():
            stack = np.stack([rgbs[i] for i in members])  # (B, H, W, 3) uint8
            with self._torch.inference_mode():
                boxes, scores, points = self._mtcnn.detect(stack, landmarks=True)
            for slot, i in enumerate(members):
                results[i] = _faces_from(boxes[slot], scores[slot], points[slot])
        return results


def _check_min_face_size(pixels: object) -> None:
    if not isinstance(pixels, int) or isinstance(pixels, bool) or pixels < 12:
        raise ConfigError(
            f"FaceDetector.min_face_size: must be an integer >= 12 (MTCNN's smallest "
            f"window), got {pixels!r}"
        )


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


def nms_backend() -> NmsBackend:
    """Which NMS the detector runs with ("torchvision" or faceedit's own), importing MTCNN."""
    _import_mtcnn()
    assert NMS_BACKEND is not None
    return NMS_BACKEND


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
    modules = {
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


# ---------------------------------------------------------------- alignment


@dataclass(frozen=True, eq=False)
class Alignment:
    """A face warped to a square crop, with the transforms both ways.

    crop: (size, size, 3) uint8 RGB. matrix: (2, 3) float64, frame pixel -> crop pixel.
    inverse: (2, 3) float64, crop pixel -> frame pixel. Pixel centres are at integers.
    """

    crop: np.ndarray
    matrix: np.ndarray
    inverse: np.ndarray
    size: int

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) frame points -> crop points."""
        return _apply(self.matrix, points)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) crop points -> frame points."""
        return _apply(self.inverse, points)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]


def template_landmarks(size: int) -> np.ndarray:
    """(5, 2) CANONICAL_LANDMARKS in pixel coordinates of a size x size crop."""
    return CANONICAL_LANDMARKS * size - 0.5


def estimate_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (rotation, uniform scale, translation; no reflection)
    mapping source points onto target points, by Umeyama's closed form.

    Closed form, not cv2.estimateAffinePartial2D: that one uses RANSAC, whose randomness
    would make the crop of the same frame jitter.
    """
    src = np.asarray(source, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise InputError("face landmarks contain NaN or infinite values")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var < 1e-9:
        raise InputError("face landmarks are degenerate (all at one point); cannot align")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ np.diag(signs) @ vt
    scale = float((singular * signs).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align(image: np.ndarray, face: Face | np.ndarray, size: int = 128) -> Alignment:
    """Warp the face to a size x size crop whose landmarks sit on CANONICAL_LANDMARKS.

    `face` is a Face or its (5, 2) landmarks. Parts of the crop outside the frame are filled
    by reflection, so faces at the frame's edge are aligned, not refused.
    """
    if not isinstance(size, int) or size < MIN_IMAGE_SIDE:
        raise ConfigError(f"align: size must be an integer >= {MIN_IMAGE_SIDE}, got {size!r}")
    rgb = as_rgb_uint8(image, source="frame")
    landmarks = face.landmarks if isinstance(face, Face) else np.asarray(face, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise ValueError(f"align needs (5, 2) landmarks, got shape {landmarks.shape}")
    matrix = estimate_similarity(landmarks, template_landmarks(size))
    crop = _warp_to_crop(rgb, matrix, size)
    inverse = cv2.invertAffineTransform(matrix).astype(np.float64)
    return Alignment(crop=crop, matrix=matrix, inverse=inverse, size=size)


def _warp_to_crop(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Bilinear warp; when shrinking by 2x or more, area-average the face's region first,
    because bilinear sampling alone aliases (a 1080p face into a 128 crop)."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    factor = int(1.0 / scale) if scale > 0 else 1
    if factor < 2:
        return _warp(rgb, matrix, size)
    # The frame region the crop sees, plus a margin for interpolation, cut to whole blocks.
    corners = _apply(cv2.invertAffineTransform(matrix), _square_corners(0, size - 1))
    height, width = rgb.shape[:2]
    x0, y0 = (max(int(np.floor(v)) - 2 * factor, 0) for v in corners.min(axis=0))
    x1 = min(int(np.ceil(corners[:, 0].max())) + 2 * factor + 1, width)
    y1 = min(int(np.ceil(corners[:, 1].max())) + 2 * factor + 1, height)
    blocks_x, blocks_y = (x1 - x0) // factor, (y1 - y0) // factor
    if blocks_x < 2 or blocks_y < 2:  # the face is (almost) entirely outside the frame
        return _warp(rgb, matrix, size)
    region = rgb[y0 : y0 + blocks_y * factor, x0 : x0 + blocks_x * factor]
    small = cv2.resize(region, (blocks_x, blocks_y), interpolation=cv2.INTER_AREA)
    # small pixel u covers frame pixels x0 + factor * u ... + factor - 1: its centre is
    # x = factor * u + x0 + (factor - 1) / 2.
    offset = np.array([x0, y0], dtype=np.float64) + (factor - 1) / 2
    small_matrix = np.hstack(
        [matrix[:, :2] * factor, (matrix[:, :2] @ offset + matrix[:, 2])[:, None]]
    )
    return _warp(small, small_matrix, size)


def _warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(
        rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def _square_corners(low: float, high: float) -> np.ndarray:
    return np.array([[low, low], [high, low], [low, high], [high, high]], dtype=np.float64)


# ---------------------------------------------------------------- paste-back


@functools.lru_cache(maxsize=8)
def crop_feather(size: int) -> np.ndarray:
    """(size, size) float32 paste-back weights in crop space, read-only and cached per size.

    1 over a rounded square, falling to exactly 0 with a smoothstep (continuous slope, so no
    visible seam) over the outer 12% of the crop, and exactly 0 on its outer 2%. Analytic
    rather than eroded-and-blurred, so its support is exact and it costs nothing to build.
    """
    margin = _FEATHER_MARGIN * size
    feather = _FEATHER_WIDTH * size
    coords = np.arange(size, dtype=np.float64) + 0.5  # pixel centres in [0, size] units
    inner_low, inner_high = margin + feather, size - margin - feather
    # Distance from the inner square (where the weight is 1), per axis, then Euclidean.
    along = np.maximum(np.maximum(inner_low - coords, coords - inner_high), 0)
    distance = np.hypot(along[:, None], along[None, :])
    t = np.clip(1 - distance / feather, 0, 1)
    weights = (t * t * (3 - 2 * t)).astype(np.float32)
    weights.setflags(write=False)
    return weights


def _mask_roi(
    alignment: Alignment, frame_shape: tuple[int, ...], crop_mask: np.ndarray | None = None
) -> tuple[slice, slice, np.ndarray] | None:
    """The feather warped into the frame, restricted to its bounding rectangle."""
    size = alignment.size
    weights = crop_feather(size)
    if crop_mask is not None:
        crop_mask = np.asarray(crop_mask, dtype=np.float32)
        if crop_mask.shape != (size, size):
            raise ValueError(f"crop_mask must be ({size}, {size}), got {crop_mask.shape}")
        weights = weights * np.clip(crop_mask, 0, 1)
    # Non-zero weights lie inside the margin; one more pixel covers bilinear interpolation.
    edge = int(np.floor(_FEATHER_MARGIN * size)) - 1
    corners = alignment.to_frame(_square_corners(edge, size - 1 - edge))
    height, width = frame_shape[:2]
    x0 = max(int(np.floor(corners[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(corners[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(corners[:, 0].max())) + 2, width)
    y1 = min(int(np.ceil(corners[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    roi_matrix = _roi_matrix(alignment.matrix, x0, y0)
    mask = cv2.warpAffine(
        weights,
        roi_matrix,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return slice(y0, y1), slice(x0, x1), mask


def _roi_matrix(matrix: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """frame->crop matrix re-expressed for pixels of a region starting at (x0, y0)."""
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return shifted


def face_region_mask(
    alignment: Alignment, frame_shape: tuple[int, ...], crop_mask: np.ndarray | None = None
) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much of the pasted crop each frame pixel takes."""
    full = np.zeros(frame_shape[:2], dtype=np.float32)
    roi = _mask_roi(alignment, frame_shape, crop_mask)
    if roi is not None:
        rows, cols, mask = roi
        full[rows, cols] = mask
    return full


def paste_back(
    image: np.ndarray,
    alignment: Alignment,
    edited_crop: np.ndarray,
    crop_mask: np.ndarray | None = None,
) -> np.ndarray:
    """A new frame with the edited crop warped back and feather-blended in.

    Pixels where the mask is 0 are copied bit for bit; only the mask's bounding rectangle is
    computed. `crop_mask`, optional (size, size) weights in [0, 1] (e.g. the parsed face), is
    multiplied with the feather, so the blend still fades out smoothly at the crop's border.
    """
    frame = as_rgb_uint8(image, source="frame")
    size = alignment.size
    crop = as_rgb_uint8(edited_crop, source="edited crop")
    if crop.shape != (size, size, 3):
        raise InputError(
            f"edited crop: expected {size}x{size} like the alignment, got {crop.shape[1]}x"
            f"{crop.shape[0]}"
        )
    result = frame.copy()
    roi = _mask_roi(alignment, frame.shape, crop_mask)
    if roi is None:
        return result
    rows, cols, mask = roi
    roi_matrix = _roi_matrix(alignment.matrix, cols.start, rows.start)
    # Bicubic here: after align's bilinear warp, a second bilinear one blurs fine detail
    # visibly (2.2 grey levels mean error on the sample's face at 256 versus 1.4).
    warped = cv2.warpAffine(
        crop,
        roi_matrix,
        (mask.shape[1], mask.shape[0]),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    # One fused pass: mask * warped + (1 - mask) * frame; where mask == 0 this returns the
    # frame's value exactly (OpenCV divides by 1 + 1e-5, which rounds back).
    result[rows, cols] = cv2.blendLinear(warped, frame[rows, cols], mask, 1 - mask)
    return result
