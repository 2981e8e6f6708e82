"""loss.mouth_only_classification: the edit as `--editable mouth` shows it must read as the
target to the global critic, and only the mouth's pixels learn from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from faceedit.errors import ConfigError
from faceedit.model.config import preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from tests.trainer.conftest import one_thread
from tests.trainer.stages.in_memory import IN_MEMORY_SETTINGS, stage_on_tensors
from trainer.config import LossWeights, default_config, merge
from trainer.stages import losses
from trainer.stages.steps import (
    MOUTH_REGION,
    expression_batch,
    generator_step,
    mouth_only_loss,
    set_requires_grad,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def test_the_loss_classifies_the_locked_composite_and_reaches_only_the_mouth() -> None:
    config = preset("tiny")
    torch.manual_seed(0)
    critic = HierarchicalDiscriminator(config)
    size = config.crop_size
    x = torch.rand(2, 3, size, size) * 2 - 1
    edit = (torch.rand(2, 3, size, size) * 2 - 1).requires_grad_(True)
    mouth = torch.zeros(2, 1, size, size)
    mouth[:, :, size // 2 :, size // 4 : 3 * size // 4] = 0.8
    targets = torch.tensor([1, 3])

    loss = mouth_only_loss(critic, x, edit, mouth, targets)
    loss.backward()

    composite = x + mouth * (edit.detach() - x)
    expected = losses.classification_loss(critic.global_discriminator(composite).logits, targets)
    torch.testing.assert_close(loss, expected)
    assert edit.grad is not None
    outside = (mouth == 0).expand_as(edit)
    assert torch.all(edit.grad[outside] == 0)
    assert edit.grad[~outside].abs().sum() > 0


def test_the_generator_step_adds_the_term_only_when_weighted() -> None:
    config = preset("tiny").replace(freeze_parser=True)
    torch.manual_seed(0)
    model = UnifiedModel(config).train()
    critic = HierarchicalDiscriminator(config)
    set_requires_grad(critic, False)
    size = config.crop_size
    batch = expression_batch(
        torch.rand(2, 3, size, size) * 2 - 1,
        torch.arange(2),
        torch.full((2, 2), float("nan")),
        config,
    )
    assert MOUTH_REGION in config.regions
    without = generator_step(model, critic, batch, LossWeights())
    weighted = generator_step(model, critic, batch, LossWeights(mouth_only_classification=2.0))
    assert "g/mouth_only_cls" not in without
    assert weighted["g/mouth_only_cls"] > 0
    # the generator learns from it: its gradient reaches the mouth's local editor
    model.zero_grad(set_to_none=True)
    weighted["g/mouth_only_cls"].backward()
    mouth_editor = model.generator.local_generators[MOUTH_REGION]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in mouth_editor.parameters())


def test_a_model_without_a_mouth_region_is_refused() -> None:
    settings = {
        **IN_MEMORY_SETTINGS,
        "gan_optim.critic_warmup": 0,
        "model.regions": ["brows", "eyes", "nose"],
        "loss.mouth_only_classification": 1.0,
    }
    with pytest.raises(ConfigError, match="mouth_only_classification needs a 'mouth' region"):
        stage_on_tensors(merge(default_config("gan", "tiny"), settings))
