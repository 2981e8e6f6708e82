"""The evaluation functions, on fixture datasets and tiny models (the `eval` command:
tests/trainer/commands/test_evaluate.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from faceedit.inference.engine import EditEngine
from faceedit.model.parsing import ParserOutput
from faceedit.vocab.labels import CLASS_INDEX, palette
from tests.trainer.evaluation_fixtures import StubInception, write_workspace
from trainer.data import CelebAMaskHQ, build_expression_dataset
from trainer.judges import evaluation
from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier
from trainer.judges.evaluation import (
    evaluate_editing,
    evaluate_parser,
    markdown_table,
    spread_indices,
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Path]:
    return write_workspace(tmp_path_factory.mktemp("eval"), tiny_model)


class PaletteParser(nn.Module):
    """Reads the fixture's painted label colours back: a near-perfect parser without training."""

    def __init__(self) -> None:
        super().__init__()
        colours = torch.from_numpy(palette()).float() / 127.5 - 1.0  # (19, 3) in [-1, 1]
        self.register_buffer("colours", colours)

    def forward(self, x: Tensor) -> ParserOutput:
        distance = ((x[:, None] - self.colours[None, :, :, None, None]) ** 2).sum(2)
        return ParserOutput(-distance * 50)  # (B, 19, H, W)


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
        assert 0.0 <= row["expression_accuracy"] <= 1.0  # type: ignore[operator]  # not None here
        assert 0.0 < row["target_probability"] < 1.0  # type: ignore[operator]  # not None here
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


def test_identity_l1_counts_the_same_pixels_for_every_model(workspace: dict[str, Path]) -> None:
    """Every pixel outside the shared edit zone moves by exactly 51/255, inside it far more.
    Two stand-in models that report different region masks get the same identity L1: it used
    to be measured outside each model's own masks, so different models were scored over
    different pixels."""
    zone = ~evaluation.shared_outside(32).numpy()
    assert 0 < zone.mean() < 0.7

    class ShiftEverything:
        device = torch.device("cpu")
        config = None

        def __init__(self, masks: np.ndarray) -> None:
            self.masks = masks

        def edit_batch(self, crops: list[np.ndarray], condition: object) -> list[object]:
            edited = [np.where(c < 128, c + 51, c - 51).astype(np.uint8) for c in crops]
            edited = [
                np.where(zone[:, :, None], 255 - c, e) for c, e in zip(crops, edited, strict=True)
            ]
            return [type("R", (), {"crop": e, "region_masks": self.masks})() for e in edited]

    faces = build_expression_dataset("folders", workspace["folders"], "test", 32)
    left = np.zeros((4, 32, 32), dtype=np.float32)
    left[3, :, :16] = 1.0  # one model's "mouth" covers the left half
    nothing = np.zeros((4, 32, 32), dtype=np.float32)  # the other's covers nothing
    scores = [
        evaluate_editing(ShiftEverything(m), faces, targets=("happy",)).summary["identity_l1"]  # type: ignore[arg-type]  # a stand-in engine
        for m in (left, nothing)
    ]
    assert scores[0] == pytest.approx(51 / 255, abs=1e-6)
    assert scores[0] == scores[1]


def test_scoring_an_imported_community_parser_says_its_test_split_is_not_held_out(
    workspace: dict[str, Path], tmp_path: Path
) -> None:
    from faceedit.weights import checkpoint
    from faceedit.weights.community_parser import SOURCE

    model = checkpoint.load(workspace["checkpoint"])
    imported = checkpoint.save(
        tmp_path / "imported.safetensors", model.config, parser=model.parser,
        generator=model.generator, metadata={"source": SOURCE},
    )  # fmt: skip
    lines: list[str] = []
    report = evaluation.evaluate_checkpoint(
        imported, celebamask_hq=workspace["celeba"], device="cpu", log=lines.append
    )
    assert any("trained on all CelebAMask-HQ images" in line for line in lines)
    assert "not held out" in report.tables()
    own = evaluation.evaluate_checkpoint(
        workspace["checkpoint"], celebamask_hq=workspace["celeba"], device="cpu", log=lines.append
    )
    assert "parser_note" not in own.info


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
