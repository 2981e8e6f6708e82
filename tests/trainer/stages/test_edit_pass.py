"""One edit per GAN iteration: with the parser frozen, the critics' phase and the generator's
phase share the edit (steps.EditPass) and keep the losses and gradients they had apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn

from faceedit.model.config import preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from tests.trainer.conftest import one_thread
from tests.trainer.stages.in_memory import IN_MEMORY_SETTINGS, stage_on_tensors
from trainer.config import LossWeights, default_config, merge
from trainer.stages.gan import GanStage
from trainer.stages.steps import (
    discriminator_step,
    edit_pass,
    expression_batch,
    generator_step,
    set_requires_grad,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def _gradients(module: nn.Module) -> dict[str, Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("own_masks", [False, True])
def test_a_shared_edit_leaves_both_phases_losses_and_gradients_as_they_were(
    own_masks: bool,
) -> None:
    config = preset("tiny").replace(freeze_parser=True)
    torch.manual_seed(0)
    model = UnifiedModel(config).train()
    critic = HierarchicalDiscriminator(config)
    with torch.no_grad():
        model.generator.global_generator.heads.bias.fill_(-3.0)  # a visible edit
    size = config.crop_size
    batch = expression_batch(
        torch.rand(4, 3, size, size) * 2 - 1,
        torch.arange(4),
        torch.full((4, 2), float("nan")),
        config,
    )
    weights = LossWeights(fake_source_classification=0.2, edit_tv=1.0)

    def both_phases(shared: bool) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
        model.zero_grad(set_to_none=True)
        edit = edit_pass(model, batch, own_masks) if shared else None
        torch.manual_seed(1)  # the penalty's interpolation weights
        set_requires_grad(critic, True)
        d = discriminator_step(model, critic, batch, weights, own_masks=own_masks, edit=edit)
        sum(d.values()).backward()  # type: ignore[union-attr]
        # the critics' losses never reach the generator, shared edit or not
        assert not _gradients(model.generator)
        critic.zero_grad(set_to_none=True)
        set_requires_grad(critic, False)
        g = generator_step(model, critic, batch, weights, own_masks=own_masks, edit=edit)
        sum(g.values()).backward()  # type: ignore[union-attr]
        return d, g, _gradients(model.generator)

    d_apart, g_apart, grads_apart = both_phases(shared=False)
    d_shared, g_shared, grads_shared = both_phases(shared=True)
    assert d_apart.keys() == d_shared.keys() and "d/fake_cls" in d_shared
    assert g_apart.keys() == g_shared.keys() and "g/edit_tv" in g_shared
    for name in d_apart:
        torch.testing.assert_close(d_shared[name], d_apart[name], msg=name)
    for name in g_apart:
        torch.testing.assert_close(g_shared[name], g_apart[name], msg=name)
    assert grads_apart.keys() == grads_shared.keys() and grads_apart
    for name in grads_apart:
        torch.testing.assert_close(grads_shared[name], grads_apart[name], msg=name)


def _stage(stage_name: str, **updates: object) -> GanStage:
    base = {
        **IN_MEMORY_SETTINGS,
        "gan_optim.critic_warmup": 0,
        "gan_optim.n_critic": 1,
        "gan_optim.critic_masks": "own",
    }
    return stage_on_tensors(merge(default_config(stage_name, "tiny"), {**base, **updates}))


def _passes(stage: GanStage, steps: range) -> tuple[int, int]:
    """(generator passes, parser passes) over `steps`."""
    counts = {"generator": 0, "parser": 0}

    def count(name: str) -> Callable[..., None]:
        def hook(*_: object) -> None:
            counts[name] += 1

        return hook

    handles = [
        stage.generator_net.register_forward_pre_hook(count("generator")),
        stage.parser_net.register_forward_pre_hook(count("parser")),
    ]
    try:
        for step in steps:
            stage.train_step(step)
    finally:
        for handle in handles:
            handle.remove()
    return counts["generator"], counts["parser"]


def test_the_gan_stage_edits_and_parses_each_batch_once_per_iteration() -> None:
    stage = _stage("gan")
    # the edit and the cycle back; the input's parse and the edit's own (critic_masks "own")
    assert _passes(stage, range(2)) == (2 * 2, 2 * 2)
    # with two critic steps per generator step, the critics-only iteration makes its own edit
    lone = _stage("gan", **{"gan_optim.n_critic": 2})
    assert _passes(lone, range(2)) == (2 + 1, 2 + 2)


def test_the_joint_stage_keeps_each_phase_its_own_edit() -> None:
    """A trained parser parses in train mode for the generator, in eval mode for the critics:
    the two parses differ, so nothing is shared."""
    stage = _stage("joint")
    assert stage.train_parser
    generator, _ = _passes(stage, range(1))
    assert generator == 3  # the critics' edit, the generator's edit, the cycle back
