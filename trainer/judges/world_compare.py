"""Scoring comparison variants on the procedural world (`faceedit-train compare --world DIR`).

Every variant is scored on the same held-out identities, the same edits and the same pixels:

- parser mIoU and mean F1 of the final model's parser on the world's CelebAMask-HQ test split;
- the judge's accuracy on edits (each source expression towards each of the 7 others);
- L1 of each edit to the identity's true rendering of the target, whole crop;
- identity error, |edit - input|, over two fixed pixel sets that do not depend on the model:
  the face outside every variant's edit regions, and the background. The edit regions of all
  variants are covered by the union, for source and target rendering, of the true brow, eye,
  nose and mouth classes grown by the world's blur reach (3 px), which soft-mask variants aim
  at, and the keypoint boxes of the true landmarks, which the box variant edits; the global-only
  variant has no regions and is scored on the same pixels. (Measuring each model outside its
  own regions would score the variants over different pixels.)

Keypoint-box models get each rendering's true 68 landmarks (reduced to the 5 points the box
builder takes), as in training.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch

from faceedit.errors import DatasetError
from faceedit.fileio import atomic_write_text
from faceedit.inference.engine import EditEngine
from faceedit.model.regions import box_region_masks
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import CLASS_INDEX, REGION_GROUPS, region_classes
from faceedit.weights import checkpoint as checkpoints
from trainer.data.affectnet import five_points
from trainer.judges import plots
from trainer.judges.classifier import (
    ClassifierConfig,
    ClassifierTrainConfig,
    ExpressionClassifier,
    load_classifier,
    save_classifier,
    train_classifier,
)
from trainer.judges.tables import Metric
from trainer.judges.world_scores import (
    EDIT_BATCH,
    OUTSIDE_FACE,
    RenderingSet,
    crops_to_tensor,
    held_out_identities,
    load_crop,
    read_pairs,
    world_valence_arousal,
)

WORLD_METRICS: Final[dict[str, Metric]] = {
    "miou": Metric("parser mIoU", True),
    "judge_accuracy": Metric("judged as target", True),
    "l1_truth": Metric("L1 to truth", False, 4),
    "identity_face": Metric("identity err, face", False, 4),
    "identity_background": Metric("identity err, bg", False, 4),
}
BLUR_REACH: Final[int] = 3  # px a changed part's blur reaches in the world (docs/world.md)
JUDGE_FILE: Final[str] = "judge.safetensors"
JUDGE_VIEW: Final[int] = 128  # the judge sees crops upsampled to this (as the learning check)
GRID_IDENTITIES: Final[int] = 2
GRID_TARGETS: Final[tuple[str, ...]] = ("happy", "surprised", "angry")
AFFECTNET_LISTS: Final[tuple[str, ...]] = ("training.csv", "validation.csv")


def world_size(world: Path) -> int:
    import json

    info = Path(world) / "world.json"
    if not info.is_file():
        raise DatasetError(f"{info} does not exist: make the world with 'faceedit-train synth'")
    return int(json.loads(info.read_text())["size"])


def world_landmarks(world: Path) -> dict[Path, np.ndarray]:
    """Image path -> its 5 alignment points (from the 68 annotated), from the AffectNet lists."""
    root = Path(world) / "affectnet"
    out: dict[Path, np.ndarray] = {}
    for name in AFFECTNET_LISTS:
        path = root / "Manually_Annotated_file_lists" / name
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                values = np.array([float(v) for v in row["facial_landmarks"].split(";")])
                image = root / "Manually_Annotated_Images" / row["subDirectory_filePath"]
                out[image.resolve()] = five_points(values.reshape(68, 2))
    return out


def label_paths(world: Path) -> dict[Path, Path]:
    """Image path -> its label map (pairs.csv's `labels` column)."""
    with open(Path(world) / "pairs.csv", newline="", encoding="utf-8") as handle:
        return {
            (Path(world) / row["image"]).resolve(): Path(world) / row["labels"]
            for row in csv.DictReader(handle)
        }


def edit_zone(labels: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(S, S) bool: where any variant may edit this rendering: its true region classes grown by
    the blur's reach, and the keypoint boxes of its true landmarks."""
    size = labels.shape[0]
    regions = tuple(REGION_GROUPS)
    classes = [c for group in region_classes(regions) for c in group]
    kernel = np.ones((2 * BLUR_REACH + 1,) * 2, np.uint8)
    parts = cv2.dilate(np.isin(labels, classes).astype(np.uint8), kernel).astype(bool)
    boxes = box_region_masks(torch.as_tensor(points, dtype=torch.float32)[None], size, regions)
    return parts | (boxes[0].amax(0).numpy() > 0)


def train_world_judge(
    world: Path, out: Path, steps: int, log: Callable[[str], None], seed: int = 0
) -> ExpressionClassifier:
    """The judge (trained once per comparison, on train identities' real renderings; reused
    when `out/judge.safetensors` exists)."""
    path = out / JUDGE_FILE
    if path.is_file():
        log(f"judge: reusing {path}")
        return load_classifier(path).model
    size = world_size(world)
    rows = read_pairs(world)
    train = RenderingSet([r for r in rows if r.split == "train"], size, JUDGE_VIEW)
    held_out = RenderingSet([r for r in rows if r.split == "test"], size, JUDGE_VIEW)
    model = ExpressionClassifier(ClassifierConfig(base_channels=16, image_size=JUDGE_VIEW))
    config = ClassifierTrainConfig(
        steps=steps, batch_size=32, lr=2e-3, seed=seed, num_workers=0,
        log_every=max(1, steps // 5),
    )  # fmt: skip
    trained = train_classifier(model, train, held_out, config, log=log)
    accuracy = trained.scores.accuracy
    log(f"judge: held-out accuracy on real renderings {accuracy:.3f}")
    save_classifier(path, trained.model, {"held_out_accuracy": accuracy, "steps": steps})
    return trained.model.eval()


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
        self.size = world_size(world)
        self.judge = judge.eval()
        self.log = log
        self.table = held_out_identities(self.world, identities)
        if not self.table:
            raise DatasetError(f"{world} has no held-out identity rendered in all expressions")
        self.va = world_valence_arousal(self.world)
        marks, labels = world_landmarks(world), label_paths(world)
        outside = [CLASS_INDEX[name] for name in OUTSIDE_FACE]
        self.crops: dict[tuple[str, int], np.ndarray] = {}
        self.points: dict[tuple[str, int], np.ndarray] = {}
        zones: dict[tuple[str, int], np.ndarray] = {}
        not_face: dict[tuple[str, int], np.ndarray] = {}
        for ident, renders in self.table.items():
            for e, row in renders.items():
                key = (ident, e)
                image = row.image.resolve()
                label = cv2.imread(str(labels[image]), cv2.IMREAD_UNCHANGED)
                if label is None:
                    raise DatasetError(f"{labels[image]}: the label map cannot be read")
                self.crops[key] = np.array(load_crop(row.image, self.size))  # writable
                self.points[key] = marks[image]
                zones[key] = edit_zone(label, marks[image])
                not_face[key] = np.isin(label, outside)
        self.pairs: dict[int, list[tuple[str, int]]] = {}
        self.masks: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}
        for target in range(len(EXPRESSIONS)):
            keys = [(i, s) for i in self.table for s in range(len(EXPRESSIONS)) if s != target]
            self.pairs[target] = keys
            for ident, source in keys:
                excluded = zones[(ident, source)] | zones[(ident, target)]
                face = ~not_face[(ident, source)] & ~excluded
                background = not_face[(ident, source)] & not_face[(ident, target)] & ~excluded
                self.masks[(ident, source, target)] = (face, background)
        face_px = np.mean([m[0].mean() for m in self.masks.values()])
        bg_px = np.mean([m[1].mean() for m in self.masks.values()])
        edits = sum(len(k) for k in self.pairs.values())
        self.notes = [
            f"World {self.world} at {self.size} px; {len(self.table)} held-out identities x 8 "
            f"source expressions x 7 targets = {edits} edits per variant and seed.",
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

    def _edit(
        self, engine: EditEngine, keys: Sequence[tuple[str, int]], target: int
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        va = self.va[target]
        for start in range(0, len(keys), EDIT_BATCH):
            chunk = keys[start : start + EDIT_BATCH]
            results = engine.edit_batch(
                [self.crops[k] for k in chunk],
                {EXPRESSIONS[target]: 1.0},
                valence_arousal=(float(va[0]), float(va[1])),
                landmarks=[self.points[k] for k in chunk],
            )
            out += [r.crop for r in results]
        return out

    @torch.no_grad()
    def score(self, checkpoint: Path, folder: Path) -> dict[str, Any]:
        from trainer.data import CelebAMaskHQ
        from trainer.judges.evaluation import evaluate_parser

        engine = self._engine(checkpoint)
        loaded = engine.checkpoint
        assert loaded is not None
        values: dict[str, Any] = {}
        if loaded.parser is not None:
            parsing = CelebAMaskHQ(
                self.world / "celebamask-hq", "test", size=loaded.config.parser.resolution,
                augment=False,
            )  # fmt: skip
            scores = evaluate_parser(loaded.parser, parsing).scores
            values["miou"], values["mean_f1"] = scores.miou, scores.mean_f1
        hits = edits = 0
        l1 = face_sum = bg_sum = 0.0
        face_px = bg_px = 0
        per_target: dict[str, float] = {}
        for target, keys in self.pairs.items():
            outputs = self._edit(engine, keys, target)
            edited = crops_to_tensor(outputs)
            truth = crops_to_tensor([self.crops[(i, target)] for i, _ in keys])
            probs = self.judge.probabilities(edited)
            hit = int((probs.argmax(1) == target).sum())
            hits += hit
            edits += len(keys)
            per_target[EXPRESSIONS[target]] = hit / len(keys)
            l1 += float(((edited - truth).abs() / 2).flatten(1).mean(1).sum())
            for (ident, source), out in zip(keys, outputs, strict=True):
                change = np.abs(out.astype(np.int16) - self.crops[(ident, source)]).mean(2) / 255
                face, background = self.masks[(ident, source, target)]
                face_sum += float(change[face].sum())
                bg_sum += float(change[background].sum())
                face_px += int(face.sum())
                bg_px += int(background.sum())
        values.update(
            judge_accuracy=hits / max(edits, 1),
            l1_truth=l1 / max(edits, 1),
            identity_face=face_sum / face_px if face_px else None,
            identity_background=bg_sum / bg_px if bg_px else None,
            edits=edits,
            face_pixels=face_px,  # the same for every variant: the pixels are fixed
            background_pixels=bg_px,
            per_target_judge_accuracy=per_target,
            keypoint_boxes=loaded.metadata.get("keypoint_boxes"),
        )
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "notes.md", "\n".join(f"- {n}" for n in self.notes) + "\n")
        return values

    def grid(self, checkpoints_by_variant: Mapping[str, Path]) -> np.ndarray | None:
        """Rows: input, truth, then every variant; columns: held-out identities' neutral
        renderings edited towards GRID_TARGETS (the same inputs for every variant)."""
        idents = list(self.table)[:GRID_IDENTITIES]
        cells = [(i, EXPRESSIONS.index(t)) for i in idents for t in GRID_TARGETS]
        rows = [
            [self.crops[(i, 0)] for i, _ in cells],
            [self.crops[(i, t)] for i, t in cells],
        ]
        titles = ["input", "truth"]
        for name, path in checkpoints_by_variant.items():
            engine = self._engine(path)
            row = []
            for ident, target in cells:
                row += self._edit(engine, [(ident, 0)], target)
            rows.append(row)
            titles.append(name)
        columns = [f">{EXPRESSIONS[t][:7]}" for _, t in cells]
        return plots.image_grid(rows, columns, scale=2, row_titles=titles)
