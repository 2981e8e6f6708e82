"""Keypoint-box regions in training come from each face's own landmarks, through the loader;
the template is only the fallback for samples without any, and the count is kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.trainer.fixtures import AffectNetRow, synthetic_landmarks, write_affectnet
from trainer.config import apply_overrides, default_config
from trainer.stages.distributed import DistInfo
from trainer.stages.gan import GanStage, InitialWeights, face_landmarks, template_landmarks

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def test_face_landmarks_fill_only_the_samples_without_points() -> None:
    points = torch.rand(3, 5, 2) * 32
    points[1] = float("nan")
    filled, fallbacks = face_landmarks(points, 32)
    assert fallbacks == 1
    assert torch.equal(filled[0], points[0]) and torch.equal(filled[2], points[2])
    assert torch.equal(filled[1], template_landmarks(1, 32, torch.device("cpu"))[0])
    same, none = face_landmarks(points[[0, 2]], 32)
    assert none == 0 and torch.equal(same, points[[0, 2]])


def test_a_boxes_gan_stage_builds_boxes_from_each_faces_landmarks(tmp_path: Path) -> None:
    """Before, every face got the template's boxes (trainer/stages/gan.py); now the batch
    carries the faces' own points, which differ from face to face."""
    rows = []
    for i in range(4):
        marks = synthetic_landmarks((16, 12, 32, 32))
        marks[48:68] += (0, 2 * i)  # mouths at different heights
        rows.append(AffectNetRow(f"1/f{i}.jpg", expression=i, landmarks=marks))
    write_affectnet(tmp_path / "an", rows)
    config = apply_overrides(
        default_config("gan", "tiny"),
        [
            f"data.affectnet={tmp_path / 'an'}",
            "data.align=landmarks",
            "data.class_balanced=false",
            "model.region_source=boxes",
            "batch_size=4",
            "num_workers=0",
        ],
    )
    stage = GanStage.build(config, CPU, InitialWeights())
    batch = stage._next_batch()
    assert batch.landmarks is not None and batch.landmarks.shape == (4, 5, 2)
    template = template_landmarks(4, config.model.crop_size, torch.device("cpu"))
    assert not torch.allclose(batch.landmarks, template, atol=0.05)
    mouths = sorted(float(p[3:, 1].mean()) for p in batch.landmarks)
    assert np.ptp(mouths) > 0.5  # each face its own mouth
    assert stage.template_fallbacks == 0 and stage.box_samples == 4
    masks = stage.model.region_masks(batch.images, batch.landmarks).masks
    assert not torch.equal(masks[0], masks[1]) or not torch.equal(masks[0], masks[3])
