"""The real-face report: the issue's targets against what was measured, the controls beside
them, as report.json, report.md and a grid of held-out edits."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from faceedit.fileio import atomic_write_text
from faceedit.vocab.expressions import EXPRESSIONS
from trainer.judges.controls import CONTROL_MAX_READ
from trainer.judges.plots import image_grid, save_png
from trainer.judges.real.mouth_ceiling import MouthCeiling
from trainer.judges.real.scorer import FAR_BAND, MOUTH_BAND, TARGETS, EditorScores, RealFaceReport

PRODUCT: Final[str] = "product"


@dataclass(frozen=True)
class Goal:
    """One target of the issue: what it asks, what was measured, whether it passes."""

    target: str
    goal: str
    measured: float | None
    passed: bool | None  # None: not measured


def _check(value: float | None, test: Callable[[float], bool]) -> bool | None:
    return None if value is None else bool(test(value))


def goals(report: RealFaceReport) -> list[Goal]:
    """The issue's targets, measured on the product's edits."""
    p = report.editor(PRODUCT)
    happy, surprised, locked = p.targets["happy"], p.targets["surprised"], p.locked
    miou = report.parser.miou if report.parser else None
    rows = [
        ("happy=1: mean P(happy)", ">= 0.5", happy.mean_probability, lambda v: v >= 0.5),
        ("happy=1: read as happy", ">= 0.60", happy.read_as_target, lambda v: v >= 0.6),
        (
            "happy=1 --editable mouth: read as happy",
            ">= 0.40",
            locked.expression.read_as_target,
            lambda v: v >= 0.4,
        ),
        (
            "--editable mouth: pixels changed outside the parser's mouth footprint",
            "0",
            float(locked.changed_outside_footprint),
            lambda v: v == 0,
        ),
        (
            f"--editable mouth: footprint within the landmark lips (+{MOUTH_BAND} eye "
            "distances), worst edit",
            ">= 0.90",
            locked.footprint_inside_mouth_min,
            lambda v: v >= 0.9,
        ),
        (
            f"--editable mouth: edits whose footprint reaches beyond the lips (+{FAR_BAND} "
            "eye-to-mouth distances: a cheek, an eye, a corner)",
            "0",
            float(locked.footprint_far_edits),
            lambda v: v == 0,
        ),
        ("surprised=1: read as surprised", ">= 0.40", surprised.read_as_target, lambda v: v >= 0.4),
        (
            "identity: dlib distance <= 0.6",
            ">= 0.95 of edits",
            p.identity_kept,
            lambda v: v >= 0.95,
        ),
        (
            "background (outside the face): mean change, grey levels",
            "<= 0.5",
            p.background_mean_change,
            lambda v: v <= 0.5,
        ),
        ("greyscale photos stay greyscale", "1.00 of edits", p.greyscale_kept, lambda v: v >= 1.0),
        (
            "colour photos keep their white balance: largest channel shift, grey levels",
            "<= 1.0",
            p.balance_shift,
            lambda v: v <= 1.0,
        ),
        ("parser: held-out mIoU vs landmark labels", ">= 0.75", miou, lambda v: v >= 0.75),
        ("faces found without --aligned", ">= 0.97", report.found.share, lambda v: v >= 0.97),
    ]
    return [Goal(name, goal, value, _check(value, test)) for name, goal, value, test in rows]


def control_checks(report: RealFaceReport) -> list[Goal]:
    """Each control's read-as-target share per target: it must stay <= CONTROL_MAX_READ."""
    out = []
    for scores in report.editors:
        if scores.editor == PRODUCT:
            continue
        readings = {t: scores.targets[t].read_as_target for t in TARGETS}
        readings["happy (mouth lock)"] = scores.locked.expression.read_as_target
        for target, value in readings.items():
            out.append(
                Goal(
                    f"control '{scores.editor}': read as {target}",
                    f"<= {CONTROL_MAX_READ:.2f}",
                    value,
                    _check(value, lambda v: v <= CONTROL_MAX_READ),
                )
            )
    return out


def _plain(value: Any) -> Any:
    """JSON-ready copies of the report's dataclasses (arrays left out)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "grid"
        }
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def report_dict(report: RealFaceReport) -> dict[str, Any]:
    out: dict[str, Any] = _plain(report)
    out["found"]["share"] = report.found.share
    out["goals"] = [_plain(g) for g in goals(report)]
    out["controls"] = [_plain(g) for g in control_checks(report)]
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("pass" if passed else "**fail**")


def _editor_row(s: EditorScores) -> str:
    h, su, lk = s.targets["happy"], s.targets["surprised"], s.locked
    critic = (
        "n/a"
        if s.critic_probability is None
        else f"{s.critic_probability[0]:.3f} -> {s.critic_probability[1]:.3f}"
    )
    cells = [
        s.editor,
        _fmt(h.mean_probability),
        _fmt(h.read_as_target),
        _fmt(su.read_as_target),
        _fmt(lk.expression.read_as_target),
        str(lk.changed_outside_footprint),
        _fmt(s.identity_kept),
        _fmt(s.identity_mean_distance),
        _fmt(s.background_mean_change),
        _fmt(s.greyscale_kept),
        _fmt(s.tint_added),
        _fmt(s.balance_shift),
        critic,
    ]
    return "| " + " | ".join(cells) + " |"


def report_markdown(report: RealFaceReport) -> str:
    judge = report.judge
    teach = judge["teachable"]
    lines = [
        "# Real faces: held-out scores",
        "",
        f"Checkpoint `{report.checkpoint}`; judge `{judge['path']}` ({judge['image_size']} px): "
        f"test-split accuracy {_fmt(judge['test_accuracy'])} over {judge['test_count']} crops, "
        f"{_fmt(teach['accuracy'])} over the teachable expressions ("
        + ", ".join(f"{k} {_fmt(v)}" for k, v in teach["per_class"].items())
        + ").",
        "",
        f"{len(report.inputs)} neutral photos of test identities edited through the product's "
        f"path (detect, align, parse, generate, paste back); {len(report.skipped)} skipped "
        "(no face found). Colour: "
        f"{report.editor(PRODUCT).colour_photos} colour photos of val identities (the test "
        "split's photos are all greyscale).",
        "",
        "## Targets",
        "",
        "| target | goal | measured | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for g in goals(report):
        lines.append(f"| {g.target} | {g.goal} | {_fmt(g.measured)} | {_verdict(g.passed)} |")
    p = report.editor(PRODUCT)
    lock = p.locked
    lines += [
        "",
        f"Mouth lock: {lock.changed_pixels} pixels changed in {lock.expression.edits} locked "
        f"edits; the parser's footprint lies within the landmark lips (+{MOUTH_BAND} eye "
        f"distances) for a mean share of {_fmt(lock.footprint_inside_mouth_mean)} over "
        f"{lock.footprint_edits} edits with a footprint (worst {_fmt(lock.footprint_inside_mouth_min)}, "
        f"{lock.footprint_worst_photo}).",
        "",
        "## What the judge reads the product's edits as",
        "",
        "| edit | " + " | ".join(EXPRESSIONS) + " |",
        "| --- |" + " --- |" * len(EXPRESSIONS),
    ]
    readings = [(f"{t}=1", scores) for t, scores in p.targets.items()]
    readings.append(("happy=1 --editable mouth", p.locked.expression))
    for label, t in readings:
        lines.append(
            f"| {label} | " + " | ".join(_fmt(t.read_as.get(n)) for n in EXPRESSIONS) + " |"
        )
    if any(e.editor == "identity" for e in report.editors):
        same = report.editor("identity")
        lines.append(
            "| unedited input (identity control) | "
            + " | ".join(_fmt(same.targets["happy"].read_as.get(n)) for n in EXPRESSIONS)
            + " |"
        )
    lines += [
        "",
        "## Controls: the same scores for editors that must score low",
        "",
        "identity returns the input; fixed patch paints a constant smile on the mouth; critic "
        "noise adds at most 8 grey levels optimised for 20 steps to raise the checkpoint's own "
        "global critic's P(target) (its P before -> after in the last column).",
        "",
        "| editor | P(happy) | read happy | read surprised | read happy, mouth lock | changed "
        "outside footprint | identity kept | mean distance | background | grey kept | tint | "
        "balance shift | critic's P(target) |",
        "| --- |" + " --- |" * 12,
    ]
    lines += [_editor_row(s) for s in report.editors]
    lines += [
        "",
        "| control check | goal | measured | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for g in control_checks(report):
        lines.append(f"| {g.target} | {g.goal} | {_fmt(g.measured)} | {_verdict(g.passed)} |")
    if report.parser is not None:
        lines += [
            "",
            f"## Parser ({report.parser.images} labelled test crops)",
            "",
            "| " + " | ".join(report.parser.iou) + " |",
            "|" + " --- |" * len(report.parser.iou),
            "| " + " | ".join(_fmt(v) for v in report.parser.iou.values()) + " |",
        ]
    if report.ceiling is not None:
        lines += _ceiling_lines(report.ceiling)
    lines += [
        "",
        f"Faces found: {report.found.found} of {report.found.photos} test photos.",
        "",
    ]
    return "\n".join(lines)


def _ceiling_lines(ceiling: MouthCeiling) -> list[str]:
    lines = [
        "",
        "## The mouth lock's ceiling: a real smile confined to a footprint",
        "",
        f"{ceiling.pairs} same-person pairs ({ceiling.identities} people, {ceiling.split} "
        "split): the person's happy photo, colour-matched, pasted into their neutral photo "
        "inside each footprint, read by the same judge. No generator confined to a footprint "
        "should be expected to beat the real smile inside it.",
        "",
        "| footprint | read as happy | mean P(happy) |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {r.footprint} | {_fmt(r.read_as_happy)} | {_fmt(r.mean_probability)} |"
        for r in ceiling.rows
    ]
    return lines


def write_report(report: RealFaceReport, out: str | os.PathLike[str]) -> dict[str, Path]:
    """report.json, report.md and (when there are edits) edits.png in `out`."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": atomic_write_text(
            folder / "report.json", json.dumps(report_dict(report), indent=1) + "\n"
        ),
        "markdown": atomic_write_text(folder / "report.md", report_markdown(report)),
    }
    if report.grid:
        figure = image_grid(
            [list(r) for r in report.grid],
            column_titles=("input", *report.editors[0].targets, f"{TARGETS[0]} diff x4"),
        )
        paths["grid"] = save_png(folder / "edits.png", figure)
    return paths
