"""Scoring comparison variants on the procedural world (`faceedit-train compare --world DIR`).

Every variant is scored by the world scorer (trainer/judges/world) on the same held-out
identities, the same edits and the same pixels:

- parser mIoU and mean F1 of the final model's parser on the world's CelebAMask-HQ test split;
- the world judge's accuracy on edits (each source expression towards each of the 7 others);
- L1 of each edit to the identity's true rendering of the target, whole crop;
- identity error, |edit - input|, over two fixed pixel sets that do not depend on the model:
  the face outside every variant's edit regions, and the background
  (trainer/judges/world/held_out.py).

Edits are the generator's own crops; keypoint-box models get each rendering's true 68
landmarks (reduced to the 5 points the box builder takes), as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from faceedit.fileio import atomic_write_text
from faceedit.inference.engine import EditEngine
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.weights import checkpoint as checkpoints
from trainer.judges import plots
from trainer.judges.classifier import ExpressionClassifier, load_classifier
from trainer.judges.comparisons.tables import Metric
from trainer.judges.metrics import SegmentationScores
from trainer.judges.world.editors import engine_editor
from trainer.judges.world.held_out import BLUR_REACH, load_held_out
from trainer.judges.world.judge import JUDGE_FILE, save_world_judge, train_world_judge
from trainer.judges.world.renderings import world_valence_arousal
from trainer.judges.world.scorer import score_edits
from trainer.judges.world.scores import EditScores

WORLD_METRICS: Final[dict[str, Metric]] = {
    "miou": Metric("parser mIoU", True),
    "judge_accuracy": Metric("judged as target", True),
    "l1_truth": Metric("L1 to truth", False, 4),
    "identity_face": Metric("identity err, face", False, 4),
    "identity_background": Metric("identity err, bg", False, 4),
}
GRID_IDENTITIES: Final[int] = 2
GRID_TARGETS: Final[tuple[str, ...]] = ("happy", "surprised", "angry")


def comparison_judge(
    world: Path, out: Path, steps: int, log: Callable[[str], None]
) -> tuple[ExpressionClassifier, float | None]:
    """The judge of a comparison and its held-out accuracy: trained once (the world judge) into
    `out/judge.safetensors`, and reused from there, so a resumed comparison keeps the judge its
    first scores were read with."""
    path = out / JUDGE_FILE
    if path.is_file():
        log(f"judge: reusing {path}")
        loaded = load_classifier(path)
        return loaded.model, loaded.held_out_accuracy
    judge = train_world_judge(world, steps, log=log)
    save_world_judge(path, judge)
    return judge.model, judge.scores.accuracy


@dataclass(frozen=True)
class WorldRunScores:
    """One variant/seed on the world: its parser's scores (None without a parser: its mIoU is
    then None in the tables), its edits and whether it edits keypoint boxes."""

    parser: SegmentationScores | None
    edits: EditScores
    keypoint_boxes: Any

    def to_dict(self) -> dict[str, Any]:
        """The comparison's names (WORLD_METRICS' keys and what scores.json keeps besides)."""
        parser = self.parser
        edits = self.edits
        return dict(
            miou=parser.miou if parser is not None else None,
            mean_f1=parser.mean_f1 if parser is not None else None,
            judge_accuracy=edits.judge_accuracy,
            l1_truth=edits.mean_l1_edit,
            identity_face=edits.identity_face,
            identity_background=edits.identity_background,
            edits=edits.edits,
            face_pixels=edits.face_pixels,  # the same for every variant: the pixels are fixed
            background_pixels=edits.background_pixels,
            per_target_judge_accuracy=dict(edits.per_target_accuracy),
            keypoint_boxes=self.keypoint_boxes,
        )


class WorldScorer:
    """Scores final checkpoints on held-out identities of a world (see the module docstring)."""

    metrics: Mapping[str, Metric] = WORLD_METRICS

    def __init__(
        self,
        world: Path,
        judge: ExpressionClassifier,
        identities: int,
        judge_accuracy: float | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.world = Path(world)
        self.judge = judge.eval()
        self.log = log
        self.held_out = load_held_out(self.world, identities)
        self.va = world_valence_arousal(self.world)
        face_px, bg_px = self.held_out.pixel_shares()
        edits = len(self.held_out.identity_pixels)
        self.notes = [
            f"World {self.world} at {self.held_out.size} px; {len(self.held_out.table)} held-out "
            f"identities x 8 source expressions x 7 targets = {edits} edits per variant and seed.",
            "parser mIoU: the final model's parser on the world's CelebAMask-HQ test split "
            "(classes that occur).",
            "judged as target: the judge (a classifier trained on train identities' real "
            "renderings"
            + (f", held-out accuracy {judge_accuracy:.3f}" if judge_accuracy is not None else "")
            + ") calls the edit its target expression (chance 0.125).",
            "L1 to truth: mean |edit - true rendering of the target| over the whole crop, "
            "in [0, 1] units.",
            "identity err: mean |edit - input| in [0, 1] units over the same pixels for every "
            "variant: 'face' is the face outside the union of every variant's edit regions "
            f"(true brows/eyes/nose/mouth of source and target grown by {BLUR_REACH} px, plus "
            f"the keypoint boxes of the true landmarks; {face_px:.1%} of the crop on average), "
            f"'bg' the background, hair, hat, neck and clothes outside it ({bg_px:.1%}).",
        ]

    def _engine(self, path: Path) -> EditEngine:
        loaded = checkpoints.load(path)
        return EditEngine(loaded, device="cpu", precision="float32", optimize_networks=False)

    @torch.no_grad()
    def score(self, checkpoint: Path, folder: Path) -> dict[str, Any]:
        from trainer.data import CelebAMaskHQ
        from trainer.judges.evaluation import evaluate_parser

        engine = self._engine(checkpoint)
        loaded = engine.checkpoint
        assert loaded is not None
        parser = None
        if loaded.parser is not None:
            parsing = CelebAMaskHQ(
                self.world / "celebamask-hq", "test", size=loaded.config.parser.resolution,
                augment=False,
            )  # fmt: skip
            parser = evaluate_parser(loaded.parser, parsing).scores
        edit = engine_editor(engine, self.va, shown=False)
        edits, _ = score_edits(edit, self.judge, self.held_out)
        scores = WorldRunScores(parser, edits, loaded.metadata.get("keypoint_boxes"))
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "notes.md", "\n".join(f"- {n}" for n in self.notes) + "\n")
        return scores.to_dict()

    def grid(self, checkpoints_by_variant: Mapping[str, Path]) -> np.ndarray | None:
        """Rows: input, truth, then every variant; columns: held-out identities' neutral
        renderings edited towards GRID_TARGETS (the same inputs for every variant)."""
        held_out = self.held_out
        idents = list(held_out.table)[:GRID_IDENTITIES]
        cells = [(i, EXPRESSIONS.index(t)) for i in idents for t in GRID_TARGETS]
        rows = [
            [held_out.crops[(i, 0)] for i, _ in cells],
            [held_out.crops[(i, t)] for i, t in cells],
        ]
        titles = ["input", "truth"]
        for name, path in checkpoints_by_variant.items():
            edit = engine_editor(self._engine(path), self.va, shown=False)
            row = []
            for ident, target in cells:
                row += edit([held_out.crops[(ident, 0)]], [held_out.points[(ident, 0)]], target)
            rows.append(row)
            titles.append(name)
        columns = [f">{EXPRESSIONS[t][:7]}" for _, t in cells]
        return plots.image_grid(rows, columns, scale=2, row_titles=titles)
