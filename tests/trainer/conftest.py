"""Fixtures shared by tests/trainer/stages and tests/trainer/commands: trained runs, each made
once per session.

`runs`: datasets, a parser run and a gan run that the stage tests start from.

The comparisons: `faceedit-train compare` trains whole parser -> gan -> joint chains; they are the slowest thing
the suite does. The compare tests check the tables these fixtures wrote, and the stage tests
check the runs inside them that they would otherwise train again (a BiSeNet parser, a joint
run with the parser frozen). Variants whose runs equal another comparison's (the masks
variant of masks-vs-boxes is joint-vs-frozen's frozen variant) start from copies of those runs,
which the comparison skips or resumes instead of retraining, as it would after an interruption.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tests.trainer.evaluation_fixtures import StubInception
from tests.trainer.fixtures import write_celebamask_hq, write_folders
from tests.trainer.stage_runs import make_runs

# Every run of every comparison: the tiny preset, two steps of two images, one seed.
COMPARE_BUDGET = ["--preset", "tiny", "--steps", "2", "--train-batch-size", "2", "--seeds", "1"]
COMPARE_FAST = ["--num-workers", "0", "--device", "cpu", "--limit", "4"]


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and a busy machine is not oversubscribed."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets, a 2-step parser run and a 2-step gan run on AffectNet."""
    with one_thread():
        return make_runs(tmp_path_factory.mktemp("stages"))


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
    """Copy finished runs of seed 0 (target name -> source name) into a comparison's runs
    folder. A copy under another name loses its done.json (its options differ), so the
    comparison resumes it, as after an interruption."""
    for target, name in names.items():
        copy = out / "runs" / "s0" / target
        shutil.copytree(source / "runs" / "s0" / name, copy)
        if target != name:
            (copy / "done.json").unlink()


@pytest.fixture(scope="session")
def joint_vs_frozen(
    compare_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`compare joint-vs-frozen` from scratch, judged by a classifier and a stand-in FID network."""
    from trainer.judges import loading

    root = tmp_path_factory.mktemp("joint-vs-frozen")
    weights = root / "pt_inception.pth"
    weights.write_bytes(b"stub")
    out = root / "jf"
    judges = ["--classifier", str(compare_data["classifier"]), "--fid-weights", str(weights)]
    with pytest.MonkeyPatch.context() as patch, one_thread():
        patch.setattr(loading, "load_fid_inception", lambda path, device: StubInception())
        torch.manual_seed(0)
        assert run_compare("joint-vs-frozen", out, compare_data, *judges) == 0
    return out


@pytest.fixture(scope="session")
def masks_vs_boxes(
    compare_data: dict[str, Path], joint_vs_frozen: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`compare masks-vs-boxes` without judges; the frozen (soft masks) variant's runs are
    joint-vs-frozen's, finished, so only the boxes variant trains."""
    out = tmp_path_factory.mktemp("masks-vs-boxes") / "mb"
    seed_runs(
        out, joint_vs_frozen, {"parser": "parser", "gan": "gan", "joint-frozen": "joint-frozen"}
    )
    with one_thread():
        torch.manual_seed(0)
        assert run_compare("masks-vs-boxes", out, compare_data) == 0
    return out


@pytest.fixture(scope="session")
def bisenet_vs_unet(
    compare_data: dict[str, Path], joint_vs_frozen: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`compare bisenet-vs-unet`; the tiny preset's parser is a U-Net, so that variant is
    joint-vs-frozen's joint again (resumed from copies)."""
    out = tmp_path_factory.mktemp("bisenet-vs-unet") / "bu"
    seed_runs(
        out,
        joint_vs_frozen,
        {"parser-unet": "parser", "gan-unet": "gan", "joint-unet": "joint-joint"},
    )
    with one_thread():
        torch.manual_seed(0)
        assert run_compare("bisenet-vs-unet", out, compare_data) == 0
    return out
