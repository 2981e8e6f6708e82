from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceedit.errors import InputError
from faceedit.media.images import encode_png, save_image, save_png


def rgb() -> np.ndarray:
    image = np.zeros((6, 8, 3), np.uint8)
    image[..., 0] = 200  # red in RGB: must land in OpenCV's third (BGR) channel
    image[2:4, 3:5] = (10, 120, 250)
    return image


def test_png_round_trips_rgb_and_grey_exactly(tmp_path: Path) -> None:
    image = rgb()
    path = save_png(tmp_path / "frame", image)  # .png is appended
    assert path == tmp_path / "frame.png"
    back = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, image)
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8)
    decoded = cv2.imdecode(np.frombuffer(encode_png(grey), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, grey)


def test_saved_files_have_ordinary_permissions_and_no_leftovers(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = save_image(tmp_path / "nested" / "out.jpg", rgb())
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert cv2.imread(str(path)) is not None
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.jpg"]


def test_bad_input_and_unknown_extensions_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"out\.xyz: OpenCV cannot encode \.xyz images"):
        save_image(tmp_path / "out.xyz", rgb())
    with pytest.raises(InputError, match=r"shape \(6, 8, 4\)"):
        save_png(tmp_path / "alpha.png", np.zeros((6, 8, 4), np.uint8))
    with pytest.raises(InputError, match="float32"):
        encode_png(np.zeros((6, 8), np.float32))
    assert not any(tmp_path.iterdir())
