"""Local networks on their regions' windows (ModelConfig.local_windows): off, the hierarchy is
what it was; on, each local editor and region critic works on a fixed-size window placed by
its mask, the identity outside it, for a fraction of the arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from faceedit.model.config import ModelConfig, preset
from faceedit.model.discriminator import HierarchicalDiscriminator, PatchDiscriminator
from faceedit.model.generator import HierarchicalGenerator, _blend_weights
from faceedit.model.windows import (
    REGION_CENTRES,
    WINDOW_FRACTIONS,
    Window,
    region_windows,
    window_specs,
)
from faceedit.vocab.labels import REGION_GROUPS
from faceedit.weights import checkpoint

ASSETS = Path(__file__).resolve().parents[2] / "faceedit" / "assets"
TINY = preset("tiny")
WINDOWED = TINY.replace(local_windows=True)


def randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights everywhere, so no editor is the identity by accident."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))


def inputs(config: ModelConfig, batch: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """x in [-1, 1], soft masks with mass everywhere, a condition per editor."""
    gen = torch.Generator().manual_seed(3)
    s, k = config.crop_size, config.num_regions
    x = torch.rand(batch, 3, s, s, generator=gen) * 2 - 1
    masks = torch.rand(batch, k, s, s, generator=gen) * 0.4
    condition = torch.rand(batch, 1 + k, config.condition_dim, generator=gen)
    return x, masks, condition


def inside_of(windows: list[Window], like: Tensor) -> Tensor:
    """(B, K, S, S): 1 inside each region's window."""
    return torch.cat([window.inside(like) for window in windows], 1)


def test_every_region_has_a_window_that_both_networks_tile() -> None:
    assert WINDOW_FRACTIONS.keys() == REGION_GROUPS.keys() == REGION_CENTRES.keys()
    for name in ("tiny", "world-64", "real-128", "paper-128"):
        config = preset(name)
        step = math.lcm(4, 2**config.discriminator.local_num_layers)
        for spec in window_specs(config):
            assert spec.height % step == 0 and spec.width % step == 0, (name, spec)
            assert spec.height < config.crop_size and spec.width < config.crop_size, (name, spec)
    assert [spec[:2] for spec in window_specs(preset("real-128"))] == [
        (32, 88),
        (32, 88),
        (48, 40),
        (40, 56),
    ]


def test_old_configs_and_checkpoints_load_with_windows_off() -> None:
    old = TINY.to_dict()
    del old["local_windows"]  # a config saved before the option existed
    assert ModelConfig.from_dict(old) == TINY and not TINY.local_windows
    assert ModelConfig.from_dict(WINDOWED.to_dict()).local_windows
    header = checkpoint.read_header(ASSETS / "demo.safetensors")
    assert "local_windows" not in header["config"]
    loaded = checkpoint.load(ASSETS / "demo.safetensors")
    assert not loaded.config.local_windows
    assert loaded.generator is not None and loaded.generator.window_specs is None


def test_windows_off_runs_every_local_editor_on_the_whole_crop_as_before() -> None:
    """Bit for bit the composition the hierarchy made before windows existed."""
    torch.manual_seed(0)
    generator = HierarchicalGenerator(TINY).train()
    randomise(generator, seed=1)
    x, masks, condition = inputs(TINY)
    out = generator(x, masks, condition)
    editors = list(generator.local_generators.values())
    local = [
        editor(x, masks[:, k : k + 1], condition[:, 1 + k]) for k, editor in enumerate(editors)
    ]
    images = torch.stack([edit.image for edit in local], 1)
    weights, union = _blend_weights(masks)
    blended = (1 - union) * generator.global_generator(x, condition[:, 0]).image
    blended = blended + (weights.unsqueeze(2) * images).sum(1)
    assert generator.fusion is not None
    assert torch.equal(out.image, generator.fusion(blended, union))
    assert torch.equal(out.local_images, images)
    # the same weights on windows compute something else
    windowed = HierarchicalGenerator(WINDOWED).train()
    windowed.load_state_dict(generator.state_dict())
    assert not torch.equal(windowed(x, masks, condition).image, out.image)


@pytest.mark.parametrize("name", ["tiny", "world-64"])
def test_windowed_shapes_and_gradients_reach_every_local_editor(name: str) -> None:
    config = preset(name).replace(local_windows=True)
    torch.manual_seed(0)
    generator = HierarchicalGenerator(config).train()
    randomise(generator, seed=1)
    x, masks, condition = inputs(config)
    x.requires_grad_(True)
    out = generator(x, masks, condition)
    s, k = config.crop_size, config.num_regions
    assert out.image.shape == (2, 3, s, s) and out.local_images.shape == (2, k, 3, s, s)
    assert out.attention.shape == (2, 1 + k, 1, s, s)
    out.image.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name_, p in generator.local_generators.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name_


def test_outside_its_window_a_local_editor_is_the_identity_and_the_global_editor_edits() -> None:
    """Masks with mass everywhere: what lies outside a region's window is neither edited by
    its editor (image x, attention 1) nor blended from it: it takes the global edit."""
    torch.manual_seed(0)
    generator = HierarchicalGenerator(WINDOWED).train()  # a fresh fuser adds nothing
    randomise(generator.global_generator, seed=1)
    randomise(generator.local_generators, seed=2)
    x, masks, condition = inputs(WINDOWED)
    out = generator(x, masks, condition)
    assert generator.window_specs is not None
    inside = inside_of(region_windows(masks, generator.window_specs), x)  # (B, K, S, S)
    for k in range(WINDOWED.num_regions):
        outside = (inside[:, k] == 0).unsqueeze(1)  # (B, 1, S, S)
        assert outside.any() and (~outside).any()
        assert torch.equal(out.local_images[:, k][outside.expand_as(x)], x[outside.expand_as(x)])
        assert (out.attention[:, 1 + k][outside] == 1).all()
    nowhere = (inside.sum(1) == 0).unsqueeze(1).expand_as(x)  # in no region's window
    assert nowhere.any() and (masks.sum(1) > 0).all()
    assert torch.equal(out.image[nowhere], out.global_image[nowhere])
    assert not torch.equal(out.image[~nowhere], out.global_image[~nowhere])


def test_windows_follow_their_region_and_stay_inside_the_crop() -> None:
    size = 64
    specs = window_specs(preset("world-64").replace(regions=("mouth",)))
    (spec,) = specs
    masks = torch.zeros(3, 1, size, size)
    masks[0, 0, 38:44, 26:38] = 1.0  # a mouth where the template has it
    masks[1, 0, 48:64, 4:21] = 0.9  # one in the bottom-left corner, overlapping the start
    masks[1, 0, 0:6, 50:64] = 1.0  # and a stray blob far away, which must not pull
    masks[2, 0] = 0.0  # no mouth at all
    (window,) = region_windows(masks, specs)
    top, left = window.origins.T.tolist()
    assert (top[0], left[0]) == (round(40.5 - (spec.height - 1) / 2), 32 - spec.width // 2)
    assert (top[1], left[1]) == (size - spec.height, 0)  # clamped at the border
    start = [round(c - (n - 1) / 2) for c, n in zip(spec.start, spec[:2], strict=True)]
    assert [top[2], left[2]] == start  # an empty mask: the template's place
    inside = window.inside(masks)
    assert torch.equal(masks[:2, :, 36:, :] * inside[:2, :, 36:, :], masks[:2, :, 36:, :])


def test_a_border_region_and_an_empty_mask_run_through_the_hierarchy() -> None:
    torch.manual_seed(0)
    generator = HierarchicalGenerator(WINDOWED).eval()  # a fresh fuser adds nothing
    randomise(generator.global_generator, seed=1)
    randomise(generator.local_generators, seed=2)
    x, _, condition = inputs(WINDOWED)
    s = WINDOWED.crop_size
    masks = torch.zeros(2, WINDOWED.num_regions, s, s)
    mouth = WINDOWED.regions.index("mouth")
    masks[0, mouth, s - 6 :, :12] = 1.0  # at the crop's bottom-left corner
    with torch.no_grad():
        out = generator(x, masks, condition)
        assert generator.window_specs is not None
        windows = region_windows(masks, generator.window_specs)
    assert torch.isfinite(out.image).all()
    assert windows[mouth].origins[0].tolist() == [s - windows[mouth].height, 0]
    # image 1 has no region at all: the global edit (clamped, the fuser adds nothing here)
    assert torch.equal(out.image[1], out.global_image[1].clamp(-1, 1))


def test_region_critics_see_only_their_window() -> None:
    torch.manual_seed(0)
    critic = HierarchicalDiscriminator(WINDOWED)
    randomise(critic, seed=2)
    x, masks, _ = inputs(WINDOWED)
    assert critic.window_specs is not None
    windows = region_windows(masks, critic.window_specs)
    out = critic(x, masks)
    d = WINDOWED.discriminator
    for spec, head in zip(critic.window_specs, out.local.values(), strict=True):
        side = 2**d.local_num_layers
        assert head.patch.shape == (2, 1, spec.height // side, spec.width // side)
    changed = torch.where(inside_of(windows, x)[:, :1] > 0, x, -x)  # outside brows' window
    brows = critic(changed, masks).local["brows"]
    assert torch.equal(brows.patch, out.local["brows"].patch)
    assert not torch.equal(critic(changed, masks).global_.patch, out.global_.patch)


def test_a_rectangular_patch_critic() -> None:
    critic = PatchDiscriminator(3, (16, 40), 4, 3, 8, True)
    out = critic(torch.rand(2, 3, 16, 40))
    assert out.patch.shape == (2, 1, 2, 5) and out.logits.shape == (2, 8)
    with pytest.raises(ValueError, match="16 x 36"):
        PatchDiscriminator(3, (16, 36), 4, 3, 8, True)
    with pytest.raises(ValueError, match=r"\(B, C, 16, 40\)"):
        critic(torch.rand(2, 3, 40, 16))


def test_a_windowed_checkpoint_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    generator = HierarchicalGenerator(WINDOWED).eval()
    critic = HierarchicalDiscriminator(WINDOWED).eval()
    randomise(generator, seed=1)
    path = checkpoint.save(
        tmp_path / "w.safetensors", WINDOWED, generator=generator, discriminator=critic
    )
    loaded = checkpoint.load(path)
    assert loaded.config == WINDOWED
    assert loaded.generator is not None and loaded.discriminator is not None
    x, masks, condition = inputs(WINDOWED)
    with torch.no_grad():
        assert torch.equal(
            loaded.generator(x, masks, condition).image, generator(x, masks, condition).image
        )
        before, after = critic(x, masks), loaded.discriminator(x, masks)
    for name in WINDOWED.regions:
        assert torch.equal(after.local[name].patch, before.local[name].patch)


def hierarchy_flops(config: ModelConfig) -> int:
    """The hierarchical generator's FLOPs on one crop, counted on the meta device (no arithmetic)."""
    s, k = config.crop_size, config.num_regions
    with torch.device("meta"):
        generator = HierarchicalGenerator(config)
        x, masks = torch.zeros(1, 3, s, s), torch.zeros(1, k, s, s)
        condition = torch.zeros(1, config.condition_dim)
    with FlopCounterMode(display=False) as counter:
        generator(x, masks, condition)
    return int(counter.get_total_flops())


@pytest.mark.parametrize("name", ["real-128", "world-64"])
def test_windows_cut_the_hierarchys_flops_by_at_least_15_percent_at_128(name: str) -> None:
    """Issue 32's target (real-128 and world-64: 2.23 -> 1.18 GFLOP, 47 % less)."""
    config = preset(name).replace(crop_size=128)
    whole, windowed = (hierarchy_flops(config.replace(local_windows=on)) for on in (False, True))
    assert windowed <= 0.85 * whole
