"""`faceedit-train compare`: each named experiment trains its variants per seed and writes its
tables (Markdown, LaTeX, JSON) and figures; finished runs and scores are not redone."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainer.commands.cli import main as train_main
from trainer.judges.comparisons.experiments import (
    EXPERIMENTS,
    VARIANTS,
    Budget,
    Data,
    StageRun,
    get_experiments,
    run_comparison,
)
from trainer.judges.comparisons.tables import Metric
from trainer.judges.evaluation import SUMMARY_METRICS


@pytest.fixture
def data(compare_data: dict[str, Path]) -> dict[str, Path]:
    return compare_data


def check_outputs(out: Path, experiment: str) -> dict[str, Any]:
    """The Markdown table has one row per variant and one column per metric; JSON, LaTeX and
    the bar plot are written beside it."""
    variants = list(EXPERIMENTS[experiment].variants)
    lines = (out / f"{experiment}.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| variant"))
    for title in SUMMARY_METRICS.values():
        assert title in header
    rows = [line.split("|")[1].strip() for line in lines if line.startswith("| ")][1:]
    assert rows == variants
    payload = json.loads((out / f"{experiment}.json").read_text())
    assert list(payload["variants"]) == variants
    for name in variants:
        summary = payload["variants"][name]["summary"]
        assert set(summary) == set(SUMMARY_METRICS)
        assert summary["miou"]["mean"] is not None and summary["miou"]["n"] == 1
        assert summary["identity_l1"]["mean"] is not None
        assert (out / "eval" / name / "s0" / "evaluation.json").is_file()
        assert (out / "eval" / name / "s0" / "scores.json").is_file()
        assert (out / "runs" / "s0" / f"joint-{name}" / "model.safetensors").is_file()
    assert payload["seeds"] == [0] and payload["budget"]["steps"] == 2
    assert "\\begin{tabular}" in (out / f"{experiment}.tex").read_text()
    assert (out / f"{experiment}_bars.png").is_file()
    return payload


@pytest.mark.slow
def test_joint_vs_frozen_end_to_end_with_classifier_and_fid(joint_vs_frozen: Path) -> None:
    out = joint_vs_frozen
    payload = check_outputs(out, "joint-vs-frozen")
    for name in ("joint", "frozen"):
        summary = payload["variants"][name]["summary"]
        assert summary["expression_accuracy"]["mean"] is not None
        assert summary["fid"]["mean"] is not None
    # one parser and one GAN run serve both variants
    assert sorted(p.name for p in (out / "runs" / "s0").iterdir()) == [
        "gan",
        "joint-frozen",
        "joint-joint",
        "parser",
    ]


@pytest.mark.slow
def test_masks_vs_boxes_end_to_end(masks_vs_boxes: Path) -> None:
    out = masks_vs_boxes
    payload = check_outputs(out, "masks-vs-boxes")
    assert "n/a" in (out / "masks-vs-boxes.md").read_text()  # no classifier, no FID weights
    assert payload["variants"]["boxes"]["settings"]["gan"] == ["model.region_source=boxes"]
    # the expression folders have no landmarks: every box sample fell back to the template,
    # and the checkpoint says so
    from faceedit.weights import checkpoint

    boxes = checkpoint.load(out / "runs" / "s0" / "gan-boxes" / "model.safetensors")
    counts = boxes.metadata["keypoint_boxes"]
    assert counts["samples"] > 0 and counts["template_fallbacks"] == counts["samples"]


@pytest.mark.slow
def test_bisenet_vs_unet_end_to_end(bisenet_vs_unet: Path) -> None:
    out = bisenet_vs_unet / "runs" / "s0"
    check_outputs(bisenet_vs_unet, "bisenet-vs-unet")
    assert "kind: bisenet" in (out / "parser-bisenet" / "config.yaml").read_text()
    assert "kind: unet" in (out / "parser-unet" / "config.yaml").read_text()
    assert "kind: bisenet" in (out / "joint-bisenet" / "config.yaml").read_text()


class FakeScorer:
    """Scores from the checkpoint's path, so tests can tell variants and seeds apart."""

    def __init__(self) -> None:
        self.metrics = {"quality": Metric("quality", True)}
        self.notes: list[str] = ["fake"]
        self.scored: list[Path] = []

    def score(self, checkpoint: Path, folder: Path) -> dict[str, Any]:
        self.scored.append(checkpoint)
        seed = int(checkpoint.parent.parent.name[1:])
        return {"quality": 0.5 + 0.1 * seed + 0.01 * len(checkpoint.parent.name)}

    def grid(self, checkpoints: dict[str, Path]) -> np.ndarray | None:
        return np.zeros((8, 8 * len(checkpoints), 3), np.uint8)


def recording_runner(
    calls: list[tuple[StageRun, bool]], tiny_model: Path, tiny_parser: Path
) -> Any:
    """Records each run it is asked for (and whether it resumes) instead of training it."""

    def runner(run: StageRun, resume: bool) -> None:
        calls.append((run, resume))
        run.out.mkdir(parents=True, exist_ok=True)
        (run.out / "state.pt").write_bytes(b"")
        if run.stage == "parser":
            shutil.copyfile(tiny_parser, run.out / "parser.safetensors")
        else:
            shutil.copyfile(tiny_model, run.out / "model.safetensors")

    return runner


def test_variants_share_budget_and_runs_per_seed_and_a_rerun_skips_what_is_done(
    tmp_path: Path, tiny_model: Path, tiny_parser: Path
) -> None:
    """With a recording runner (no training): every run gets the same budget flags and its
    seed, shared runs train once per seed, finished runs and scores are not redone, and an
    interrupted run resumes."""
    calls: list[tuple[StageRun, bool]] = []
    runner = recording_runner(calls, tiny_model, tiny_parser)
    budget = Budget(preset="tiny", steps=5, batch_size=2, device="cpu", num_workers=0)
    data_spec = Data("celeba", ("folders", "faces"))
    scorer = FakeScorer()
    experiments = get_experiments("joint-vs-frozen")
    result = run_comparison(
        experiments, tmp_path, data_spec, budget, [0, 1], scorer, runner=runner, log=print
    )
    assert [run.stage for run, _ in calls] == ["parser", "gan", "joint", "joint"] * 2
    for k, (run, resume) in enumerate(calls):
        assert run.settings["seed"] == k // 4
        assert f"/runs/s{k // 4}/" in str(run.out)
        assert run.settings["steps"] == 5 and run.settings["batch_size"] == 2
        assert (run.preset == "tiny") == (run.stage != "joint")  # joint: the gan run's model
        assert run.device == "cpu" and not resume
    frozen = calls[2][0] if calls[2][0].sets else calls[3][0]
    assert frozen.sets == ("model.freeze_parser=true",)
    assert str(calls[1][0].init).endswith("runs/s0/parser/parser.safetensors")
    assert calls[2][0].init == calls[1][0].out  # the joint runs start from the gan run
    # a run resolves to its config through the stage API, as the default runner does (from the
    # gan run's checkpoint here: this runner's state.pt files are empty)
    joint = replace(calls[2][0], init=calls[1][0].out / "model.safetensors")
    assert joint.config().model.freeze_parser == (calls[2][0] is frozen)
    assert calls[0][0].config().preset == "tiny" and calls[0][0].config().steps == 5
    assert set(result.scores) == {"frozen", "joint"} and set(result.scores["joint"]) == {0, 1}
    table = result.paths["joint-vs-frozen"]["markdown"].read_text()
    assert table.count("| joint ") == 1 and "±" in table
    assert len(scorer.scored) == 4
    assert (tmp_path / "joint-vs-frozen_grid.png").is_file()

    # everything finished: nothing is trained or scored again
    calls.clear()
    scorer.scored.clear()
    run_comparison(experiments, tmp_path, data_spec, budget, [0, 1], scorer, runner=runner)
    assert calls == [] and scorer.scored == []

    # an interrupted joint run (state, no done.json) resumes; its scores are redone only if gone
    (tmp_path / "runs" / "s1" / "joint-joint" / "done.json").unlink()
    shutil.rmtree(tmp_path / "eval" / "joint" / "s1")
    run_comparison(experiments, tmp_path, data_spec, budget, [0, 1], scorer, runner=runner)
    assert [(run.stage, resume) for run, resume in calls] == [("joint", True)]
    assert len(scorer.scored) == 1

    # other options for a finished run are refused, not silently mixed
    from faceedit.errors import ConfigError

    other = Budget(preset="tiny", steps=6, batch_size=2, device="cpu", num_workers=0)
    with pytest.raises(ConfigError, match="another --out"):
        run_comparison(experiments, tmp_path, data_spec, other, [0], scorer, runner=runner)
    # a finished run recorded by an older faceedit (a command line) is not guessed at
    marker = tmp_path / "runs" / "s0" / "parser" / "done.json"
    marker.write_text(json.dumps({"stage": "parser", "argv": ["--seed", "0"]}))
    with pytest.raises(ConfigError, match="older faceedit"):
        run_comparison(experiments, tmp_path, data_spec, budget, [0], scorer, runner=runner)


def test_a_score_without_a_metric_the_tables_show_stops_at_the_first_run(
    tmp_path: Path, tiny_model: Path, tiny_parser: Path
) -> None:
    """A misspelt metric key fails when the first checkpoint is scored, before any other run
    trains, not when the tables come out empty at the end."""
    from faceedit.errors import ConfigError

    class Misspelt(FakeScorer):
        def score(self, checkpoint: Path, folder: Path) -> dict[str, Any]:
            self.scored.append(checkpoint)
            return {"qualty": 1.0}

    calls: list[tuple[StageRun, bool]] = []
    scorer = Misspelt()
    budget = Budget(preset="tiny", steps=5, batch_size=2, device="cpu", num_workers=0)
    with pytest.raises(ConfigError, match=r"without \['quality'\]"):
        run_comparison(
            get_experiments("joint-vs-frozen"),
            tmp_path,
            Data("celeba", ("folders", "faces")),
            budget,
            [0, 1],
            scorer,
            runner=recording_runner(calls, tiny_model, tiny_parser),
        )
    assert len(scorer.scored) == 1 and len(calls) == 3  # parser, gan, one joint run
    assert not list((tmp_path / "eval").rglob("scores.json"))


def test_baseline_and_low_label_variants_are_defined_by_their_settings(
    tmp_path: Path, tiny_model: Path, tiny_parser: Path
) -> None:
    """The global-only baseline has no regions; the boxes variant takes keypoint boxes; the
    low-label variants limit the parser's labels in the parser and joint stages alike; every
    variant but the joint ones freezes the parser in the joint stage (same GAN budget)."""
    calls: list[tuple[StageRun, bool]] = []
    runner = recording_runner(calls, tiny_model, tiny_parser)
    budget = Budget(preset="tiny", steps=1, settings=("gan_optim.critic_warmup=0",))
    run_comparison(
        get_experiments("hierarchy") + get_experiments("low-label"),
        tmp_path,
        Data("celeba", ("affectnet", "an"), align="landmarks"),
        budget,
        [0],
        FakeScorer(),
        runner=runner,
    )
    by_out = {run.out.name: run for run, _ in calls}
    assert "model.regions=" in by_out["gan-global"].sets
    assert "model.region_source=boxes" in by_out["gan-boxes"].sets
    assert "data.parser_label_fraction=0.1" in by_out["parser-low"].sets
    assert "data.parser_label_fraction=0.1" in by_out["joint-low-joint"].sets
    for name in ("global", "boxes", "frozen", "low-frozen"):
        assert "model.freeze_parser=true" in by_out[f"joint-{name}"].sets
    for name in ("joint", "low-joint"):
        assert "model.freeze_parser=true" not in by_out[f"joint-{name}"].sets
    for name, run in by_out.items():
        if not name.startswith("parser"):
            assert "gan_optim.critic_warmup=0" in run.sets
            assert run.settings["data.align"] == "landmarks"
    assert set(VARIANTS) >= set(EXPERIMENTS["hierarchy"].variants)


def test_compare_needs_datasets_and_a_known_experiment(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train_main(
        ["compare", "joint-vs-frozen", "--out", str(tmp_path), "--folders", str(data["faces"])]
    )
    assert code == 2
    assert "--celebamask-hq" in capsys.readouterr().err
    code = train_main(["compare", "hierarchy", "--out", str(tmp_path), "--world", str(tmp_path)])
    assert code == 2 and "world.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["compare", "no-such-experiment", "--out", str(tmp_path)])
