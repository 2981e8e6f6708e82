"""The joint stage's parser: what trains it, what it sees in eval mode, and what is exported.

GanStage is built directly on small in-memory datasets, so each test runs single iterations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from faceedit.weights import checkpoint
from tests.trainer.stages.in_memory import IN_MEMORY_SETTINGS, stage_on_tensors
from trainer.config import TrainConfig, default_config, merge
from trainer.stages.gan import GanStage, InitialWeights
from trainer.stages.steps import discriminator_step


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def joint_config(**updates: object) -> TrainConfig:
    return merge(default_config("joint", "tiny"), {**IN_MEMORY_SETTINGS, **updates})


def joint_stage(config: TrainConfig, init: InitialWeights | None = None) -> GanStage:
    return stage_on_tensors(config, init)


def clone_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def batch_norm_statistics(module: nn.Module) -> dict[str, Tensor]:
    return {k: v for k, v in clone_state(module).items() if "running_" in k}


def test_the_discriminator_pass_leaves_a_trained_parsers_batchnorm_statistics() -> None:
    stage = joint_stage(joint_config())
    assert stage.train_parser and stage.parser_net.training
    before = batch_norm_statistics(stage.parser_net)
    assert before, "the tiny parser has BatchNorm statistics"
    discriminator_step(stage.model, stage.discriminator, stage._next_batch(), stage.config.loss)
    after = batch_norm_statistics(stage.parser_net)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert stage.parser_net.training  # the mode is restored for the parser's own phase


def parser_weights(stage: GanStage) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in stage.parser_net.named_parameters()}


@pytest.mark.parametrize(("weight", "moves"), [(0.0, False), (1.0, True)])
def test_without_its_loss_the_parser_moves_only_on_generator_steps(
    weight: float, moves: bool
) -> None:
    stage = joint_stage(
        joint_config(**{"loss.parser_loss_weight": weight, "gan_optim.n_critic": 2})
    )
    start = parser_weights(stage)
    stage.train_step(0)  # generator phase: GAN gradients reach the parser
    after_generator = parser_weights(stage)
    assert any(not torch.equal(start[k], after_generator[k]) for k in start)
    stage.train_step(1)  # discriminator only: no GAN gradient for the parser
    after_critic = parser_weights(stage)
    changed = [k for k in start if not torch.equal(after_generator[k], after_critic[k])]
    assert bool(changed) == moves, changed


def test_export_pairs_the_ema_generator_with_the_trained_parser(tmp_path: Path) -> None:
    stage = joint_stage(joint_config(**{"gan_optim.n_critic": 1}))
    initial_parser = clone_state(stage.parser_net)
    for step in range(2):
        stage.train_step(step)
    loaded = checkpoint.load(stage.export(tmp_path, 2))
    assert loaded.parser is not None and loaded.generator is not None
    exported_parser = loaded.parser.state_dict()
    trained = clone_state(stage.parser_net)
    assert all(torch.equal(exported_parser[k], trained[k]) for k in trained)
    assert any(not torch.equal(exported_parser[k], initial_parser[k]) for k in trained)
    exported_generator = loaded.generator.state_dict()
    ema, raw = clone_state(stage.ema), clone_state(stage.generator_net)
    assert all(torch.equal(exported_generator[k], ema[k]) for k in ema)
    assert any(not torch.equal(exported_generator[k], raw[k]) for k in raw)


def test_critics_from_init_skip_the_critic_warm_up() -> None:
    """A warm-up is for fresh critics (as the attention start is for a fresh generator): a
    joint stage whose critics come from its gan run trains the generator from its first step,
    even when the warm-up set for the gan stage (--quick's, or a shared --set) reaches it."""
    from trainer.stages.joint import skip_warmup_of_warm_critics

    config = joint_config(**{"gan_optim.critic_warmup": 100, "gan_optim.n_critic": 1})
    fresh = joint_stage(skip_warmup_of_warm_critics(config, InitialWeights()))
    assert fresh.config.gan_optim.critic_warmup == 100 and fresh.g_updates_before(50) == 0
    assert not any(name.startswith("g/") for name in fresh.train_step(0))
    critics = InitialWeights(discriminator=fresh.discriminator_net.state_dict(), source="a gan run")
    warm_config = skip_warmup_of_warm_critics(config, critics)
    assert warm_config.gan_optim.critic_warmup == 0 and warm_config.gan_optim.n_critic == 1
    warm = joint_stage(warm_config, critics)
    assert warm.g_updates_before(50) == 50
    assert any(name.startswith("g/") for name in warm.train_step(0))
