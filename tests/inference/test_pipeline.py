from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceedit.errors import ConfigError
from faceedit.faces.align import face_region_mask
from faceedit.faces.detect import FaceDetector
from faceedit.inference.engine import EditEngine
from faceedit.inference.pipeline import FramePipeline
from faceedit.inference.request import EditRequest
from faceedit.media.bundled import astronaut_image_path
from faceedit.media.sources import read_image


@pytest.fixture(scope="module")
def pipeline(tiny_model: Path) -> FramePipeline:
    engine = EditEngine.load(tiny_model, device="cpu")
    return FramePipeline(engine, FaceDetector(device="cpu"))


def test_edit_changes_only_the_face_region(pipeline: FramePipeline) -> None:
    frame = read_image(astronaut_image_path())
    result = pipeline.process(frame, EditRequest(condition={"happy": 1.0}), frame_key="sample")
    assert len(result.faces) == 1 and len(result.processed) == 1
    processed = result.processed[0]
    assert processed.parsing is not None and processed.edit is not None
    region = face_region_mask(processed.alignment, frame.shape)
    outside = region == 0
    assert np.array_equal(result.output[outside], frame[outside])
    assert not np.array_equal(result.output[region > 0.5], frame[region > 0.5])
    assert set(result.timings) >= {"detect", "align", "parse", "generate", "paste", "total"}


def test_identity_request_returns_the_input(pipeline: FramePipeline) -> None:
    frame = read_image(astronaut_image_path())
    result = pipeline.process(frame, EditRequest(), frame_key="sample")
    assert np.array_equal(result.output, frame) and result.output is not frame
    assert result.processed[0].edit is None


def test_still_frames_detect_once(pipeline: FramePipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = read_image(astronaut_image_path())
    pipeline.reset()
    calls = []
    original = pipeline.detector.detect
    monkeypatch.setattr(
        pipeline.detector, "detect", lambda image: calls.append(1) or original(image)
    )
    for weight in (0.2, 0.5, 0.9):
        result = pipeline.process(
            frame, EditRequest(condition={"sad": weight}), frame_key=("img", 1)
        )
    assert len(calls) == 1 and not result.detected
    assert result.processed[0].edit.timings["parse"] == 0.0, (
        "the parse is cached across slider moves"
    )


def test_no_face_leaves_the_frame_alone(pipeline: FramePipeline) -> None:
    blank = np.full((240, 320, 3), 90, np.uint8)
    result = pipeline.process(blank, EditRequest(condition={"happy": 1.0}))
    assert result.faces == [] and np.array_equal(result.output, blank)


def test_engine_without_model_still_detects(tmp_path: Path) -> None:
    plain = FramePipeline(EditEngine.empty(device="cpu"), FaceDetector(device="cpu"))
    frame = read_image(astronaut_image_path())
    result = plain.process(frame, EditRequest(condition={"happy": 1.0}))
    assert len(result.faces) == 1
    assert result.processed[0].alignment.crop.shape == (128, 128, 3)
    assert result.processed[0].parsing is None and np.array_equal(result.output, frame)


def shifted(frame: np.ndarray, dx: int) -> np.ndarray:
    """The frame moved dx pixels to the right (edge pixels repeated): a face moving in a video."""
    return (
        np.concatenate([np.repeat(frame[:, :1], dx, axis=1), frame[:, :-dx]], axis=1)
        if dx
        else frame
    )


@pytest.mark.parametrize("reparse", ["every_frame", "on_detection"])
def test_reparse_policy_on_tracked_frames(
    pipeline: FramePipeline, monkeypatch: pytest.MonkeyPatch, reparse: str
) -> None:
    frame = read_image(astronaut_image_path())
    video = FramePipeline(pipeline.engine, pipeline.detector, detect_every=3, reparse=reparse)
    parses = []
    original = video.engine.parse
    monkeypatch.setattr(video.engine, "parse", lambda crop: parses.append(1) or original(crop))
    results = [
        video.process(shifted(frame, dx), EditRequest(condition={"happy": 1.0}))
        for dx in (0, 2, 4, 6)
    ]
    assert [r.detected for r in results] == [True, False, False, True]
    if reparse == "every_frame":
        assert len(parses) == 4
        return
    assert len(parses) == 2, "parsed on the two detection frames only"
    first, tracked = results[0].processed[0], results[1].processed[0]
    assert tracked.parsing is first.parsing
    assert np.array_equal(tracked.edit.region_masks, first.parsing.region_masks)
    assert tracked.edit is not None and tracked.edit.timings["parse"] == 0.0  # masks reused
    assert not np.array_equal(results[1].output, results[0].output)


def test_unknown_reparse_policy_is_refused(pipeline: FramePipeline) -> None:
    with pytest.raises(ValueError, match="reparse must be one of"):
        FramePipeline(pipeline.engine, pipeline.detector, reparse="sometimes")  # type: ignore[arg-type]  # an invalid policy, on purpose


def _fail_if_called(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the face detector must not run on an aligned crop")


def test_aligned_frame_is_the_crop_and_needs_no_detector(
    pipeline: FramePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.factories import synthetic_faces

    size = pipeline.engine.crop_size
    frame = ((synthetic_faces(1, size, seed=3)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round()
    frame = frame.astype(np.uint8)
    monkeypatch.setattr(pipeline.detector, "detect", _fail_if_called)
    result = pipeline.process(frame, EditRequest(condition={"happy": 1.0}, aligned=True))
    (processed,) = result.processed
    # At the model's own size the template maps the frame onto itself: the identity.
    np.testing.assert_allclose(processed.alignment.matrix, np.eye(2, 3), atol=1e-4)
    assert np.array_equal(processed.alignment.crop, frame)
    assert not result.detected and result.output.shape == frame.shape
    assert not np.array_equal(result.output, frame)


def test_aligned_non_square_frame_uses_its_centred_square(pipeline: FramePipeline) -> None:
    bare = FramePipeline(pipeline.engine, None)  # aligned requests need no detector
    frame = np.random.default_rng(0).integers(0, 255, (96, 64, 3), dtype=np.uint8)
    result = bare.process(frame, EditRequest(condition={"sad": 1.0}, aligned=True))
    (processed,) = result.processed
    size = pipeline.engine.crop_size
    scale = size / 64
    matrix = processed.alignment.matrix
    np.testing.assert_allclose(matrix[:, :2], scale * np.eye(2), atol=1e-4)
    # The square's top-left corner (0, 16) lands on the crop's top-left corner.
    np.testing.assert_allclose(
        processed.alignment.to_crop([[-0.5, 15.5]]), [[-0.5, -0.5]], atol=1e-3
    )
    np.testing.assert_array_equal(result.faces[0].box, [0, 16, 64, 80])
    # Outside the square nothing changes; the detected path still needs a detector.
    assert np.array_equal(result.output[:16], frame[:16])
    assert np.array_equal(result.output[80:], frame[80:])
    with pytest.raises(ConfigError, match="no face detector"):
        bare.process(frame, EditRequest(condition={"sad": 1.0}))
