"""Score a checkpoint: the parser on CelebAMask-HQ, the edits on an expression dataset.

Parser: a confusion matrix over the split, then mIoU, per-class F1 and pixel accuracy.
Editing (StarGAN / GANimation protocol): every test face is edited towards every target
expression through the app's own engine, and each edit is scored by
  - expression accuracy: the classifier's top class is the target;
  - target probability: the classifier's mean probability of the target;
  - identity L1: mean |edit - input| (pixel values in [0, 1]) over pixels that no variant
    may edit, the same for every model: outside the union of the four keypoint-box regions of
    the alignment template, grown by SHARED_OUTSIDE_GROW of the crop (measuring each model
    outside its own regions would score models with different regions over different pixels);
  - FID between the edits towards a class and the real faces of that class, averaged over the
    targets (Inception weights by path; without them FID is "not computed" with the reason).
A metric that cannot be computed is None in the JSON and "n/a" in the tables, with a reason.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from faceedit.fileio import atomic_write_text
from faceedit.inference.engine import EditEngine
from faceedit.media.images import save_png
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from trainer.judges.classifier import ExpressionClassifier
from trainer.judges.fid import FeatureStatistics, frechet_distance
from trainer.judges.metrics import (
    ConfusionAccumulator,
    SegmentationScores,
    format_score,
    save_confusion_matrix,
    segmentation_scores,
)

logger = logging.getLogger("trainer.judges.evaluation")

# Metric key -> column header, in table order; the JSON uses the keys.
SUMMARY_METRICS: Final[dict[str, str]] = {
    "miou": "mIoU",
    "mean_f1": "mean F1",
    "pixel_accuracy": "pixel acc",
    "expression_accuracy": "expr acc",
    "target_probability": "target prob",
    "identity_l1": "identity L1",
    "fid": "FID",
}
# The identity L1 counts pixels outside every region any variant edits: the template's keypoint
# boxes of all four regions, grown by this share of the crop side (soft masks reach a little
# beyond the boxes).
SHARED_OUTSIDE_GROW: Final[float] = 0.06
RESULTS_FILE: Final[str] = "evaluation.json"
TABLE_FILE: Final[str] = "evaluation.md"
GRID_FILE: Final[str] = "edits.png"
LABEL_STRIP: Final[int] = 14  # pixels of column titles above a grid


# --- tables -----------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with padded columns, readable as plain text too."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def summary_row(summary: Mapping[str, float | None], digits: int = 4) -> list[str]:
    """The SUMMARY_METRICS values of one result, formatted (n/a where missing)."""
    return [format_score(summary.get(key), digits) for key in SUMMARY_METRICS]


# --- helpers ----------------------------------------------------------------------------------


def spread_indices(count: int, limit: int | None) -> list[int]:
    """`limit` indices spread evenly over `count` items (all of them when limit is None).

    Evenly spaced rather than the first N, because dataset lists are often sorted by class or
    subject and the first N would test a single expression.
    """
    if limit is None or limit >= count:
        return list(range(count))
    if limit <= 0:
        raise ValueError(f"--limit must be positive, got {limit}")
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64)).tolist()


def to_uint8_crops(images: Tensor) -> list[np.ndarray]:
    """(B, 3, S, S) in [-1, 1] -> B arrays (S, S, 3) uint8 RGB, what the engine takes."""
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [p.permute(1, 2, 0).cpu().numpy() for p in pixels]


def from_uint8_crops(crops: Sequence[np.ndarray]) -> Tensor:
    """B arrays (S, S, 3) uint8 -> (B, 3, S, S) float in [-1, 1]."""
    stacked = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return stacked / 127.5 - 1.0


def _batches(dataset: Dataset, indices: list[int], batch_size: int, workers: int) -> Iterator[Any]:
    yield from DataLoader(Subset(dataset, indices), batch_size=batch_size, num_workers=workers)


# --- parser -----------------------------------------------------------------------------------


@dataclass
class ParserEvaluation:
    scores: SegmentationScores
    matrix: np.ndarray
    images: int


@torch.inference_mode()
def evaluate_parser(
    parser: nn.Module,
    dataset: Dataset,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
) -> ParserEvaluation:
    """Confusion matrix and scores of `parser` on (image, labels) pairs at the parser's size."""
    parser = parser.to(device).eval()
    accumulator = ConfusionAccumulator()
    indices = spread_indices(len(dataset), limit)  # type: ignore[arg-type]  # map-style datasets have len()
    for images, labels in _batches(dataset, indices, batch_size, num_workers):
        logits = parser(images.to(device)).logits  # (B, 19, H, W)
        if logits.shape[-2:] != labels.shape[-2:]:
            logits = F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=False
            )
        accumulator.update(logits.argmax(dim=1), labels.to(device))
    return ParserEvaluation(
        segmentation_scores(accumulator.matrix), accumulator.matrix, len(indices)
    )


# --- editing ----------------------------------------------------------------------------------


@dataclass
class TargetScores:
    """Running sums for one target expression."""

    hits: int = 0
    probability: float = 0.0
    edits: int = 0
    l1_sum: float = 0.0
    l1_pixels: int = 0
    features: list[np.ndarray] = field(default_factory=list)


@dataclass
class EditingEvaluation:
    images: int
    targets: tuple[str, ...]
    summary: dict[str, float | None]
    per_target: dict[str, dict[str, float | int | None]]
    reasons: dict[str, str]
    grid: np.ndarray | None  # (H, W, 3) uint8


def evaluate_editing(
    engine: EditEngine,
    dataset: Dataset,
    *,
    classifier: ExpressionClassifier | None = None,
    fid_network: nn.Module | None = None,
    targets: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    grid_rows: int = 6,
    reasons: Mapping[str, str] | None = None,
) -> EditingEvaluation:
    """Edit every face of `dataset` (image, expression, ...) towards every target and score it.

    `classifier` and `fid_network` are optional; what they measure is None without them, with
    the reason from `reasons` ("expression_accuracy", "fid") or a default one.
    """
    device = engine.device
    why = dict(reasons or {})
    indices = spread_indices(len(dataset), limit)  # type: ignore[arg-type]  # map-style datasets have len()
    labels_present = _labels_of(dataset, indices)
    chosen = (
        tuple(targets) if targets else tuple(EXPRESSIONS[i] for i in sorted(set(labels_present)))
    )
    unknown = [t for t in chosen if t not in EXPRESSION_INDEX]
    if unknown:
        raise ValueError(
            f"unknown target expression(s) {unknown}; expected some of {list(EXPRESSIONS)}"
        )
    class_index = _classifier_indices(classifier, chosen)
    if classifier is not None:
        classifier = classifier.to(device).eval()
        missing = [t for t in chosen if class_index.get(t) is None]
        if missing:
            why["expression_accuracy"] = f"the classifier has no class for {missing}"
    if fid_network is not None:
        fid_network = fid_network.to(device).eval()
    per_target = {t: TargetScores() for t in chosen}
    real_features: dict[int, list[np.ndarray]] = {}
    grid_inputs: list[np.ndarray] = []
    grid_edits: dict[str, list[np.ndarray]] = {t: [] for t in chosen}

    for batch in _batches(dataset, indices, batch_size, num_workers):
        images, expressions = batch[0], batch[1]
        crops = to_uint8_crops(images)
        real = from_uint8_crops(crops).to(device)  # what the engine sees, quantised alike
        if fid_network is not None:
            feats = _features(fid_network, real)
            for row, label in zip(feats, expressions.tolist(), strict=True):
                real_features.setdefault(int(label), []).append(row)
        take = max(0, grid_rows - len(grid_inputs))
        grid_inputs += crops[:take]
        for target in chosen:
            results = edit_crops(engine, crops, target)
            edited = from_uint8_crops([r.crop for r in results]).to(device)  # (B, 3, S, S)
            size = edited.shape[-1]
            outside = shared_outside(size).to(device).expand(len(results), size, size)
            scores = per_target[target]
            diff = (edited - real).abs().mean(dim=1) / 2  # (B, S, S), [0, 1] pixel units
            scores.l1_sum += float(diff[outside].sum())
            scores.l1_pixels += int(outside.sum())
            scores.edits += len(results)
            index = class_index.get(target)
            if classifier is not None and index is not None:
                probs = classifier.probabilities(edited)
                scores.hits += int((probs.argmax(dim=1) == index).sum())
                scores.probability += float(probs[:, index].sum())
            if fid_network is not None:
                scores.features += list(_features(fid_network, edited))
            grid_edits[target] += [r.crop for r in results[:take]]

    summary, table = _summarise(
        per_target, real_features, classifier, class_index, fid_network, why
    )
    grid = edit_grid(grid_inputs, [grid_edits[t] for t in chosen], chosen) if grid_inputs else None
    return EditingEvaluation(len(indices), chosen, summary, table, why, grid)


def shared_outside(size: int) -> Tensor:
    """(S, S) bool: the pixels the identity L1 is measured over, the same for every model
    (outside the grown template keypoint boxes of brows, eyes, nose and mouth)."""
    from faceedit.faces.align import template_landmarks
    from faceedit.model.regions import box_region_masks
    from faceedit.vocab.labels import REGION_NAMES

    points = torch.as_tensor(template_landmarks(size), dtype=torch.float32)[None]
    zone = box_region_masks(points, size, REGION_NAMES)[0].amax(0).numpy().astype(np.uint8)
    grow = max(1, round(SHARED_OUTSIDE_GROW * size))
    grown = cv2.dilate(zone, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return torch.from_numpy(grown == 0)


def edit_crops(engine: EditEngine, crops: list[np.ndarray], target: str) -> list[Any]:
    """Edit crops towards one expression in one batch. Keypoint-box models get the alignment
    template's points here (the crops are aligned to it; these datasets give no points)."""
    return engine.edit_batch(crops, {target: 1.0})


def _labels_of(dataset: Dataset, indices: list[int]) -> list[int]:
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return [int(targets[i]) for i in indices]
    return [int(dataset[i][1]) for i in indices]


def _classifier_indices(
    classifier: ExpressionClassifier | None, targets: Sequence[str]
) -> dict[str, int | None]:
    if classifier is None:
        return dict.fromkeys(targets)
    names = list(classifier.config.class_names)
    return {t: names.index(t) if t in names else None for t in targets}


@torch.inference_mode()
def _features(network: nn.Module, images: Tensor) -> np.ndarray:
    # float32 while collecting (N x targets x 2048 of them); statistics are taken in float64.
    return network(images.float()).float().cpu().numpy()


def _summarise(
    per_target: Mapping[str, TargetScores],
    real_features: Mapping[int, list[np.ndarray]],
    classifier: ExpressionClassifier | None,
    class_index: Mapping[str, int | None],
    fid_network: nn.Module | None,
    why: dict[str, str],
) -> tuple[dict[str, float | None], dict[str, dict[str, float | int | None]]]:
    """Per-target rows and the summary: accuracy and probability over all edits, L1 over all
    outside pixels, FID averaged over the targets it could be computed for."""
    if classifier is None:
        why.setdefault("expression_accuracy", "no --classifier given")
    if fid_network is None:
        why.setdefault("fid", "no --fid-weights given (pytorch-fid's Inception weights file)")
    table: dict[str, dict[str, float | int | None]] = {}
    fids: list[float] = []
    no_fid: list[str] = []
    for target, s in per_target.items():
        scored = classifier is not None and class_index.get(target) is not None and s.edits > 0
        fid = None
        reals = real_features.get(EXPRESSION_INDEX[target], [])
        if fid_network is not None:
            if len(reals) >= 2 and len(s.features) >= 2:
                fid = frechet_distance(
                    FeatureStatistics.from_features(np.stack(reals)),
                    FeatureStatistics.from_features(np.stack(s.features)),
                )
                fids.append(fid)
            else:
                no_fid.append(target)
        table[target] = {
            "edits": s.edits,
            "real_images": len(reals),
            "expression_accuracy": s.hits / s.edits if scored else None,
            "target_probability": s.probability / s.edits if scored else None,
            "identity_l1": s.l1_sum / s.l1_pixels if s.l1_pixels else None,
            "fid": fid,
        }
    if no_fid:
        why["fid_per_target"] = f"fewer than 2 real or edited images of {no_fid}"
    if fid_network is not None and not fids:
        why["fid"] = f"no target has 2 or more real images in the split ({no_fid})"
    total_edits = sum(s.edits for t, s in per_target.items() if class_index.get(t) is not None)
    scored_any = classifier is not None and total_edits > 0
    pixels = sum(s.l1_pixels for s in per_target.values())
    if not pixels:
        why["identity_l1"] = "the shared edit regions cover every pixel: nothing lies outside"
    summary: dict[str, float | None] = {
        "expression_accuracy": (
            sum(s.hits for s in per_target.values()) / total_edits if scored_any else None
        ),
        "target_probability": (
            sum(s.probability for s in per_target.values()) / total_edits if scored_any else None
        ),
        "identity_l1": sum(s.l1_sum for s in per_target.values()) / pixels if pixels else None,
        "fid": float(np.mean(fids)) if fids else None,
    }
    return summary, table


def edit_grid(
    inputs: Sequence[np.ndarray], edits: Sequence[Sequence[np.ndarray]], titles: Sequence[str]
) -> np.ndarray:
    """(H, W, 3) uint8: one row per input, columns input then each target, titles on top."""
    size = inputs[0].shape[0]
    columns = [list(inputs), *(list(column) for column in edits)]
    rows = [np.concatenate([column[r] for column in columns], axis=1) for r in range(len(inputs))]
    body = np.concatenate(rows, axis=0)
    strip = np.full((LABEL_STRIP, body.shape[1], 3), 255, dtype=np.uint8)
    scale = 0.3
    for k, title in enumerate(["input", *titles]):
        # Titles are cut to the column width; at 32 px crops only the first letters show.
        cv2.putText(
            strip, title[: max(1, size // 6)], (k * size + 2, LABEL_STRIP - 4),
            cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA,
        )  # fmt: skip
    return np.concatenate([strip, body], axis=0)


# --- the whole evaluation ---------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """Everything one `faceedit-train eval` measured, ready for JSON and tables."""

    checkpoint: str
    split: str
    parser: ParserEvaluation | None = None
    editing: EditingEvaluation | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, float | None]:
        """Every SUMMARY_METRICS key, None where not measured."""
        values: dict[str, float | None] = dict.fromkeys(SUMMARY_METRICS)
        if self.parser is not None:
            values["miou"] = self.parser.scores.miou
            values["mean_f1"] = self.parser.scores.mean_f1
            values["pixel_accuracy"] = self.parser.scores.pixel_accuracy
        if self.editing is not None:
            values.update(self.editing.summary)
        return values

    def not_computed(self) -> dict[str, str]:
        """Metric -> why it is missing."""
        reasons = dict(self.reasons)
        if self.editing is not None:
            reasons.update(self.editing.reasons)
        missing = [k for k, v in self.summary.items() if v is None]
        return {k: reasons.get(k, _group_reason(k, reasons)) for k in missing}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "checkpoint": self.checkpoint,
            "split": self.split,
            "summary": self.summary,
            "not_computed": self.not_computed(),
            **self.info,
        }
        if self.parser is not None:
            data["parser"] = {"images": self.parser.images, **self.parser.scores.to_dict()}
        if self.editing is not None:
            data["editing"] = {
                "images": self.editing.images,
                "targets": list(self.editing.targets),
                "per_target": self.editing.per_target,
            }
        return data

    def tables(self) -> str:
        """The summary table, then per-class and per-target tables, as Markdown text."""
        parts = [markdown_table(list(SUMMARY_METRICS.values()), [summary_row(self.summary)])]
        if self.parser is not None:
            s = self.parser.scores
            rows = [
                [name, format_score(iou), format_score(f1)]
                for name, iou, f1 in zip(s.class_names, s.iou, s.f1, strict=True)
            ]
            parts.append(markdown_table(["class", "IoU", "F1"], rows))
        if self.editing is not None:
            keys = ("expression_accuracy", "target_probability", "identity_l1", "fid")
            rows = [
                [t, str(v["edits"]), *(format_score(v[k]) for k in keys)]
                for t, v in self.editing.per_target.items()
            ]
            parts.append(
                markdown_table(["target", "edits", *(SUMMARY_METRICS[k] for k in keys)], rows)
            )
        notes = [
            f"- {SUMMARY_METRICS.get(k, k)}: not computed: {r}"
            for k, r in self.not_computed().items()
        ]
        if self.info.get("parser_note"):
            notes.insert(0, f"- {self.info['parser_note']}")
        return "\n\n".join(parts + (["\n".join(notes)] if notes else []))


def _group_reason(key: str, reasons: Mapping[str, str]) -> str:
    if key in ("miou", "mean_f1", "pixel_accuracy"):
        return reasons.get("parser", "the parser was not evaluated")
    if key == "target_probability":
        return reasons.get("expression_accuracy", "no classifier")
    return reasons.get("editing", "editing was not evaluated")


def write_report(report: EvaluationReport, out: str | os.PathLike[str]) -> dict[str, Path]:
    """evaluation.json, evaluation.md, the confusion matrix and the edit grid, all atomic."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "json": atomic_write_text(
            folder / RESULTS_FILE, json.dumps(report.to_dict(), indent=2) + "\n"
        ),
        "table": atomic_write_text(folder / TABLE_FILE, report.tables() + "\n"),
    }
    if report.parser is not None:
        written["confusion_npy"], written["confusion_csv"] = save_confusion_matrix(
            report.parser.matrix, folder
        )
    if report.editing is not None and report.editing.grid is not None:
        written["grid"] = save_png(folder / GRID_FILE, report.editing.grid)
    return written


COMMUNITY_PARSER_NOTE: Final[str] = (
    "NOTE: this parser was imported from face-parsing.PyTorch, which was trained on all "
    "CelebAMask-HQ images: its CelebAMask-HQ test-split scores are not held out (they "
    "overstate what it does on faces it has not seen)"
)


def community_parser_note(metadata: Mapping[str, Any]) -> str | None:
    """The caveat for a parser imported from the community project, else None."""
    from faceedit.weights.community_parser import SOURCE

    return COMMUNITY_PARSER_NOTE if metadata.get("source") == SOURCE else None


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    *,
    celebamask_hq: str | os.PathLike[str] | None = None,
    expression: tuple[str, str] | None = None,
    classifier: ExpressionClassifier | None = None,
    fid_network: nn.Module | None = None,
    reasons: Mapping[str, str] | None = None,
    split: str = "test",
    limit: int | None = None,
    targets: Sequence[str] | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    log: Callable[[str], None] = logger.info,
) -> EvaluationReport:
    """Load `checkpoint` and score what it holds on the datasets given.

    `expression` is (kind, root) of an AffectNet, RaFD or folders dataset. The parser is scored
    when the checkpoint has one and CelebAMask-HQ is given; the edits when it has a generator
    and an expression dataset is given; otherwise the report says why not.
    """
    from trainer.data import build_expression_dataset, open_parsing_dataset

    engine = EditEngine.load(checkpoint, device)
    config = engine.config
    assert config is not None
    why = dict(reasons or {})
    report = EvaluationReport(str(checkpoint), split, reasons=why)
    report.info["limit"] = limit
    parser = engine.checkpoint.parser if engine.checkpoint is not None else None
    if celebamask_hq is None:
        why["parser"] = "no --celebamask-hq given"
    elif parser is None:
        why["parser"] = f"{checkpoint} holds no parser"
    else:
        parsing = open_parsing_dataset(celebamask_hq, split, size=config.parser.resolution)  # type: ignore[arg-type]  # split: the CLI choices
        note = community_parser_note(engine.checkpoint.metadata if engine.checkpoint else {})
        if note:
            log(note)
            report.info["parser_note"] = note
        log(f"parser: scoring {len(parsing) if limit is None else min(limit, len(parsing))} images")
        report.parser = evaluate_parser(
            parser, parsing, limit=limit, batch_size=batch_size, num_workers=num_workers,
            device=engine.device,
        )  # fmt: skip
    if expression is None:
        why["editing"] = "no expression dataset given (--affectnet, --rafd or --folders)"
    elif not engine.capabilities.can_edit:
        why["editing"] = " ".join(engine.capabilities.missing) or f"{checkpoint} cannot edit"
    else:
        kind, root = expression
        faces = build_expression_dataset(kind, root, split, config.crop_size)  # type: ignore[arg-type]  # kind and split: the CLI choices
        log(
            f"editing: {kind} {split}, {len(faces) if limit is None else min(limit, len(faces))} faces"
        )
        report.editing = evaluate_editing(
            engine, faces, classifier=classifier, fid_network=fid_network, targets=targets,
            limit=limit, batch_size=batch_size, num_workers=num_workers, reasons=why,
        )  # fmt: skip
        report.info["expression_dataset"] = {"kind": kind, "root": str(root)}
    return report
