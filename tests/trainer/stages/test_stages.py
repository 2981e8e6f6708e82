"""A few real iterations of each `faceedit-train` stage on fixture datasets, the checkpoints they
write opened by the app's engine, the joint stage's gradient flow into the parser, and the
command line (help, config resolution, clear errors)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from faceedit.errors import ConfigError
from faceedit.inference.engine import EditEngine
from faceedit.model.config import ModelConfig
from faceedit.model.parsing import build_parser
from tests.trainer.fixtures import AffectNetRow, write_affectnet, write_celebamask_hq, write_rafd
from trainer.commands.cli import main
from trainer.commands.parser import parsing_train_set
from trainer.config import (
    TrainConfig,
    apply_overrides,
    check_resumable,
    default_config,
    describe_differences,
    merge,
)

# Tiny model, 32 px, batches of 4, no worker processes, every step logged.
FAST = ["--preset", "tiny", "--batch-size", "4", "--num-workers", "0", "--log-every", "1"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and a busy CI machine is not oversubscribed.
    (Child processes get OMP_NUM_THREADS from torch.get_num_threads(), so they match.)"""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def write_datasets(root: Path) -> dict[str, Path]:
    """CelebAMask-HQ (about 32 training faces), RaFD (64 images) and AffectNet (40 rows, some
    without valence/arousal) in their real layouts."""
    paths = {"celeb": root / "celebamask", "rafd": root / "rafd", "affectnet": root / "affectnet"}
    write_celebamask_hq(paths["celeb"], range(40))
    write_rafd(paths["rafd"], subjects=range(1, 9), emotions=("happy", "angry", "sad", "neutral"))
    rows = [
        AffectNetRow(
            path=f"{i % 3}/face{i}.jpg",
            expression=i % 8,
            valence=-2.0 if i % 4 == 0 else 0.3,
            arousal=-2.0 if i % 4 == 0 else -0.2,
        )
        for i in range(40)
    ]
    write_affectnet(paths["affectnet"], rows)
    return paths


def train(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def load_state(run: Path) -> dict[str, Any]:
    return torch.load(run / "state.pt", weights_only=True)


def random_crop(size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets, a 2-step parser run and a 2-step gan run on AffectNet, shared by the module."""
    root = tmp_path_factory.mktemp("stages")
    paths = write_datasets(root / "data")
    paths["parser_run"], paths["gan_run"] = root / "p1", root / "g1"
    assert (
        train(
            "parser",
            "--celebamask-hq",
            paths["celeb"],
            *FAST,
            "--steps",
            2,
            "--out",
            paths["parser_run"],
        )
        == 0
    )
    assert (
        train(
            "gan",
            "--affectnet",
            paths["affectnet"],
            "--parser",
            paths["parser_run"] / "parser.safetensors",
            *FAST,
            "--steps",
            2,
            "--set",
            "gan_optim.n_critic=1",
            "--out",
            paths["gan_run"],
        )
        == 0
    )
    return paths


# ---------------------------------------------------------------------------- stages


def test_parser_stage_writes_a_parser_the_engine_uses(runs: dict[str, Path]) -> None:
    run = runs["parser_run"]
    engine = EditEngine.load(run / "parser.safetensors", device="cpu")
    assert engine.capabilities.can_parse and not engine.capabilities.can_edit
    parsing = engine.parse(random_crop())
    assert parsing.labels.shape == (32, 32) and parsing.probabilities.shape == (19, 32, 32)
    state = load_state(run)
    assert state["step"] == 2 and state["stage_name"] == "parser"
    assert state["loaders"]["celebamask_hq"] == {"epoch": 0, "index": 2}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["steps"] == 2 and saved["preset"] == "tiny"
    assert TrainConfig.from_dict(saved) == TrainConfig.from_dict(state["config"])
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_bisenet_parser_trains_with_sgd_and_auxiliary_heads(bisenet_vs_unet: Path) -> None:
    # bisenet-vs-unet trained it: `faceedit-train parser --set model.parser.kind=bisenet`.
    out = bisenet_vs_unet / "runs" / "parser-bisenet"
    assert load_state(out)["config"]["model"]["parser"]["kind"] == "bisenet"
    optimizer = load_state(out)["stage"]["optimizers"]["parser"]
    assert optimizer["param_groups"][0]["momentum"] == 0.9  # SGD, the community recipe
    assert {g["weight_decay"] for g in optimizer["param_groups"]} == {5e-4, 0.0}
    engine = EditEngine.load(out / "parser.safetensors", device="cpu")
    assert engine.config is not None and engine.config.parser.kind == "bisenet"
    assert engine.parse(random_crop()).labels.shape == (32, 32)


def test_gan_stage_writes_a_model_the_engine_edits_with(runs: dict[str, Path]) -> None:
    run = runs["gan_run"]
    engine = EditEngine.load(run / "model.safetensors", device="cpu")
    caps = engine.capabilities
    assert caps.can_parse and caps.can_edit and caps.can_score
    assert caps.valence_arousal  # AffectNet's continuous labels are used when present
    crop = random_crop()
    result = engine.edit(crop, {"happy": 1.0})
    assert result.crop.shape == crop.shape and result.attention.shape == (5, 32, 32)
    assert engine.expression_scores(crop).shape == (8,)
    state = load_state(run)
    modules = state["stage"]["modules"]
    assert set(modules) == {"parser", "generator", "ema", "discriminator"}
    # The parser is frozen in this stage: exactly the stage-1 weights.
    parser_state = load_state(runs["parser_run"])["stage"]["modules"]["parser"]
    assert all(torch.equal(parser_state[k], modules["parser"][k]) for k in parser_state)
    # The EMA moved towards the trained generator but is not it.
    differs = [not torch.equal(modules["ema"][k], modules["generator"][k]) for k in modules["ema"]]
    assert any(differs)


def test_gan_stage_on_rafd_with_keypoint_boxes_needs_no_parser(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "boxes"
    code = train(
        "gan",
        "--rafd",
        runs["rafd"],
        *FAST,
        "--steps",
        1,
        "--set",
        "model.region_source=boxes",
        "--out",
        out,
    )
    assert code == 0
    engine = EditEngine.load(out / "model.safetensors", device="cpu")
    assert engine.config is not None and engine.config.region_source == "boxes"
    from faceedit.faces.align import template_landmarks

    result = engine.edit(random_crop(), {"surprised": 1.0}, landmarks=template_landmarks(32))
    assert result.region_masks.max() == 1.0  # hard boxes


def _joint(runs: dict[str, Path], out: Path, *extra: str) -> int:
    return train(
        "joint",
        "--affectnet",
        runs["affectnet"],
        "--celebamask-hq",
        runs["celeb"],
        "--init",
        runs["gan_run"],
        *FAST,
        "--steps",
        2,
        "--set",
        "gan_optim.n_critic=1",
        *extra,
        "--out",
        out,
    )


def _parameter_names(config: dict[str, Any]) -> list[str]:
    parser = build_parser(ModelConfig.from_dict(config["model"]).parser)
    return [name for name, _ in parser.named_parameters()]


def test_joint_stage_gan_gradients_reach_the_parser(runs: dict[str, Path], tmp_path: Path) -> None:
    # With the parser's own loss switched off, only the GAN losses can move its weights.
    out = tmp_path / "joint"
    assert _joint(runs, out, "--set", "loss.parser_loss_weight=0") == 0
    before = load_state(runs["gan_run"])["stage"]["modules"]["parser"]
    state = load_state(out)
    after = state["stage"]["modules"]["parser"]
    changed = [k for k in _parameter_names(state["config"]) if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 4, "GAN gradients did not reach the parser"
    engine = EditEngine.load(out / "model.safetensors", device="cpu")
    assert engine.edit(random_crop(), {"sad": 1.0}).crop.shape == (32, 32, 3)


def test_joint_stage_with_the_parser_frozen_leaves_it_bitwise_unchanged(
    joint_vs_frozen: Path,
) -> None:
    # joint-vs-frozen trained it: `faceedit-train joint --init GAN --set model.freeze_parser=true`.
    out = joint_vs_frozen / "runs" / "joint-frozen"
    assert load_state(out)["config"]["model"]["freeze_parser"] is True
    before = load_state(joint_vs_frozen / "runs" / "gan")["stage"]["modules"]["parser"]
    after = load_state(out)["stage"]["modules"]["parser"]
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert "parser" not in load_state(out)["stage"]["optimizers"]


# ---------------------------------------------------------------------------- command line


@pytest.mark.parametrize("stage", ["parser", "gan", "joint"])
def test_help_explains_every_flag(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([stage, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--out",
        "--resume",
        "--preset",
        "--set",
        "--config",
        "--steps",
        "--batch-size",
        "--device",
        "--num-workers",
        "--seed",
        "--checkpoint-every",
        "--log-every",
    ):
        assert flag in text
    expected = {
        "parser": ["--celebamask-hq"],
        "gan": ["--affectnet", "--rafd", "--folders", "--parser"],
        "joint": ["--init", "--celebamask-hq", "--affectnet"],
    }[stage]
    assert all(flag in text for flag in expected)


def test_a_missing_dataset_root_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train(
        "parser", "--celebamask-hq", tmp_path / "nowhere", *FAST, "--out", tmp_path / "run"
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--celebamask-hq" in err and "no such folder" in err and "Traceback" not in err


def test_an_empty_dataset_root_names_what_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code = train(
        "gan",
        "--rafd",
        tmp_path / "empty",
        *FAST,
        "--set",
        "model.region_source=boxes",
        "--out",
        tmp_path / "run",
    )
    err = capsys.readouterr().err
    assert code == 2 and "RaFD" in err and "Traceback" not in err


def test_a_bad_crop_alignment_is_a_clear_error(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train(
        "gan",
        "--rafd",
        runs["rafd"],
        *FAST,
        "--set",
        "model.region_source=boxes",
        "--set",
        "data.align=sideways",
        "--out",
        tmp_path / "run",
    )
    err = capsys.readouterr().err
    assert code == 2 and "sideways" in err and "Traceback" not in err


def test_gan_without_a_parser_says_how_to_get_one(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train("gan", "--rafd", runs["rafd"], *FAST, "--out", tmp_path / "run")
    assert code == 2 and "--parser" in capsys.readouterr().err


def test_an_existing_run_is_never_overwritten(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = train("parser", "--celebamask-hq", runs["celeb"], *FAST, "--out", runs["parser_run"])
    assert code == 2 and "--resume" in capsys.readouterr().err


def test_parser_and_joint_stages_read_one_celebamask_training_set(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, range(12))
    config = merge(
        default_config("joint", "tiny"), {"data.celebamask_hq": str(tmp_path), "seed": 4}
    )
    dataset = parsing_train_set(config)
    assert (dataset.split, dataset.size) == ("train", config.model.parser.resolution)
    assert dataset.seed == 4 and dataset.augment is not None  # augmented by default
    plain = parsing_train_set(merge(config, {"data.augment": False}))
    assert plain.augment is None and plain.ids == dataset.ids


# ---------------------------------------------------------------------------- configuration


def test_overrides_are_parsed_by_field_type() -> None:
    base = default_config("joint", "tiny")
    config = apply_overrides(
        base,
        [
            "model.region_source=boxes",
            "model.freeze_parser=yes",
            "model.regions=brows,mouth",
            "model.parser.mean=[0.1, 0.2, 0.3]",
            "loss.cycle=2.5",
            "gan_optim.n_critic=3",
            "steps=1_000",
        ],
    )
    assert config.model.region_source == "boxes" and config.model.freeze_parser is True
    assert config.model.regions == ("brows", "mouth")
    assert config.model.parser.mean == (0.1, 0.2, 0.3)
    assert config.loss.cycle == 2.5 and config.gan_optim.n_critic == 3 and config.steps == 1000
    text = describe_differences(config, base)
    assert "model.region_source: 'boxes'" in text and "loss.cycle" in text and "seed" not in text
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("assignment", "named"),
    [
        ("model.parser.kind=resnet", "'resnet'"),
        ("loss.cycle=lots", "'lots'"),
        ("batch_size=0", "batch_size"),
        ("gan_optim.ema_decay=1.5", "1.5"),
        ("model.regions=brows,ears", "ears"),
        ("loss.cylce=1", "cylce"),
        ("model.freeze_parser=maybe", "maybe"),
        ("model.parser.kind=bisenet", "at least 2 images"),  # with batch_size=1 below
    ],
)
def test_bad_values_are_refused_by_name(assignment: str, named: str) -> None:
    base = default_config("joint", "tiny").replace(batch_size=1)
    with pytest.raises(ConfigError, match=named.replace("[", r"\[")):
        apply_overrides(base, [assignment])


def test_yaml_values_merge_and_resume_refuses_a_different_experiment(tmp_path: Path) -> None:
    base = default_config("gan", "tiny")
    config = merge(base, {"loss": {"cycle": 3, "attention_tv": 0}, "model": {"regions": ["eyes"]}})
    assert config.loss.cycle == 3.0 and config.model.regions == ("eyes",)
    check_resumable(config, config.replace(steps=10, log_every=5))  # allowed changes
    with pytest.raises(ConfigError, match=r"loss\.cycle"):
        check_resumable(config, merge(config, {"loss.cycle": 4}))


def test_a_config_file_and_flags_combine_with_set_winning(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    config_file = tmp_path / "cfg.yaml"
    config_file.write_text("preset: tiny\nsteps: 5\nseed: 7\nloss:\n  parser_loss_weight: 0.5\n")
    out = tmp_path / "run"
    code = train(
        "parser",
        "--celebamask-hq",
        runs["celeb"],
        "--config",
        config_file,
        "--batch-size",
        "4",
        "--num-workers",
        "0",
        "--steps",
        "1",
        "--set",
        "seed=9",
        "--out",
        out,
    )
    assert code == 0
    saved = TrainConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text()))
    assert (saved.preset, saved.steps, saved.seed, saved.loss.parser_loss_weight) == (
        "tiny",
        1,
        9,
        0.5,
    )
