"""`faceedit-train compare`: each named experiment trains its variants and writes one table."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from trainer.commands.cli import main as train_main
from trainer.judges.evaluation import SUMMARY_METRICS
from trainer.judges.experiments import EXPERIMENTS, Budget, Data, Judges, run_comparison


@pytest.fixture
def data(compare_data: dict[str, Path]) -> dict[str, Path]:
    return compare_data


def check_outputs(out: Path, experiment: str) -> dict[str, object]:
    """The Markdown table has one row per variant and one column per metric; JSON agrees."""
    variants = [v.name for v in EXPERIMENTS[experiment].variants]
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
        assert summary["miou"] is not None and summary["identity_l1"] is not None
        assert (out / "eval" / name / "evaluation.json").is_file()
        assert (out / "runs" / f"joint-{name}" / "model.safetensors").is_file()
    assert payload["budget"]["seed"] == 3 and payload["budget"]["steps"] == 2
    return payload


@pytest.mark.slow
def test_joint_vs_frozen_end_to_end_with_classifier_and_fid(joint_vs_frozen: Path) -> None:
    out = joint_vs_frozen
    payload = check_outputs(out, "joint-vs-frozen")
    for name in ("joint", "frozen"):
        summary = payload["variants"][name]["summary"]  # type: ignore[index]  # JSON, typed object
        assert summary["expression_accuracy"] is not None and summary["fid"] is not None
    # one parser and one GAN run serve both variants
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
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
    assert payload["variants"]["boxes"]["settings"]["gan"] == ["model.region_source=boxes"]  # type: ignore[index]  # JSON, typed object


@pytest.mark.slow
def test_bisenet_vs_unet_end_to_end(bisenet_vs_unet: Path) -> None:
    out = bisenet_vs_unet
    check_outputs(out, "bisenet-vs-unet")
    assert "kind: bisenet" in (out / "runs" / "parser-bisenet" / "config.yaml").read_text()
    assert "kind: unet" in (out / "runs" / "parser-unet" / "config.yaml").read_text()
    assert "kind: bisenet" in (out / "runs" / "joint-bisenet" / "config.yaml").read_text()


def test_variants_share_budget_and_runs_and_a_rerun_resumes(
    data: dict[str, Path], tmp_path: Path, tiny_model: Path, tiny_parser: Path
) -> None:
    """With a recording runner (no training): every run gets the same budget flags, shared
    runs are trained once, and a second comparison resumes the runs instead of redoing them."""
    calls: list[tuple[str, list[str]]] = []

    def runner(stage: str, argv: Sequence[str]) -> None:
        calls.append((stage, list(argv)))
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "state.pt").write_bytes(b"")
        if stage == "parser":
            shutil.copyfile(tiny_parser, out / "parser.safetensors")
        else:
            shutil.copyfile(tiny_model, out / "model.safetensors")

    budget = Budget(preset="tiny", steps=5, batch_size=2, seed=11, device="cpu", num_workers=0)
    judges = Judges(limit=2, num_workers=0)
    data_spec = Data(str(data["celeba"]), ("folders", str(data["faces"])))
    result = run_comparison(
        EXPERIMENTS["joint-vs-frozen"], tmp_path, data_spec, budget, judges, runner=runner
    )
    assert [stage for stage, _ in calls] == ["parser", "gan", "joint", "joint"]
    for stage, argv in calls:
        assert argv[argv.index("--seed") + 1] == "11"
        assert argv[argv.index("--steps") + 1] == "5"
        assert argv[argv.index("--batch-size") + 1] == "2"
        assert ("--preset" in argv) == (stage != "joint")  # joint inherits the gan run's model
        assert "--resume" not in argv
    frozen = calls[3][1]
    assert frozen[frozen.index("--set") + 1] == "model.freeze_parser=true"
    assert "--set" not in calls[2][1]
    assert calls[1][1][calls[1][1].index("--parser") + 1].endswith("runs/parser/parser.safetensors")
    assert set(result.reports) == {"joint", "frozen"}
    assert result.paths["markdown"].read_text().count("| joint ") == 1

    calls.clear()
    run_comparison(
        EXPERIMENTS["joint-vs-frozen"], tmp_path, data_spec, budget, judges, runner=runner
    )
    assert len(calls) == 4 and all("--resume" in argv for _, argv in calls)


def test_compare_needs_both_datasets_and_a_known_experiment(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train_main(
        ["compare", "joint-vs-frozen", "--out", str(tmp_path), "--folders", str(data["faces"])]
    )
    assert code == 2
    assert "--celebamask-hq" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["compare", "no-such-experiment", "--out", str(tmp_path)])
