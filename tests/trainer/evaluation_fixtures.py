"""What the evaluation tests share: a stand-in FID network and a small workspace (a tiny
checkpoint (the session's shared one), a tiny classifier, CelebAMask-HQ and expression-folder fixtures)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from tests.trainer.fixtures import write_celebamask_hq, write_folders
from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier, save_classifier
from trainer.judges.fid import FEATURE_DIM


class StubInception(nn.Module):
    """Tiny stand-in for the FID Inception: (B, 3, H, W) in [-1, 1] -> (B, 2048) features."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(3 * 4 * 4, FEATURE_DIM)

    def forward(self, x: Tensor) -> Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.relu(self.project(pooled))


def write_workspace(root: Path, checkpoint: Path) -> dict[str, Path]:
    """The tiny `checkpoint`, a tiny classifier, CelebAMask-HQ and expression-folder fixtures."""
    torch.manual_seed(0)
    paths = {
        "checkpoint": checkpoint,
        "classifier": save_classifier(
            root / "judge.safetensors",
            ExpressionClassifier(ClassifierConfig(base_channels=8, image_size=32)),
            {"held_out_accuracy": 0.5, "dataset": {"kind": "folders"}},
        ),
        "celeba": root / "celeba",
        "folders": root / "faces",
    }
    write_celebamask_hq(paths["celeba"], range(12))
    write_folders(
        paths["folders"], {"train": {"happy": 2}, "test": {"happy": 3, "sad": 3}}, size=32
    )
    return paths
