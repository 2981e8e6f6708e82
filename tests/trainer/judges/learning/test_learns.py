"""Slow: the real stages learn the procedural world. The parser parses held-out identities, and
a short GAN run moves the critics and the world judge towards the target expression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from faceedit.vocab.expressions import EXPRESSIONS
from tests.trainer.judges.conftest import SIZE
from trainer.judges.world.held_out import load_held_out
from trainer.judges.world.renderings import world_valence_arousal
from trainer.world.world import WorldConfig, build_world

EVERY_IDENTITY = 1_000_000  # held-out identities scored: all of the small world's

# The CI's short check: its worlds and stage settings are the world-64 recipe's variant `ci`
# (trainer/recipes/world-64.yaml, where the measurements behind them are), trained through the
# stage API as every entry point trains (tests/trainer/world_runs.py).

# Held-out mIoU of the short check's parser: the 0.8; measured 0.8071 (two threads,
# 126 s) and 0.8069 (one thread, 2800 steps), a small margin that two trajectories agree on.
PARSER_MIOU = 0.8


@pytest.fixture(scope="module")
def learned_parser(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A parser run through the real parser stage, and its world."""
    from tests.trainer.world_runs import ci_recipe, ci_stage_config
    from trainer.stages.api import train_stage

    check = ci_recipe().check
    assert check is not None and check.world_seed is not None
    root = tmp_path_factory.mktemp("parser-check")
    world = root / "world"
    build_world(WorldConfig(count=check.identities, size=SIZE, seed=check.world_seed), world)
    config = ci_stage_config("parser", world)
    train_stage(config, None, root / "parser", device="cpu", threads=2)
    return {"world": world, "parser": root / "parser"}


@pytest.fixture(scope="module")
def trained(
    learned_parser: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A small world of its own and a short gan run on it with the learned parser (the
    variant's critic warm-up, cheap, then a few GAN iterations), through the real gan stage, on
    landmark-aligned crops (the variant's data.align; why: the recipe's comment)."""
    from tests.trainer.world_runs import ci_recipe, ci_stage_config
    from trainer.stages.api import train_stage

    check = ci_recipe().check
    assert check is not None and check.gan_identities is not None
    root = tmp_path_factory.mktemp("learning")
    world = root / "world"
    build_world(
        WorldConfig(count=check.gan_identities, size=SIZE, seed=check.gan_world_seed or 0), world
    )
    gan_run = root / "gan"
    config = ci_stage_config("gan", world, learned_parser["parser"])
    train_stage(config, learned_parser["parser"], gan_run, device="cpu", threads=1)
    return {"world": world, "gan": gan_run}


def _parser_scores(trained: dict[str, Path]) -> tuple[Any, Any]:
    from faceedit.model.parsing import build_parser
    from faceedit.weights import checkpoint
    from trainer.data import CelebAMaskHQ
    from trainer.judges.evaluation import evaluate_parser

    loaded = checkpoint.load(trained["parser"] / "parser.safetensors")
    assert loaded.parser is not None
    held_out = CelebAMaskHQ(trained["world"] / "celebamask-hq", "test", size=SIZE, augment=False)
    torch.manual_seed(0)
    fresh = build_parser(loaded.config.parser)
    return evaluate_parser(loaded.parser, held_out).scores, evaluate_parser(fresh, held_out).scores


@pytest.mark.slow
def test_the_parser_learns_the_world(learned_parser: dict[str, Path]) -> None:
    """Held-out identities: every class of the world parsed (mIoU over the classes that occur),
    far better than by an untrained network, the large classes almost exactly."""
    scores, untrained = _parser_scores(learned_parser)
    assert scores.miou is not None and untrained.miou is not None
    assert scores.miou >= PARSER_MIOU, (scores.miou, scores.iou)
    assert scores.miou > 3 * untrained.miou
    assert scores.pixel_accuracy is not None and scores.pixel_accuracy >= 0.95
    names = scores.class_names
    for name in ("background", "skin", "hair"):
        iou = scores.iou[names.index(name)]
        assert iou is not None and iou >= 0.9, (name, iou)


def _edit_models(trained: dict[str, Path]) -> tuple[Any, Any]:
    """The gan run's checkpoint, and the same with its generator as it started (untrained)."""
    from faceedit.model.generator import HierarchicalGenerator
    from faceedit.weights import checkpoint
    from trainer.stages.warm_start import start_attention

    model = checkpoint.load(trained["gan"] / "model.safetensors")
    untrained = checkpoint.load(trained["gan"] / "model.safetensors")
    assert untrained.generator is not None
    torch.manual_seed(0)
    fresh = HierarchicalGenerator(untrained.config)
    start_attention(fresh, 0.9)  # where a world-64 gan run starts
    untrained.generator.load_state_dict(fresh.state_dict())
    return model, untrained


@pytest.mark.slow
def test_a_short_gan_run_makes_edits_that_depend_on_the_target(trained: dict[str, Path]) -> None:
    """The trained critic's expression head gives the target more probability on edits by the
    trained generator than on edits by the untrained one: the edits follow the target."""
    from faceedit.inference.engine import EditEngine
    from faceedit.model.regions import soft_region_masks
    from trainer.judges.evaluation import from_uint8_crops
    from trainer.judges.world.editors import engine_editor

    world = trained["world"]
    model, untrained = _edit_models(trained)
    critic = model.discriminator
    assert critic is not None and model.parser is not None
    critic.eval()
    va = world_valence_arousal(world)
    held_out = load_held_out(world, EVERY_IDENTITY)
    inputs = [held_out.crops[(ident, 0)] for ident in held_out.table]
    points = [held_out.points[(ident, 0)] for ident in held_out.table]
    probability = {}
    for name, loaded in (("trained", model), ("untrained", untrained)):
        engine = EditEngine(loaded, device="cpu", precision="float32", optimize_networks=False)
        edit = engine_editor(engine, va, shown=False)  # the generator's crop, as critics see it
        total = 0.0
        with torch.no_grad():
            for target in range(1, len(EXPRESSIONS)):
                x = from_uint8_crops(edit(inputs, points, target))
                regions = soft_region_masks(model.parser(x).logits, model.config.regions)
                logits = critic(x, regions).global_.logits[:, : len(EXPRESSIONS)]
                total += float(logits.softmax(1)[:, target].mean())
        probability[name] = total / (len(EXPRESSIONS) - 1)
    # measured +0.039 (0.166 against 0.126; chance 0.125). Before the learned parser this
    # fixture trained its own 200-step parser on the 40-identity world and asked for +0.05;
    # with the better parser the margin is smaller (docs/learning.md, "The CI version")
    assert probability["trained"] > probability["untrained"] + 0.02, probability


@pytest.mark.slow
def test_a_short_gan_run_moves_the_judge_towards_the_target(trained: dict[str, Path]) -> None:
    """The world judge (trained on real renderings of train identities, with its augmentation)
    gives the target expression more probability on edits by the trained generator than on
    edits by the untrained one."""
    from faceedit.inference.engine import EditEngine
    from tests.trainer.world_runs import ci_recipe
    from trainer.judges.world.editors import engine_editor
    from trainer.judges.world.judge import train_world_judge
    from trainer.judges.world.scorer import score_edits

    check = ci_recipe().check
    assert check is not None
    world = trained["world"]
    judge = train_world_judge(world, check.judge_steps, check.judge_width, log=lambda _: None)
    model, untrained = _edit_models(trained)
    va = world_valence_arousal(world)
    held_out = load_held_out(world, EVERY_IDENTITY)
    probability = {}
    for name, loaded in (("trained", model), ("untrained", untrained)):
        engine = EditEngine(loaded, device="cpu", precision="float32", optimize_networks=False)
        edit = engine_editor(engine, va)
        scores, _ = score_edits(edit, judge.model, held_out, sources=(0,))
        probability[name] = scores.mean_target_probability
    # measured +0.034 (0.144 against 0.110) with the ci variant's 600-step augmented judge
    assert probability["trained"] > probability["untrained"] + 0.01, probability
