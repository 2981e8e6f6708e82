"""The editors the scorer measures: the product's path under a region lock, the patch, and
noise aimed at the checkpoint's own critics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceedit.faces.detect import FaceDetector
from faceedit.inference.engine import EditEngine
from faceedit.inference.pipeline import FramePipeline
from faceedit.weights import checkpoint
from tests.trainer.fixtures import face_photo
from tests.trainer.judges.real.conftest import fixed_face
from trainer.judges.controls import NOISE_LEVELS
from trainer.judges.real.editors import (
    CriticNoiseEditor,
    IdentityEditor,
    PatchEditor,
    ProductEditor,
)


@pytest.mark.slow
def test_the_product_editor_finds_the_face_and_keeps_its_lock(tiny_model: Path) -> None:
    engine = EditEngine.load(tiny_model, device="cpu")
    product = ProductEditor(FramePipeline(engine, FaceDetector(device="cpu")))
    photo = face_photo(0, side=160)
    faces = product.faces(photo, "photo")
    assert faces and product.faces(photo, "photo") is faces  # detected once per photo
    free = product(photo, faces[0], "happy", None, "photo")
    assert free.output.shape == photo.shape and free.footprint is None
    locked = product(photo, faces[0], "happy", ("mouth",), "photo")
    assert locked.footprint is not None and locked.crop_footprint is not None
    assert locked.footprint.shape == photo.shape[:2]
    moved = (locked.output != photo).any(axis=2)
    assert not (moved & ~locked.footprint).any()


def test_the_patch_paints_the_mouth_and_nothing_else() -> None:
    photo = face_photo(0)
    face = fixed_face(photo)[0]
    painted = PatchEditor()(photo, face, "happy").output
    moved = np.argwhere((painted != photo).any(axis=2))
    assert len(moved)
    corners = face.landmarks[3:5]
    assert moved[:, 1].min() >= corners[:, 0].min() - 0.2 * 25 - 1  # around the mouth only
    assert moved[:, 0].min() > face.landmarks[:2, 1].max()  # below the eyes
    assert (IdentityEditor()(photo, face, "happy").output == photo).all()


def test_critic_noise_raises_the_critics_probability_within_its_budget(tiny_model: Path) -> None:
    loaded = checkpoint.load(tiny_model, device="cpu")
    assert loaded.discriminator is not None
    editor = CriticNoiseEditor(
        loaded.unified(), loaded.discriminator, loaded.config.crop_size, steps=10
    )
    photo = face_photo(0)
    face = fixed_face(photo)[0]
    out = editor(photo, face, "surprised").output
    assert editor.last_critic_gain is not None
    before, after = editor.last_critic_gain
    assert after > before
    change = np.abs(out.astype(int) - photo.astype(int))
    assert change.max() > 0
    assert change.max() <= 2 * NOISE_LEVELS  # bicubic paste-back may overshoot a little
