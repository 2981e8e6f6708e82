from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from faceedit.model.config import preset
from faceedit.model.discriminator import (
    DiscriminatorOutput,
    HierarchicalDiscriminator,
    PatchDiscriminator,
)


@pytest.mark.parametrize("name", ["tiny", "paper-128"])
@pytest.mark.parametrize("valence_arousal", [False, True])
def test_heads_have_the_documented_shapes(name: str, valence_arousal: bool) -> None:
    config = preset(name).replace(valence_arousal=valence_arousal)
    s, k, d = config.crop_size, config.num_regions, config.discriminator
    batch = 2 if name == "tiny" else 1
    image = torch.rand(batch, 3, s, s) * 2 - 1
    masks = torch.rand(batch, k, s, s)
    with torch.no_grad():
        out = HierarchicalDiscriminator(config)(image, masks)
    assert isinstance(out, DiscriminatorOutput)
    assert list(out.local) == list(config.regions)
    patch_sides = {
        "global": s // 2**d.num_layers,
        **dict.fromkeys(config.regions, s // 2**d.local_num_layers),
    }
    for name_, heads in [("global", out.global_), *out.local.items()]:
        side = patch_sides[name_]
        assert heads.patch.shape == (batch, 1, side, side), name_
        assert heads.logits.shape == (batch, config.num_expressions), name_
        if valence_arousal:
            assert heads.valence_arousal is not None
            assert heads.valence_arousal.shape == (batch, 2)
            assert heads.valence_arousal.abs().max() <= 1
        else:
            assert heads.valence_arousal is None


def test_local_critics_see_only_their_region() -> None:
    config = preset("tiny")
    disc = HierarchicalDiscriminator(config)
    s = config.crop_size
    image = torch.rand(1, 3, s, s) * 2 - 1
    masks = torch.zeros(1, config.num_regions, s, s)
    masks[:, 0, :8, :8] = 1.0
    changed = image.clone()
    changed[..., 16:, 16:] = 0.5  # outside region 0's mask
    a, b = disc(image, masks), disc(changed, masks)
    first, second = config.regions[:2]
    torch.testing.assert_close(a.local[first].patch, b.local[first].patch)
    torch.testing.assert_close(a.local[first].logits, b.local[first].logits)
    # Region 1's mask is empty: its critic sees a black image whatever the input.
    torch.testing.assert_close(
        a.local[second].patch, disc.local_discriminators[second](0 * image).patch
    )
    assert not torch.allclose(a.global_.patch, b.global_.patch)


def test_gradient_penalty_can_differentiate_through_every_head() -> None:
    config = preset("tiny").replace(valence_arousal=True)
    disc = HierarchicalDiscriminator(config)
    s = config.crop_size
    image = (torch.rand(2, 3, s, s) * 2 - 1).requires_grad_(True)
    masks = torch.rand(2, config.num_regions, s, s)
    out = disc(image, masks)
    heads = [out.global_, *out.local.values()]
    total = sum(h.patch.sum() + h.logits.sum() + h.valence_arousal.sum() for h in heads)
    (grad,) = torch.autograd.grad(total, image, create_graph=True)
    assert grad.abs().sum() > 0
    grad.square().sum().backward()  # the double backward WGAN-GP needs
    assert all(p.grad is not None for p in disc.parameters())


def test_sizes_that_do_not_divide_are_refused() -> None:
    with pytest.raises(ValueError, match="divisible by 16"):
        PatchDiscriminator(3, 40, 8, 4, 8, False)
    with pytest.raises(ValueError, match="positive"):
        PatchDiscriminator(3, 32, 0, 2, 8, False)
    disc = PatchDiscriminator(3, 32, 8, 2, 8, False)
    with pytest.raises(ValueError, match=r"\(B, C, 32, 32\)"):
        disc(torch.rand(1, 3, 64, 64))
    hier = HierarchicalDiscriminator(preset("tiny"))
    with pytest.raises(ValueError, match="region_masks must be"):
        hier(torch.rand(1, 3, 32, 32), torch.rand(1, 2, 32, 32))


def test_outputs_pass_through_distributed_data_parallel(tmp_path: Path) -> None:
    """DDP must find the tensors inside the NamedTuple-with-a-dict output to hook backward."""
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        config = preset("tiny")
        disc = DistributedDataParallel(HierarchicalDiscriminator(config))
        s = config.crop_size
        out = disc(torch.rand(2, 3, s, s), torch.rand(2, config.num_regions, s, s))
        heads = [out.global_, *out.local.values()]
        sum(h.patch.mean() + h.logits.square().mean() for h in heads).backward()
        assert all(p.grad is not None for p in disc.parameters())
    finally:
        dist.destroy_process_group()
