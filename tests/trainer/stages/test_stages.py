"""A few real iterations of each `faceedit-train` stage on fixture datasets, the checkpoints they
write opened by the app's engine, and the joint stage's gradient flow into the parser. (The
stage commands' flags and errors: tests/trainer/commands/test_stage_commands.py; the config:
tests/trainer/test_config.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from faceedit.inference.engine import EditEngine
from faceedit.model.config import ModelConfig
from faceedit.model.parsing import build_parser
from tests.trainer.fixtures import write_celebamask_hq
from tests.trainer.stage_runs import FAST, load_state, random_crop, train
from trainer.config import (
    TrainConfig,
    default_config,
    merge,
)
from trainer.stages.parser import parsing_train_set


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and a busy CI machine is not oversubscribed.
    (Child processes get OMP_NUM_THREADS from torch.get_num_threads(), so they match.)"""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


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


@pytest.mark.slow
def test_bisenet_parser_trains_with_sgd_and_auxiliary_heads(bisenet_vs_unet: Path) -> None:
    # bisenet-vs-unet trained it: `faceedit-train parser --set model.parser.kind=bisenet`.
    out = bisenet_vs_unet / "runs" / "s0" / "parser-bisenet"
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


@pytest.mark.slow
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
    out = joint_vs_frozen / "runs" / "s0" / "joint-frozen"
    assert load_state(out)["config"]["model"]["freeze_parser"] is True
    before = load_state(joint_vs_frozen / "runs" / "s0" / "gan")["stage"]["modules"]["parser"]
    after = load_state(out)["stage"]["modules"]["parser"]
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert "parser" not in load_state(out)["stage"]["optimizers"]


# ---------------------------------------------------------------------------- command line


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
