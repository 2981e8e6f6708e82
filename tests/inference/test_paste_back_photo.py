"""Paste-back at the photo's own resolution (issue 15, item 1): a 1024 px face edited through
128 and 256 px crops changes only what the model edits, bit for bit elsewhere."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from faceedit.faces.align import REGION_LEVEL, align, paste_back
from faceedit.faces.detect import Face
from faceedit.faces.frame_maps import masks_to_frame
from faceedit.inference.engine import EditEngine
from faceedit.inference.pipeline import FramePipeline
from faceedit.inference.request import EditRequest
from faceedit.media.bundled import is_installed
from faceedit.model.generator import ATTENTION_CHANNEL
from tests.factories import demo_at_crop, world_photo

pytestmark = pytest.mark.skipif(
    not is_installed("demo"), reason="the bundled demo model is missing"
)

HAPPY = {"happy": 1.0}


class _Known:
    """A detector that knows where the face is (the rendering's landmarks)."""

    def __init__(self, face: Face) -> None:
        self.face = face

    def detect(self, frame: np.ndarray) -> list[Face]:
        return [self.face]


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, Face]:
    return world_photo(1024)


def _pipeline(crop_size: int, face: Face, keep_every_pixel: bool = False) -> FramePipeline:
    loaded = demo_at_crop(crop_size)
    if keep_every_pixel:  # every editor attends to its input everywhere: A = 1
        assert loaded.generator is not None
        with torch.no_grad():
            for name, module in loaded.generator.named_modules():
                if name.endswith("heads"):
                    module.bias[ATTENTION_CHANNEL] += 1000.0
    return FramePipeline(EditEngine(loaded, device="cpu"), _Known(face))  # type: ignore[arg-type]


@pytest.mark.parametrize("crop_size", [128, 256])
def test_an_identity_edit_changes_no_pixel_of_a_1024_photo(
    photo: tuple[np.ndarray, Face], crop_size: int
) -> None:
    frame, face = photo
    alignment = align(frame, face, crop_size)
    # Pasting the unedited crop back (its picture moved 88 % of this photo's pixels).
    assert np.array_equal(paste_back(frame, alignment, alignment.crop), frame)
    # A model that keeps every input pixel: its fusion network still nudges the crop, but
    # where no editor edits nothing is pasted.
    pipeline = _pipeline(crop_size, face, keep_every_pixel=True)
    result = pipeline.process(frame, EditRequest(condition=HAPPY))
    edit = result.processed[0].edit
    assert edit is not None and edit.weight is not None and not edit.weight.any()
    assert np.array_equal(result.output, frame)


@pytest.mark.parametrize("crop_size", [128, 256])
def test_a_mouth_locked_edit_changes_nothing_outside_the_mouth(
    photo: tuple[np.ndarray, Face], crop_size: int
) -> None:
    frame, face = photo
    pipeline = _pipeline(crop_size, face)
    request = EditRequest(condition=HAPPY, editable_regions=("mouth",))
    result = pipeline.process(frame, request)
    processed = result.processed[0]
    assert processed.parsing is not None
    mouth = masks_to_frame(processed.alignment, processed.parsing.region_masks, frame.shape)[
        pipeline.engine.regions.index("mouth")
    ]
    footprint = cv2.dilate((mouth >= REGION_LEVEL).astype(np.uint8), np.ones((5, 5), np.uint8))
    changed = (result.output != frame).any(axis=2)
    assert changed.sum() > 200  # the mouth was edited
    assert not (changed & (footprint == 0)).any()


def test_an_edit_keeps_the_photos_own_detail(photo: tuple[np.ndarray, Face]) -> None:
    frame, face = photo
    result = _pipeline(128, face).process(frame, EditRequest(condition=HAPPY))
    changed = (result.output != frame).any(axis=2)
    assert 0.01 < changed.mean() < 0.5  # the model's edit, not the whole crop
    # Fine texture (the 1024 px rendering's noise and edges) survives under the edit: the
    # 128 px crop's picture would have replaced it with an 8x upscaled blur.
    grey_in = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey_out = cv2.cvtColor(result.output, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail_in = np.abs(cv2.Laplacian(grey_in, cv2.CV_32F))[changed].mean()
    detail_out = np.abs(cv2.Laplacian(grey_out, cv2.CV_32F))[changed].mean()
    assert detail_out > 0.8 * detail_in
