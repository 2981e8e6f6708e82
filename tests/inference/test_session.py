"""faceedit.inference.session: the app's domain work, driven directly, without Qt.

(That importing it loads no Qt is tests/test_layers.py's job.)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceedit.errors import FaceEditError
from faceedit.faces.align import face_region_mask
from faceedit.inference import session as session_module
from faceedit.inference.request import EditRequest
from faceedit.inference.session import EditSession, SpeedOptions, load_ahead
from faceedit.media.bundled import astronaut_image_path

HAPPY = EditRequest(condition={"happy": 1.0})
# Frame i of the test video is filled with grey level GREYS[i]; MJPG keeps flat areas close.
GREYS = (20, 60, 100, 140, 180, 220)


@pytest.fixture(scope="module")
def checkpoint(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture(scope="module")
def session(checkpoint: Path) -> EditSession:
    session = EditSession(detect_every=1)
    report = session.load(str(checkpoint), "cpu")
    assert report.error is None and report.info is not None
    return session


@pytest.fixture()
def video(tmp_path: Path) -> Path:
    path = tmp_path / "greys.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for grey in GREYS:
        writer.write(np.full((48, 64, 3), grey, np.uint8))
    writer.release()
    return path


def test_loading_reports_what_the_model_can_do(session: EditSession, checkpoint: Path) -> None:
    info = session.model_info()
    assert info is not None
    assert info.path == str(checkpoint) == session.model_path
    assert info.capabilities.can_parse and info.capabilities.can_edit
    assert info.device == "cpu" and info.crop_size > 0 and info.regions
    assert "torch" in info.versions


def test_a_failing_load_keeps_the_model_in_use(checkpoint: Path, tmp_path: Path) -> None:
    session = EditSession()
    assert session.load(str(checkpoint), "cpu").info is not None
    engine = session.engine
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint at all")
    report = session.load(str(broken), "cpu")
    assert report.info is None and report.error and "broken.safetensors" in report.error
    assert session.engine is engine and session.model_path == str(checkpoint)


def test_a_model_loaded_ahead_is_taken_by_the_next_load_of_the_same_key(
    checkpoint: Path, tmp_path: Path
) -> None:
    assert load_ahead(str(checkpoint), "cpu", "float32")
    ahead = session_module._loaded_ahead[(str(checkpoint), "cpu", "float32")]
    other = EditSession()
    assert other.load(str(checkpoint), "cpu", "float32").info is not None
    assert other.engine is ahead  # taken, not loaded again
    assert not session_module._loaded_ahead
    # Another key does not take it (another precision needs other networks), and frees it.
    assert load_ahead(str(checkpoint), "cpu", "float32")
    unused = session_module._loaded_ahead[(str(checkpoint), "cpu", "float32")]
    assert other.load(str(checkpoint), "cpu", "auto").info is not None
    assert other.engine is not unused and not session_module._loaded_ahead
    # A file that does not load is left to the session's load, which reports it.
    assert not load_ahead(str(tmp_path / "missing.safetensors"), "cpu", "float32")
    assert EditSession().load(str(tmp_path / "missing.safetensors"), "cpu").error is not None


def test_a_failing_first_load_leaves_detection_working(tmp_path: Path) -> None:
    session = EditSession()
    report = session.load(str(tmp_path / "missing.safetensors"), "cpu")
    assert report.error and "missing.safetensors" in report.error
    assert report.info is not None and report.info.path is None
    assert not report.info.capabilities.can_edit
    session.open(str(astronaut_image_path()))
    update = session.compute(HAPPY)
    assert len(update.boxes) == 1 and not update.edited
    assert np.array_equal(update.output, update.input)


def test_nothing_to_compute_before_a_frame_is_a_clear_error() -> None:
    with pytest.raises(FaceEditError, match="nothing to edit"):
        EditSession().compute(HAPPY)


def test_a_request_on_the_sample_edits_only_the_face(session: EditSession) -> None:
    info = session.open(str(astronaut_image_path()))
    assert not info.is_live and info.frame_count == 1
    update = session.compute(HAPPY, request_id=7)
    assert update.request_id == 7 and update.edited and update.chosen == (0,)
    assert update.crop is not None and update.edited_crop is not None
    assert update.region_masks is not None and update.labels is not None
    mask = face_region_mask(update.alignments[0], update.input.shape)
    changed = np.abs(update.output.astype(int) - update.input.astype(int)).sum(axis=2) > 0
    assert changed.any() and not changed[mask == 0].any()
    if session.engine is not None and session.engine.capabilities.can_score:
        assert update.input_scores is not None and update.input_scores.shape == (8,)
        assert update.edited_scores is not None
    same = session.compute(EditRequest())
    assert not same.edited and np.array_equal(same.output, same.input)


def test_the_parse_comes_in_the_photos_own_coordinates(session: EditSession) -> None:
    session.open(str(astronaut_image_path()))
    update = session.compute(HAPPY, frame_parse=True)
    assert update._frame_parse is not None  # computed by compute, in the worker's thread
    parsed = update.frame_parse()
    assert parsed is update._frame_parse and update.frame_parse() is parsed  # computed once
    labels, masks = parsed
    height, width = update.input.shape[:2]
    assert labels.shape == (height, width) and masks.shape == (
        len(session.engine.regions),
        height,
        width,
    )
    # Inside the crop: the crop's classes, in place; outside it: background and empty masks.
    alignment = update.alignments[0]
    assert update.labels is not None
    centre = np.round(alignment.to_frame(np.array([[alignment.size / 2, alignment.size / 2]])))
    x, y = int(centre[0, 0]), int(centre[0, 1])
    crop_label = update.labels[alignment.size // 2, alignment.size // 2]
    assert labels[y - 2 : y + 3, x - 2 : x + 3].flatten().tolist().count(crop_label) > 0
    assert labels[0, 0] == 0 and masks[:, 0, 0].max() == 0


def test_seeking_a_video_shows_that_frame(session: EditSession, video: Path) -> None:
    info = session.open(str(video))
    assert info.frame_count == len(GREYS) and info.size == (64, 48)
    assert session.is_stream and session.frame_index == 0
    assert session.seek(3)
    assert session.frame_index == 3 and session.frame_key == (session.frame_key[0], 3)
    assert session.frame is not None and abs(float(session.frame.mean()) - GREYS[3]) < 8
    session.read_next()
    assert session.frame_index == 4 and abs(float(session.frame.mean()) - GREYS[4]) < 8
    session.read_next()
    assert session.at_end
    with pytest.raises(FaceEditError):
        session.read_next()
    with pytest.raises(FaceEditError):
        session.seek(len(GREYS) + 5)
    session.apply_speed(3, SpeedOptions(stream_min_face=40))
    assert session.pipeline is not None and session.pipeline.tracker.detect_every == 3
    session.close_source()
    assert session.source is None and not session.seek(0)


def test_recording_writes_each_computed_frame(
    session: EditSession, video: Path, tmp_path: Path
) -> None:
    session.open(str(video))
    target = tmp_path / "out.avi"
    session.start_recording(str(target))
    assert session.recording
    for _ in range(3):
        update = session.compute(EditRequest())
        assert session.record(update.output) is None
        session.read_next()
    wrong_size = np.zeros((10, 10, 3), np.uint8)
    ended = session.record(wrong_size)
    assert ended is not None and ended.frames == 3 and "size changed" in ended.error
    assert not session.recording and session.finish_recording() is None
    session.start_recording(str(target))
    session.record(session.compute(EditRequest()).output)
    finished = session.finish_recording()
    assert finished is not None and finished.frames == 1 and finished.error == ""
    assert target.stat().st_size > 0
