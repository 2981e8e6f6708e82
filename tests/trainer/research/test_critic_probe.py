"""The critic probe: the critics' reading of the true edit against the model's own edit."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from faceedit.errors import ConfigError
from faceedit.model.config import preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.weights import checkpoint
from trainer.commands.cli import main
from trainer.research.critic_probe import held_out_pairs, probe_critics
from trainer.stages.warm_start import start_attention

# Research diagnostics train small models: the full suite runs them, the daily tier does not.
pytestmark = pytest.mark.slow


def gan_checkpoint(folder: Path, keep: float) -> Path:
    """A world-64 model (valence/arousal on, as a gan run on AffectNet) whose editors keep
    `keep` of every pixel, with fresh critics."""
    config = preset("world-64").replace(valence_arousal=True)
    torch.manual_seed(1)
    model = UnifiedModel(config)
    start_attention(model.generator, keep)
    return checkpoint.save(
        folder / "model.safetensors",
        config,
        parser=model.parser,
        generator=model.generator,
        discriminator=HierarchicalDiscriminator(config),
    )


def test_pairs_hold_every_source_and_target_of_an_identity(check_folder: Path) -> None:
    inputs, truths, labels = held_out_pairs(check_folder / "world", 1, 64, "rendered")
    assert inputs.shape == truths.shape == (56, 3, 64, 64) and labels.shape == (56, 2)
    assert bool((labels[:, 0] != labels[:, 1]).all())
    # the truth of (s, t) is the input of any pair whose source is t
    first = {int(t): truths[i] for i, (_, t) in enumerate(labels)}
    for i, (s, _) in enumerate(labels):
        assert torch.equal(inputs[i], first[int(s)])
    aligned, truths_aligned, _ = held_out_pairs(check_folder / "world", 1, 64, "landmarks")
    assert not torch.equal(aligned, inputs)  # warped by each input's own points
    assert not torch.equal(truths_aligned, truths)  # and each truth by its input's


def test_an_edit_that_keeps_its_input_reads_like_the_input(
    check_folder: Path, tmp_path: Path
) -> None:
    """Editors that keep every pixel: the critics read the edit as they read the input."""
    loaded = checkpoint.load(gan_checkpoint(tmp_path, 0.999999))
    probe = probe_critics(loaded, check_folder / "world", identities=1)
    assert probe.pairs == 56
    assert set(probe.truth) == {"global", *loaded.config.regions}
    inputs, _, labels = held_out_pairs(check_folder / "world", 1, 64, "rendered")
    model = UnifiedModel(loaded.config, loaded.parser, loaded.generator).eval()
    with torch.no_grad():
        logits = loaded.discriminator.eval()(
            inputs, model.region_masks(inputs).masks
        ).global_.logits
    expected = F.cross_entropy(logits, labels[:, 1]).item()
    assert probe.edit["global"].cross_entropy == pytest.approx(expected, abs=1e-3)
    source_p = logits.softmax(1)[torch.arange(56), labels[:, 0]].mean().item()
    assert probe.edit["global"].source_probability == pytest.approx(source_p, abs=1e-4)
    assert probe.real_accuracy["global"] == pytest.approx(
        (logits.argmax(1) == labels[:, 0]).float().mean().item()
    )


def test_own_masks_show_the_truth_through_its_own_parse(check_folder: Path, tmp_path: Path) -> None:
    """masks="own": the region critics read the truth through the truth's parse, not the
    input's (as gan_optim.critic_masks=own trains); the global critic sees the whole image
    either way."""
    loaded = checkpoint.load(gan_checkpoint(tmp_path, 0.5))
    torch.manual_seed(5)
    with torch.no_grad():  # critics and parser that tell masks apart
        for module in (loaded.discriminator, loaded.parser):
            for value in module.parameters():
                value.add_(0.3 * torch.randn_like(value))
    world = check_folder / "world"
    by_input = probe_critics(loaded, world, identities=1, masks="input")
    by_own = probe_critics(loaded, world, identities=1, masks="own")
    assert by_own.masks == "own" and by_own.to_dict()["masks"] == "own"
    assert by_own.truth["global"].cross_entropy == pytest.approx(
        by_input.truth["global"].cross_entropy
    )
    _, truths, labels = held_out_pairs(world, 1, 64, "rendered")
    model = UnifiedModel(loaded.config, loaded.parser, loaded.generator).eval()
    with torch.no_grad():
        seen = loaded.discriminator.eval()(truths, model.region_masks(truths).masks)
    expected = F.cross_entropy(seen.local["mouth"].logits, labels[:, 1]).item()
    assert by_own.truth["mouth"].cross_entropy == pytest.approx(expected, abs=1e-3)
    assert by_own.truth["mouth"].cross_entropy != pytest.approx(
        by_input.truth["mouth"].cross_entropy, abs=1e-3
    )
    with pytest.raises(ConfigError, match="masks must be one of"):
        probe_critics(loaded, world, identities=1, masks="parse")


def test_command_writes_the_report_and_refuses_a_model_without_critics(
    check_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = gan_checkpoint(tmp_path, 0.9)
    out = tmp_path / "probe.json"
    args = [
        "critic-probe",
        "--world",
        str(check_folder / "world"),
        "--identities",
        "1",
        "--threads",
        "1",
    ]
    assert (
        main(
            [
                *args,
                "--checkpoint",
                str(model),
                "--out",
                str(out),
                "--frame",
                "landmarks",
                "--masks",
                "own",
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["frame"] == "landmarks" and report["pairs"] == 56 and report["masks"] == "own"
    assert set(report["edit"]["mouth"]) == {
        "cross_entropy",
        "target_probability",
        "source_probability",
        "accuracy",
    }
    parser_only = check_folder / "runs" / "parser" / "parser.safetensors"
    assert main([*args, "--checkpoint", str(parser_only), "--out", str(tmp_path / "x.json")]) == 2
    assert "no critics" in capsys.readouterr().err


def test_the_check_evaluation_scores_a_model_and_probes_its_critics(
    check_folder: Path, tmp_path: Path
) -> None:
    """The learning check's scoring of its final model (check.evaluate), end to end on a tiny
    world: parser mIoU of both stages, the edits against the truth, the critic-noise control,
    locality and the critic probe, the probe in the frame and through the masks the joint
    run's config.yaml trained with."""
    from trainer.config import apply_overrides, default_config, save_yaml
    from trainer.judges.classifier import load_classifier
    from trainer.judges.learning.check import evaluate
    from trainer.judges.learning.plan import CheckPlan
    from trainer.stages.runner import CONFIG_FILE

    joint = tmp_path / "joint"
    joint.mkdir()
    gan_checkpoint(joint, 0.9)
    trained = apply_overrides(
        default_config("joint", "world-64"), ["data.align=landmarks", "gan_optim.critic_masks=own"]
    )
    (joint / CONFIG_FILE).write_text(save_yaml(trained))
    paths = {
        "world": check_folder / "world",
        "parser": check_folder / "runs" / "parser",
        "joint": joint,
    }
    judge = load_classifier(check_folder / "judge.safetensors").model
    plan = replace(CheckPlan.for_mode(0, quick=True), eval_identities=1)
    evaluation = evaluate(plan, paths, judge)
    scores = evaluation.scores
    assert scores.edits.edits == 8 * 7 and len(evaluation.edits) == 8 * 7
    assert len(evaluation.held_out.table) == 1
    assert scores.parser_final.miou is not None and 0.0 <= scores.parser_final.miou <= 1.0
    # the control: the same inputs with noise aimed at the model's critics, read by the judge
    control = scores.critic_noise
    assert control.edits.edits == 8 * 7 and control.critic_after > control.critic_before
    locality = scores.locality
    assert locality.locked_pixels > 0
    # What the app shows under a region lock leaves the lock's footprint bit-exact, whatever
    # the generator's own crop does there.
    assert locality.locked_parse_pixels > 0
    assert locality.locked_parse_changed == 0
    # Paste-back weighs the change by at most 1, so it never moves a pixel further.
    assert locality.outside_mean_change <= locality.outside_mean_change_raw + 1e-9
    assert scores.edits_generator_crop.edits == scores.edits.edits
    probe = scores.critic_probe
    assert probe is not None
    assert probe.frame == "landmarks" and probe.masks == "own" and probe.pairs == 8 * 7
    assert set(probe.truth) == {"global", "brows", "eyes", "nose", "mouth"}


def test_a_world_without_landmarks_is_refused_in_the_landmarks_frame(
    check_folder: Path, tmp_path: Path
) -> None:
    """The landmarks frame reads each input's points from the AffectNet lists; a world whose
    lists lost them gets a message naming the image, not a KeyError."""
    import shutil

    from faceedit.errors import DatasetError

    world = tmp_path / "world"
    shutil.copytree(check_folder / "world", world)
    lists = world / "affectnet" / "Manually_Annotated_file_lists"
    for csv_file in lists.glob("*.csv"):
        csv_file.write_text(csv_file.read_text().splitlines()[0] + "\n")  # header only
    with pytest.raises(DatasetError, match="has no landmarks"):
        held_out_pairs(world, 1, 64, "landmarks")
    assert held_out_pairs(world, 1, 64, "rendered")[2].shape == (
        56,
        2,
    )  # the other frame still works
