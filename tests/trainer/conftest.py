"""Trained runs shared by the trainer's tests: each comparison is trained once per session.

`faceedit-train compare` trains whole parser -> gan -> joint chains; they are the slowest thing
the suite does. The compare tests check the tables these fixtures wrote, and the stage tests
check the runs inside them that they would otherwise train again (a BiSeNet parser, a joint
run with the parser frozen). Variants whose runs equal another comparison's (the masks
variant of masks-vs-boxes is joint-vs-frozen's joint variant) start from copies of those runs,
which the comparison resumes instead of retraining, as it would after an interruption.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from tests.trainer.fixtures import write_celebamask_hq, write_folders
from trainer.judges.fid import FEATURE_DIM

# Every run of every comparison: the tiny preset, two steps of two images, one seed.
COMPARE_BUDGET = ["--preset", "tiny", "--steps", "2", "--batch-size", "2", "--seed", "3"]
COMPARE_FAST = ["--num-workers", "0", "--device", "cpu", "--limit", "4"]


class StubInception(nn.Module):
    """(B, 3, H, W) -> (B, 2048) in place of the 24M-parameter FID Inception."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(3 * 4 * 4, FEATURE_DIM)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.project(nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)))


@pytest.fixture(scope="session")
def compare_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CelebAMask-HQ, an expression-folder dataset and an untrained judge classifier."""
    from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier, save_classifier

    root = tmp_path_factory.mktemp("compare-data")
    write_celebamask_hq(root / "celeba", range(12))
    write_folders(
        root / "faces",
        {"train": {"happy": 3, "sad": 3}, "test": {"happy": 2, "sad": 2}},
        size=32,
    )
    torch.manual_seed(0)
    judge = ExpressionClassifier(ClassifierConfig(base_channels=8, image_size=32))
    save_classifier(root / "judge.safetensors", judge, {"held_out_accuracy": 0.5})
    return {
        "celeba": root / "celeba",
        "faces": root / "faces",
        "classifier": root / "judge.safetensors",
    }


def compare_data_flags(data: Mapping[str, Path]) -> list[str]:
    return ["--celebamask-hq", str(data["celeba"]), "--folders", str(data["faces"])]


def run_compare(experiment: str, out: Path, data: Mapping[str, Path], *extra: str) -> int:
    from trainer.commands.cli import main

    command = ["compare", experiment, "--out", str(out), *compare_data_flags(data), *extra]
    return main([*command, *COMPARE_BUDGET, *COMPARE_FAST])


def seed_runs(out: Path, source: Path, names: Mapping[str, str]) -> None:
    """Copy finished runs (target name -> source name) into a comparison's runs folder."""
    for target, name in names.items():
        shutil.copytree(source / "runs" / name, out / "runs" / target)


@pytest.fixture(scope="session")
def joint_vs_frozen(
    compare_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`compare joint-vs-frozen` from scratch, judged by a classifier and a stand-in FID network."""
    from trainer.commands import evaluate as evaluate_command

    root = tmp_path_factory.mktemp("joint-vs-frozen")
    weights = root / "pt_inception.pth"
    weights.write_bytes(b"stub")
    out = root / "jf"
    judges = ["--classifier", str(compare_data["classifier"]), "--fid-weights", str(weights)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_command, "load_fid_inception", lambda path, device: StubInception())
        torch.manual_seed(0)
        assert run_compare("joint-vs-frozen", out, compare_data, *judges) == 0
    return out


@pytest.fixture(scope="session")
def masks_vs_boxes(
    compare_data: dict[str, Path], joint_vs_frozen: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`compare masks-vs-boxes` without judges; the masks variant is joint-vs-frozen's joint."""
    out = tmp_path_factory.mktemp("masks-vs-boxes") / "mb"
    seed_runs(
        out, joint_vs_frozen, {"parser": "parser", "gan-masks": "gan", "joint-masks": "joint-joint"}
    )
    torch.manual_seed(0)
    assert run_compare("masks-vs-boxes", out, compare_data) == 0
    return out


@pytest.fixture(scope="session")
def bisenet_vs_unet(
    compare_data: dict[str, Path], joint_vs_frozen: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`compare bisenet-vs-unet`; the tiny preset's parser is a U-Net, so that variant is
    joint-vs-frozen's joint again."""
    out = tmp_path_factory.mktemp("bisenet-vs-unet") / "bu"
    seed_runs(
        out,
        joint_vs_frozen,
        {"parser-unet": "parser", "gan-unet": "gan", "joint-unet": "joint-joint"},
    )
    torch.manual_seed(0)
    assert run_compare("bisenet-vs-unet", out, compare_data) == 0
    return out
