"""`model.local_windows: true` trains: the gan stage builds windowed local networks from the
config key, and the critics' gradient penalty mixes real and fake region inputs in the same
windows, those the real images' masks place."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from faceedit.model.config import preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.model.windows import Window
from tests.trainer.conftest import one_thread
from tests.trainer.stages.in_memory import IN_MEMORY_SETTINGS, stage_on_tensors
from trainer.config import LossWeights, default_config, merge
from trainer.stages.steps import discriminator_step, expression_batch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def test_the_gan_stage_trains_windowed_local_networks_from_the_config_key() -> None:
    settings = {**IN_MEMORY_SETTINGS, "gan_optim.n_critic": 1, "model.local_windows": True}
    stage = stage_on_tensors(merge(default_config("gan", "tiny"), settings))
    assert stage.generator_net.window_specs is not None
    assert stage.discriminator_net.window_specs is not None
    for step in range(2):
        losses = stage.train_step(step)
        assert losses and all(math.isfinite(float(v.detach())) for v in losses.values()), losses


def test_the_penalty_mixes_reals_and_fakes_in_the_reals_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = preset("tiny").replace(freeze_parser=True, local_windows=True)
    torch.manual_seed(0)
    model = UnifiedModel(config).train()
    critic = HierarchicalDiscriminator(config)
    size = config.crop_size
    batch = expression_batch(
        torch.rand(4, 3, size, size) * 2 - 1,
        torch.arange(4),
        torch.full((4, 2), float("nan")),
        config,
    )
    calls: list[tuple[Tensor, list[Window] | None]] = []
    region_inputs = HierarchicalDiscriminator.region_inputs

    def spy(
        self: HierarchicalDiscriminator, image: Tensor, masks: Tensor, windows: list[Window] | None
    ) -> list[Tensor]:
        calls.append((masks, windows))
        return region_inputs(self, image, masks, windows)

    monkeypatch.setattr(HierarchicalDiscriminator, "region_inputs", spy)
    named = discriminator_step(model, critic, batch, LossWeights(), own_masks=True)
    assert math.isfinite(float(named["d/local_gp"].detach()))
    (_, judged), (real_masks, real), (fake_masks, fake) = calls  # the critics' pass, then the GP's
    assert judged is not None and real is not None and fake is real
    assert not torch.equal(fake_masks, real_masks)  # each fake is seen through its own parse
    assert critic.window_specs is not None
    for window, spec in zip(real, critic.window_specs, strict=True):
        assert window.origins.shape == (4, 2) and (window.height, window.width) == spec[:2]
    reals_first = [window.origins[:4] for window in judged]  # the pass judged reals, then fakes
    assert all(torch.equal(a, w.origins) for a, w in zip(reals_first, real, strict=True))
