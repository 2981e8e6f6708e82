"""`faceedit-train eval` and the evaluation functions, on fixture datasets and tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from faceedit.inference.engine import EditEngine
from faceedit.model.parsing import ParserOutput
from faceedit.vocab.labels import CLASS_INDEX, CLASS_NAMES, palette
from tests.trainer.fixtures import write_celebamask_hq, write_folders
from trainer.commands.cli import main as train_main
from trainer.data import CelebAMaskHQ, build_expression_dataset
from trainer.judges import evaluation
from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier, save_classifier
from trainer.judges.evaluation import (
    SUMMARY_METRICS,
    evaluate_editing,
    evaluate_parser,
    markdown_table,
    spread_indices,
)
from trainer.judges.fid import FEATURE_DIM


class PaletteParser(nn.Module):
    """Reads the fixture's painted label colours back: a near-perfect parser without training."""

    def __init__(self) -> None:
        super().__init__()
        colours = torch.from_numpy(palette()).float() / 127.5 - 1.0  # (19, 3) in [-1, 1]
        self.register_buffer("colours", colours)

    def forward(self, x: Tensor) -> ParserOutput:
        distance = ((x[:, None] - self.colours[None, :, :, None, None]) ** 2).sum(2)
        return ParserOutput(-distance * 50)  # (B, 19, H, W)


class StubInception(nn.Module):
    """Tiny stand-in for the FID Inception: (B, 3, H, W) in [-1, 1] -> (B, 2048) features."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(3 * 4 * 4, FEATURE_DIM)

    def forward(self, x: Tensor) -> Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.relu(self.project(pooled))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Path]:
    """A tiny checkpoint, a tiny classifier, CelebAMask-HQ and expression-folder fixtures."""
    root = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    paths = {
        "checkpoint": tiny_model,
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


def test_spread_indices_cover_the_whole_list() -> None:
    assert spread_indices(5, None) == [0, 1, 2, 3, 4]
    assert spread_indices(100, 3) == [0, 50, 99]
    assert spread_indices(3, 10) == [0, 1, 2]
    with pytest.raises(ValueError, match="positive"):
        spread_indices(3, 0)


def test_markdown_table_pads_columns() -> None:
    text = markdown_table(["variant", "mIoU"], [["joint", "0.5000"], ["frozen", "n/a"]])
    lines = text.splitlines()
    assert lines[0] == "| variant | mIoU   |"
    assert lines[1] == "|---------|--------|"
    assert lines[3] == "| frozen  | n/a    |"


def test_parser_scores_a_near_perfect_parser_and_excludes_absent_classes(
    workspace: dict[str, Path],
) -> None:
    dataset = CelebAMaskHQ(workspace["celeba"], "train", size=32)
    result = evaluate_parser(PaletteParser(), dataset, batch_size=4)
    assert result.images == len(dataset)
    assert result.matrix.sum() == len(dataset) * 32 * 32
    scores = result.scores
    assert scores.miou is not None and scores.miou > 0.85
    for absent in ("hat", "eye_g", "l_ear", "r_ear", "ear_r", "neck_l"):
        assert scores.iou[CLASS_INDEX[absent]] is None  # in neither map: n/a, not 0 or 1
    assert scores.iou[CLASS_INDEX["skin"]] > 0.9
    limited = evaluate_parser(PaletteParser(), dataset, limit=2)
    assert limited.images == 2 and limited.matrix.sum() == 2 * 32 * 32


def test_editing_scores_every_target_with_classifier_and_stub_fid(
    workspace: dict[str, Path],
) -> None:
    engine = EditEngine.load(workspace["checkpoint"], "cpu")
    faces = build_expression_dataset("folders", workspace["folders"], "test", 32)
    classifier = ExpressionClassifier(ClassifierConfig(base_channels=8, image_size=32)).eval()
    result = evaluate_editing(
        engine, faces, classifier=classifier, fid_network=StubInception(), batch_size=4, grid_rows=2
    )
    assert result.images == 6
    assert result.targets == ("happy", "sad")  # the expressions present in the split
    for target in result.targets:
        row = result.per_target[target]
        assert row["edits"] == 6 and row["real_images"] == 3
        assert 0.0 <= row["expression_accuracy"] <= 1.0  # type: ignore[operator]
        assert 0.0 < row["target_probability"] < 1.0  # type: ignore[operator]
        assert row["fid"] is not None and row["fid"] >= 0.0
        assert row["identity_l1"] is not None and 0.0 <= row["identity_l1"] <= 1.0
    summary = result.summary
    assert summary["fid"] == pytest.approx(
        np.mean([result.per_target[t]["fid"] for t in result.targets])
    )
    assert result.grid is not None
    assert result.grid.shape == (evaluation.LABEL_STRIP + 2 * 32, 3 * 32, 3)  # 2 rows; input + 2


def test_accuracy_counts_argmax_hits_of_the_target(workspace: dict[str, Path]) -> None:
    engine = EditEngine.load(workspace["checkpoint"], "cpu")
    faces = build_expression_dataset("folders", workspace["folders"], "test", 32)
    judge = ExpressionClassifier(ClassifierConfig(base_channels=8, image_size=32)).eval()
    with torch.no_grad():  # a judge that always answers "sad", whatever it sees
        judge.fc.weight.zero_()
        judge.fc.bias.zero_()
        judge.fc.bias[judge.config.class_names.index("sad")] = 10.0
    result = evaluate_editing(engine, faces, classifier=judge, targets=("happy", "sad"))
    assert result.per_target["sad"]["expression_accuracy"] == 1.0
    assert result.per_target["happy"]["expression_accuracy"] == 0.0
    assert result.summary["expression_accuracy"] == pytest.approx(0.5)
    assert result.summary["fid"] is None and "no --fid-weights" in result.reasons["fid"]


def test_identity_l1_only_counts_pixels_outside_the_regions(workspace: dict[str, Path]) -> None:
    class ShiftEverything:
        """An engine stand-in: every pixel moves by exactly 51/255 outside the left-half mask,
        and far more inside it (which the identity L1 must not see)."""

        device = torch.device("cpu")
        config = None  # no model config: edited as a mask model, in one batch

        def edit_batch(self, crops: list[np.ndarray], condition: object) -> list[object]:
            masks = np.zeros((4, 32, 32), dtype=np.float32)
            masks[3, :, :16] = 1.0  # the "mouth" covers the left half
            edited = [np.where(c < 128, c + 51, c - 51).astype(np.uint8) for c in crops]
            edited = [
                np.where(masks[3, :, :, None] > 0, 255 - c, e)
                for c, e in zip(crops, edited, strict=True)
            ]
            return [type("R", (), {"crop": e, "region_masks": masks})() for e in edited]

    faces = build_expression_dataset("folders", workspace["folders"], "test", 32)
    result = evaluate_editing(ShiftEverything(), faces, targets=("happy",))  # type: ignore[arg-type]
    assert result.summary["identity_l1"] == pytest.approx(51 / 255, abs=1e-6)


def test_keypoint_box_models_are_edited_with_the_template_landmarks(
    workspace: dict[str, Path], tmp_path: Path
) -> None:
    from faceedit.weights import checkpoint
    masks_model = checkpoint.load(workspace["checkpoint"])
    boxes = checkpoint.save(
        tmp_path / "boxes.safetensors",
        masks_model.config.replace(region_source="boxes"),
        parser=masks_model.parser,
        generator=masks_model.generator,
    )
    engine = EditEngine.load(boxes, "cpu")
    faces = build_expression_dataset("folders", workspace["folders"], "test", 32)
    crops = evaluation.to_uint8_crops(torch.stack([faces[i][0] for i in range(2)]))
    results = evaluation.edit_crops(engine, crops, "happy")
    assert len(results) == 2
    for result in results:
        assert set(np.unique(result.region_masks)) <= {0.0, 1.0}  # hard boxes, not soft masks
        assert result.region_masks.sum() > 0
    scored = evaluate_editing(engine, faces, targets=("happy",))
    assert scored.summary["identity_l1"] is not None


def run_eval(args: list[str]) -> int:
    return train_main(["eval", *args, "--device", "cpu"])


def test_eval_command_end_to_end(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    code = run_eval(
        [
            *("--checkpoint", str(workspace["checkpoint"]), "--out", str(out)),
            *("--celebamask-hq", str(workspace["celeba"]), "--folders", str(workspace["folders"])),
            *("--classifier", str(workspace["classifier"]), "--split", "test", "--limit", "4"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    for title in SUMMARY_METRICS.values():
        assert title in header
    assert "FID: not computed: no --fid-weights given" in printed
    results = json.loads((out / "evaluation.json").read_text())
    summary = results["summary"]
    assert set(summary) == set(SUMMARY_METRICS)
    assert summary["fid"] is None and "fid" in results["not_computed"]
    assert 0.0 <= summary["miou"] <= 1.0 and 0.0 <= summary["expression_accuracy"] <= 1.0
    assert results["editing"]["images"] == 4 and results["parser"]["images"] >= 1
    assert set(results["parser"]["iou"]) == set(CLASS_NAMES)
    assert results["parser"]["iou"]["hat"] is None  # the fixture has no hats: n/a
    matrix = np.load(out / "confusion_matrix.npy")
    assert matrix.shape == (19, 19) and matrix.sum() == results["parser"]["images"] * 32 * 32
    assert (out / "confusion_matrix.csv").read_text().startswith("truth \\ prediction,background")
    grid = cv2.imread(str(out / "edits.png"))
    assert grid is not None and grid.shape[1] == 3 * 32  # input, happy, sad
    assert "| mIoU" in (out / "evaluation.md").read_text()
    assert not list(out.glob(".*.tmp"))


def test_eval_command_computes_fid_with_the_given_network(
    workspace: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer.commands import evaluate as command

    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"stub")
    seen: list[Path] = []

    def fake_loader(path: Path, device: object) -> nn.Module:
        seen.append(Path(path))
        return StubInception()

    monkeypatch.setattr(command, "load_fid_inception", fake_loader)
    out = tmp_path / "fid"
    code = run_eval(
        [
            *("--checkpoint", str(workspace["checkpoint"]), "--out", str(out)),
            *("--folders", str(workspace["folders"]), "--fid-weights", str(weights)),
        ]
    )
    assert code == 0 and seen == [weights]
    results = json.loads((out / "evaluation.json").read_text())
    assert results["summary"]["fid"] is not None and results["summary"]["fid"] >= 0
    assert results["summary"]["miou"] is None
    assert "no --celebamask-hq" in results["not_computed"]["miou"]
    assert "no --classifier" in results["not_computed"]["expression_accuracy"]


def test_eval_command_explains_what_is_missing(
    workspace: dict[str, Path],
    tiny_parser: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_eval(["--checkpoint", str(workspace["checkpoint"]), "--out", str(tmp_path)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    code = run_eval(
        [
            *("--checkpoint", str(workspace["checkpoint"]), "--out", str(tmp_path)),
            *("--folders", str(workspace["folders"]), "--fid-weights", str(tmp_path / "no.pth")),
        ]
    )
    assert code == 2
    assert "downloads nothing" in capsys.readouterr().err
    parser_only = tiny_parser
    code = run_eval(
        [
            *("--checkpoint", str(parser_only), "--out", str(tmp_path / "p")),
            *("--folders", str(workspace["folders"])),
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "p" / "evaluation.json").read_text())
    assert "expression generator" in results["not_computed"]["identity_l1"]
