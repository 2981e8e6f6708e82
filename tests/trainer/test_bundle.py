"""`faceedit-train bundle`: a trained checkpoint becomes the model faceedit ships: parser and
generator only, the same weights, and a table of each expression's training photos and
measured share that the app reads; too large a file is refused without touching the old one."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.errors import CheckpointError, InputError
from faceedit.faces.align import face_oval
from faceedit.inference.engine import EditEngine
from faceedit.weights import checkpoint
from faceedit.weights.expression_facts import ExpressionFacts, read_facts
from tests.trainer.fixtures import FacialExpressionsPhoto, write_facial_expressions
from trainer.bundle import bundle
from trainer.commands.cli import main
from trainer.config import DataConfig, default_config, save_yaml
from trainer.data.facial_expressions import LABELS, read_legend, split_files

# Per identity, one photo of each label: happy and neutral are common, fear is rare.
PEOPLE = 20
LABELS_PER_PERSON = ("happiness", "neutral", "neutral")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("facial-expressions")
    photos = [
        FacialExpressionsPhoto(f"Person_{p:02d}_{k + 1:04d}.jpg", label)
        for p in range(PEOPLE)
        for k, label in enumerate(LABELS_PER_PERSON)
    ]
    photos.append(FacialExpressionsPhoto("Person_00_0009.jpg", "fear"))
    write_facial_expressions(root, photos)
    return root


def train_counts(root: Path) -> Counter[str]:
    """The training split's photos per expression, counted from the legend and the split."""
    rows, _ = read_legend(root / "data" / "legend.csv", lambda *_: None)
    return Counter(LABELS[rows[name].label.lower()] for name in split_files(root)["train"])


def write_report(path: Path, teachable: list[str]) -> Path:
    """report.json as `faceedit-train real-faces-score` writes it (the parts bundle reads)."""
    target = {"target": "happy", "edits": 20, "mean_probability": 0.6, "read_as": {}}
    report = {
        "editors": [
            {
                "editor": "product",
                "photos": 20,
                "targets": {
                    "happy": target | {"read_as_target": 0.62},
                    "surprised": target | {"target": "surprised", "read_as_target": None},
                },
                "locked": {},
            },
            {"editor": "identity", "targets": {"happy": target | {"read_as_target": 0.01}}},
        ],
        "judge": {"teachable": {"teachable": teachable, "accuracy": 0.8, "per_class": {}}},
    }
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


@pytest.fixture
def run(tmp_path: Path, tiny_model: Path, data: Path) -> Path:
    """A gan run folder: its checkpoint (parser, generator, critics) and its config.yaml."""
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(tiny_model, folder / "model.safetensors")
    config = default_config("gan", "tiny").replace(
        data=DataConfig(facial_expressions=str(data), min_class_images=5)
    )
    (folder / "config.yaml").write_text(save_yaml(config), encoding="utf-8")
    return folder


def test_the_bundle_keeps_what_the_app_runs_and_says_what_was_trained(
    run: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = write_report(tmp_path / "report.json", ["neutral", "happy"])
    out = tmp_path / "assets" / "real.safetensors"
    code = main(["bundle", "--checkpoint", str(run), "--report", str(report), "--out", str(out)])
    assert code == 0
    source = checkpoint.load(run / "model.safetensors")
    shipped = checkpoint.load(out)
    assert shipped.contents == ("parser", "generator"), "no critics in the shipped file"
    for part in ("parser", "generator"):
        ours, theirs = getattr(shipped, part).state_dict(), getattr(source, part).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert out.stat().st_size < (run / "model.safetensors").stat().st_size
    assert shipped.metadata["trained_steps"] == source.metadata["trained_steps"]
    assert shipped.metadata["bundle"]["min_class_images"] == 5

    counts = train_counts(data)
    assert counts["happy"] >= 5 and counts["fearful"] <= 1, "the fixture's premise"
    facts = read_facts(shipped.metadata)
    assert facts is not None and len(facts) == 8
    assert facts["happy"] == ExpressionFacts(True, 0.62, counts["happy"])
    assert facts["neutral"] == ExpressionFacts(True, None, counts["neutral"])
    assert facts["surprised"] == ExpressionFacts(False, None, 0)
    assert facts["fearful"] == ExpressionFacts(False, None, counts["fearful"])
    assert EditEngine.load(out, device="cpu").capabilities.can_edit
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "happy: held-out edits read as happy 62 %" in printed


def test_without_the_runs_data_trained_comes_from_the_report(run: Path, tmp_path: Path) -> None:
    (run / "config.yaml").unlink()
    report = write_report(tmp_path / "report.json", ["neutral", "happy", "sad"])
    path, table = bundle(run / "model.safetensors", report, tmp_path / "real.safetensors")
    assert read_facts(checkpoint.load(path).metadata) == table
    assert [n for n, row in table.items() if row.trained] == ["neutral", "happy", "sad"]
    assert all(row.photos is None for row in table.values())
    assert table["happy"].read_as_target == 0.62


def test_edit_area_face_keeps_the_edit_on_the_face(run: Path, tmp_path: Path) -> None:
    report = write_report(tmp_path / "report.json", ["neutral", "happy"])
    kept, _ = bundle(run, report, tmp_path / "kept.safetensors")
    assert checkpoint.load(kept).config.edit_area == "crop"  # as the checkpoint said
    face, _ = bundle(run, report, tmp_path / "face.safetensors", edit_area="face")
    engine = EditEngine.load(face, device="cpu")
    assert engine.config is not None and engine.config.edit_area == "face"
    crop = np.full((engine.crop_size, engine.crop_size, 3), 128, np.uint8)
    weight = engine.edit(crop, {"happy": 1.0}).weight
    oval = face_oval(engine.crop_size)
    assert np.all(weight[oval == 0] == 0)  # nothing pasted off the face


def test_min_class_images_overrides_the_runs_own(run: Path, data: Path, tmp_path: Path) -> None:
    report = write_report(tmp_path / "report.json", ["neutral", "happy"])
    happy = train_counts(data)["happy"]
    _, table = bundle(run, report, tmp_path / "real.safetensors", min_class_images=happy + 1)
    assert not table["happy"].trained and table["happy"].photos == happy


def test_a_bundle_over_the_limit_is_refused_and_the_old_file_kept(
    run: Path, tmp_path: Path
) -> None:
    report = write_report(tmp_path / "report.json", ["happy"])
    out = tmp_path / "real.safetensors"
    out.write_bytes(b"the shipped model")
    with pytest.raises(CheckpointError, match=r"would weigh 0\.\d MB, more than the 0 MB"):
        bundle(run, report, out, max_bytes=1000)
    assert out.read_bytes() == b"the shipped model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.safetensors", "report.json", "run"]


def test_a_checkpoint_that_cannot_edit_or_a_foreign_report_is_refused(
    run: Path, tiny_parser: Path, tmp_path: Path
) -> None:
    report = write_report(tmp_path / "report.json", ["happy"])
    with pytest.raises(CheckpointError, match="needs the parser and the generator"):
        bundle(tiny_parser, report, tmp_path / "a.safetensors")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"editors": [{"editor": "identity", "targets": {}}]}))
    with pytest.raises(InputError, match="'product' editor"):
        bundle(run, foreign, tmp_path / "b.safetensors")
    assert not (tmp_path / "a.safetensors").exists() and not (tmp_path / "b.safetensors").exists()
