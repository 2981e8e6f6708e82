"""`local_execution: grouped` trains the same networks: the gan stage runs its local editors and
region critics (the EMA copy's too) as grouped networks, with the same losses on the same
batches as one after the other, and the same state dict keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from tests.trainer.conftest import one_thread
from tests.trainer.stages.in_memory import IN_MEMORY_SETTINGS, stage_on_tensors
from trainer.config import default_config, merge
from trainer.stages.gan import GanStage


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def _losses(local_execution: str) -> tuple[GanStage, list[dict[str, float]]]:
    """Two iterations (each with a generator step) of a fresh tiny gan stage, seeded alike."""
    settings = {**IN_MEMORY_SETTINGS, "gan_optim.n_critic": 1, "local_execution": local_execution}
    stage = stage_on_tensors(merge(default_config("gan", "tiny"), settings))
    torch.manual_seed(1)  # the gradient penalty's interpolation weights
    losses = [
        {k: float(v.detach()) for k, v in stage.train_step(step).items()} for step in range(2)
    ]
    return stage, losses


def test_the_gan_stage_trains_alike_with_grouped_local_networks() -> None:
    separate, separate_losses = _losses("separate")
    grouped, grouped_losses = _losses("grouped")
    nets = [grouped.generator_net, grouped.ema, grouped.discriminator_net]
    assert [net.local_execution for net in nets] == ["grouped"] * 3
    assert separate.generator_net.local_execution == "separate"
    for step, (a, b) in enumerate(zip(grouped_losses, separate_losses, strict=True)):
        assert a.keys() == b.keys()
        for name in a:
            assert a[name] == pytest.approx(b[name], rel=1e-3, abs=1e-4), (step, name)
    for name, net in grouped.networks().items():
        assert net.state_dict().keys() == separate.networks()[name].state_dict().keys(), name
