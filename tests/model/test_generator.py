from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from faceedit.model.config import GeneratorConfig, ModelConfig, preset
from faceedit.model.generator import (
    ATTENTION_CHANNEL,
    FusionNetwork,
    GlobalGenerator,
    HierarchicalGenerator,
    LocalGenerator,
)

# Where a pixel's output may differ from its input by rounding only (1/255 is one grey level).
GREY_LEVEL = 1 / 255


def inputs(config: ModelConfig, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x in [-1, 1], soft masks whose sums exceed 1 in places, and one-hot 'happy' conditions."""
    s, k = config.crop_size, config.num_regions
    x = torch.rand(batch, 3, s, s) * 2 - 1
    masks = torch.rand(batch, k, s, s) * 0.6  # sums up to 2.4: exercises the renormalisation
    condition = torch.zeros(batch, config.condition_dim)
    condition[:, 1] = 1.0
    return x, masks, condition


def randomise(module: nn.Module, scale: float = 0.3) -> None:
    """Non-trivial weights everywhere, including the fuser's zero-initialised last conv."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)


def force_attention_one(generator: HierarchicalGenerator) -> None:
    """Every editor attends fully (sigmoid(50) == 1 in float32) and the fuser adds nothing."""
    with torch.no_grad():
        for editor in [generator.global_generator, *generator.local_generators.values()]:
            editor.heads.weight[ATTENTION_CHANNEL].zero_()
            editor.heads.bias[ATTENTION_CHANNEL] = 50.0
        generator.fusion.last.weight.zero_()
        generator.fusion.last.bias.zero_()


def hard_masks(config: ModelConfig, batch: int = 2) -> torch.Tensor:
    """Disjoint 0/1 masks: region k owns a horizontal band; the rest of the crop is no region."""
    s, k = config.crop_size, config.num_regions
    masks = torch.zeros(batch, k, s, s)
    band = s // (2 * k)
    for i in range(k):
        masks[:, i, (2 * i) * band : (2 * i + 1) * band, s // 4 : 3 * s // 4] = 1.0
    return masks


@pytest.mark.parametrize("name", ["tiny", "paper-128"])
def test_hierarchical_generator_shapes(name: str) -> None:
    config = preset(name)
    x, masks, condition = inputs(config, batch=1)
    s, k = config.crop_size, config.num_regions
    with torch.no_grad():
        out = HierarchicalGenerator(config).eval()(x, masks, condition)
    assert out.image.shape == (1, 3, s, s)
    assert out.attention.shape == (1, 1 + k, 1, s, s)
    assert out.global_image.shape == (1, 3, s, s)
    assert out.local_images.shape == (1, k, 3, s, s)
    assert out.attention.min() >= 0 and out.attention.max() <= 1
    assert out.image.min() >= -1 and out.image.max() <= 1  # eval mode clamps


def test_global_generator_composes_attention_and_colour() -> None:
    generator = GlobalGenerator(3, 8, GeneratorConfig(base_channels=8, num_res_blocks=1))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = generator(x, torch.rand(2, 8))
    assert out.image.shape == x.shape and out.colour.shape == x.shape
    assert out.attention.shape == (2, 1, 16, 16)
    expected = out.attention * x + (1 - out.attention) * out.colour
    torch.testing.assert_close(out.image, expected)
    with pytest.raises(ValueError, match="3 channels"):
        GlobalGenerator(4, 8, GeneratorConfig())
    with pytest.raises(ValueError, match=r"\(2, 8\) condition"):
        generator(x, torch.rand(2, 5))
    with pytest.raises(ValueError, match="multiples of 4"):
        generator(torch.rand(2, 3, 18, 18), torch.rand(2, 8))


def test_local_generator_sees_only_its_region_but_composes_with_the_whole_crop() -> None:
    generator = LocalGenerator(8, GeneratorConfig(base_channels=4, num_res_blocks=1)).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 1.0
    other = x.clone()
    other[..., 12:, 12:] = -x[..., 12:, 12:]  # changed only outside the mask
    c = torch.rand(1, 8)
    a, b = generator(x, mask, c), generator(other, mask, c)
    # Same masked input -> same colour and attention; the composition uses each full crop.
    torch.testing.assert_close(a.colour, b.colour)
    torch.testing.assert_close(a.attention, b.attention)
    torch.testing.assert_close(b.image, b.attention * other + (1 - b.attention) * b.colour)


def test_forced_full_attention_returns_the_input_exactly() -> None:
    config = preset("tiny")
    generator = HierarchicalGenerator(config)
    randomise(generator)
    force_attention_one(generator)
    x, masks, condition = inputs(config)
    for mode in (True, False):
        out = generator.train(mode)(x, masks, condition)
        torch.testing.assert_close(out.image, x, atol=1e-6, rtol=0)
        assert torch.all(out.attention == 1)


def test_fusion_starts_as_identity_and_clamps_only_in_eval() -> None:
    fusion = FusionNetwork(8)
    y = torch.rand(2, 3, 8, 8) * 4 - 2  # partly outside [-1, 1]
    union = torch.rand(2, 1, 8, 8)
    assert torch.equal(fusion.train()(y, union), y)
    assert torch.equal(fusion.eval()(y, union), y.clamp(-1, 1))


def test_blend_renormalises_overlapping_masks() -> None:
    """Where masks sum above 1 the local images are averaged, never counted twice."""
    config = preset("tiny")
    generator = HierarchicalGenerator(config)
    randomise(generator)
    x, _, condition = inputs(config, batch=1)
    masks = torch.ones(1, config.num_regions, config.crop_size, config.crop_size)  # sum = K
    with torch.no_grad():
        generator.fusion.last.weight.zero_()
        generator.fusion.last.bias.zero_()
        out = generator(x, masks, condition)
    torch.testing.assert_close(out.image, out.local_images.mean(1))


@pytest.mark.parametrize("editable_kind", ["vector", "batch", "bool"])
def test_region_lock_with_hard_masks_keeps_everything_outside_the_mouth(editable_kind: str) -> None:
    config = preset("tiny")
    generator = HierarchicalGenerator(config)
    randomise(generator)  # the fuser now mixes neighbours: the lock must still hold
    x, _, condition = inputs(config)
    masks = hard_masks(config)
    mouth = config.regions.index("mouth")
    onehot = torch.zeros(config.num_regions)
    onehot[mouth] = 1.0
    editable = {
        "vector": onehot,
        "batch": onehot.expand(2, -1),
        "bool": onehot.bool(),
    }[editable_kind]
    out = generator(x, masks, condition, editable)
    outside = (masks[:, mouth : mouth + 1] == 0).expand_as(x)
    assert (out.image - x)[outside].abs().max() <= GREY_LEVEL
    assert (out.image - x)[~outside].abs().max() > 0.05  # the mouth itself does change
    unlocked = generator(x, masks, condition)
    assert (unlocked.image - x)[outside].abs().max() > 0.05  # without the lock it would not hold


def test_per_region_conditions_change_the_output() -> None:
    config = preset("tiny")
    generator = HierarchicalGenerator(config).eval()
    randomise(generator)
    x, masks, condition = inputs(config)
    k, c = config.num_regions, config.condition_dim
    same = condition.unsqueeze(1).expand(-1, 1 + k, -1)
    with torch.no_grad():
        single = generator(x, masks, condition).image
        torch.testing.assert_close(generator(x, masks, same).image, single)
        rows = torch.eye(c)[torch.arange(1 + k) % c].expand(2, -1, -1)  # a different one per editor
        assert (generator(x, masks, rows).image - single).abs().max() > 1e-3


def test_bad_shapes_are_refused_with_the_expected_shape() -> None:
    config = preset("tiny")
    generator = HierarchicalGenerator(config)
    x, masks, condition = inputs(config)
    with pytest.raises(ValueError, match=r"region_masks must be .*\(2, 4, 32, 32\)"):
        generator(x, masks[:, :3], condition)
    with pytest.raises(ValueError, match=r"condition must be .*\(2, 5, 8\)"):
        generator(x, masks, condition[:, :5])
    with pytest.raises(ValueError, match=r"editable must be .*\(4,\)"):
        generator(x, masks, condition, torch.ones(3))
    with pytest.raises(ValueError, match=r"x must be"):
        generator(x[:, :1], masks, condition)


def test_gradients_reach_every_editor() -> None:
    config = preset("tiny")
    generator = HierarchicalGenerator(config)
    x, masks, condition = inputs(config)
    generator(x, masks, condition).image.square().mean().backward()
    # The fuser's last conv starts at zero, so the convs before it get no gradient yet.
    before_last_fusion = {"fusion.body.0.weight", "fusion.body.0.bias"}
    before_last_fusion |= {"fusion.body.2.weight", "fusion.body.2.bias"}
    for name, p in generator.named_parameters():
        if name in before_last_fusion:
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_hierarchy_costs_at_most_one_and_a_half_stargan_generators() -> None:
    """Issue 7's budget in FLOPs (deterministic, unlike CPU time): paper-128 at 128 px.

    Counted on the meta device, which runs no arithmetic, so the check is instant.
    """
    config = preset("paper-128")
    with torch.device("meta"):
        x, masks, condition = inputs(config, batch=1)
        baseline = GlobalGenerator(3, config.condition_dim, GeneratorConfig(64, 6))
        hierarchy = HierarchicalGenerator(config)
    with FlopCounterMode(display=False) as counter:
        baseline(x, condition)
    base_flops = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        hierarchy(x, masks, condition)
    assert base_flops > 10e9  # StarGAN's generator at 128 px is about 20 GFLOPs
    assert counter.get_total_flops() <= 1.5 * base_flops


def test_global_only_generator_has_no_local_editors_and_no_fuser() -> None:
    """config.regions empty (the StarGAN/GANimation baseline): the forward pass used to fail
    on torch.stack of an empty list; now the output is the global editor's, gradients reach
    it, and no fuser adds an unconstrained residual."""
    config = preset("tiny").replace(regions=())
    generator = HierarchicalGenerator(config).train()
    assert len(generator.local_generators) == 0 and generator.fusion is None
    x, masks, condition = inputs(config)
    assert masks.shape[1] == 0
    out = generator(x, masks, condition)
    assert out.image.shape == x.shape
    assert out.attention.shape == (2, 1, 1, config.crop_size, config.crop_size)
    assert out.local_images.shape == (2, 0, 3, config.crop_size, config.crop_size)
    assert torch.equal(out.image, out.global_image)
    out.image.mean().backward()
    assert all(p.grad is not None for p in generator.global_generator.parameters())
    generator.eval()
    with torch.no_grad():
        assert float(generator(x * 5, masks, condition).image.abs().max()) <= 1.0


def test_the_retired_upsampling_option_loads_only_with_its_old_value() -> None:
    """`upsample: resize` was retired (docs/notes/retired-options.md): a stored config holding
    the transposed convolutions every model used still loads, a resize one is refused by name."""
    from faceedit.errors import ConfigError

    stored = preset("world-64").to_dict()
    stored["global_generator"]["upsample"] = "transposed"
    stored["local_generator"]["upsample"] = "transposed"
    assert ModelConfig.from_dict(stored) == preset("world-64")
    stored["local_generator"]["upsample"] = "resize"
    with pytest.raises(ConfigError, match=r"local_generator\.upsample='resize'.*retired"):
        ModelConfig.from_dict(stored)
    with pytest.raises(TypeError):
        GeneratorConfig(upsample="transposed")  # type: ignore[call-arg]  # no longer a field


def test_instance_norm_is_torchs_instance_norm_through_fewer_operators() -> None:
    """The generators' InstanceNorm (the group-norm kernel) computes what nn.InstanceNorm2d does,
    forwards and backwards, with the same parameters (checkpoints load either way), in fewer
    dispatched operators: each is a kernel launch on a GPU, where training is launch-bound."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from faceedit.model.generator import InstanceNorm

    class CountOps(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.count += 1
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    plain, ours = nn.InstanceNorm2d(16, affine=True), InstanceNorm(16)
    nn.init.uniform_(plain.weight, 0.5, 1.5)
    nn.init.uniform_(plain.bias, -0.2, 0.2)
    ours.load_state_dict(plain.state_dict())
    counts = []
    outputs = []
    for norm in (plain, ours):
        x = torch.randn(
            4, 16, 24, 24, generator=torch.Generator().manual_seed(1), requires_grad=True
        )
        with CountOps() as ops:
            y = norm(x)
            (y * torch.linspace(-1, 1, 24)).sum().backward()
        counts.append(ops.count)
        outputs.append((y.detach(), x.grad, norm.weight.grad, norm.bias.grad))
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert counts[1] < counts[0]


def _first_block(editor: GlobalGenerator, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """The editor's first conv, norm (with FiLM when it has it) and ReLU."""
    conv, norm, relu = editor.trunk[:3]
    features = norm(
        conv(torch.cat([x, condition[:, :, None, None].expand(-1, -1, *x.shape[-2:])], 1))
    )
    if editor.condition_film is not None:
        scale, shift = next(editor._film(condition))
        features = torch.addcmul(shift, features, 1 + scale)
    return relu(features)


def test_instance_norm_keeps_an_input_condition_from_the_middle_of_the_face() -> None:
    """Why `conditioning: film` exists: concatenated as constant channels, the condition adds a
    constant to each channel, which the instance norm subtracts again. What reaches the middle
    of the crop is only the zero-padded border's share of the channel mean, which halves each
    time the crop doubles. FiLM puts the condition back after the norm, at any size."""
    torch.manual_seed(0)
    plain = GlobalGenerator(3, 8, GeneratorConfig(base_channels=8, num_res_blocks=1)).eval()
    film = GlobalGenerator(3, 8, GeneratorConfig(8, 1, conditioning="film")).eval()
    randomise(film.condition_film, 0.3)  # as after training
    happy, sad = torch.eye(8)[1:2], torch.eye(8)[2:3]

    def change(editor: GlobalGenerator, size: int, where: tuple[slice, slice]) -> float:
        x = torch.rand(1, 3, size, size) * 2 - 1
        delta = _first_block(editor, x, happy) - _first_block(editor, x, sad)
        return float(delta[..., where[0], where[1]].abs().mean())

    middle, top_rows = (slice(6, -6), slice(6, -6)), (slice(0, 3), slice(None))
    with torch.no_grad():
        norm, features = plain.trunk[1], torch.randn(1, 8, 32, 32)
        torch.testing.assert_close(norm(features + 0.7), norm(features - 2.0), rtol=0, atol=1e-4)
        plain_32, plain_64 = change(plain, 32, middle), change(plain, 64, middle)
        film_64 = change(film, 64, middle)
        plain_border_64 = change(plain, 64, top_rows)
    assert plain_64 < 0.7 * plain_32
    assert plain_64 < 0.2 * plain_border_64
    assert film_64 > 4 * plain_64


def test_film_conditioning_starts_as_the_input_conditioning_and_learns() -> None:
    """Zero-initialised, FiLM changes nothing (same weights, same edits); its map gets gradients;
    without it a generator has no such parameters, so older checkpoints keep their keys."""
    torch.manual_seed(0)
    plain = HierarchicalGenerator(preset("tiny"))
    film_config = preset("tiny").replace(
        global_generator=GeneratorConfig(8, 1, conditioning="film"),
        local_generator=GeneratorConfig(4, 1, conditioning="film"),
    )
    torch.manual_seed(0)
    film = HierarchicalGenerator(film_config)
    assert not any("condition_film" in key for key in plain.state_dict())
    assert {k for k in film.state_dict() if "condition_film" not in k} == set(plain.state_dict())
    x, masks, condition = inputs(preset("tiny"))
    torch.testing.assert_close(film(x, masks, condition).image, plain(x, masks, condition).image)
    film(x, masks, condition).image.square().mean().backward()
    editors = [film.global_generator, *film.local_generators.values()]
    for editor in editors:
        assert editor.condition_film is not None and editor.condition_film.weight.grad is not None
        assert float(editor.condition_film.weight.grad.abs().sum()) > 0


def test_film_is_applied_through_torchs_own_instance_norm_too() -> None:
    """The bench swaps the group-norm InstanceNorm for nn.InstanceNorm2d; FiLM must follow."""
    from faceedit.commands.bench.optimizations import torch_instance_norm

    torch.manual_seed(0)
    editor = GlobalGenerator(3, 8, GeneratorConfig(8, 1, conditioning="film")).eval()
    randomise(editor, 0.1)
    swapped = torch_instance_norm(editor)
    x, condition = torch.rand(2, 3, 32, 32) * 2 - 1, torch.eye(8)[:2]
    with torch.no_grad():
        torch.testing.assert_close(
            swapped(x, condition).image, editor(x, condition).image, rtol=1e-4, atol=1e-4
        )
        changed = GlobalGenerator(3, 8, GeneratorConfig(8, 1, conditioning="film")).eval()
        changed.load_state_dict(editor.state_dict())
        changed.condition_film.weight.zero_()
        assert float((changed(x, condition).image - editor(x, condition).image).abs().max()) > 1e-3


def test_generator_config_refuses_an_unknown_conditioning() -> None:
    from faceedit.errors import ConfigError

    with pytest.raises(ConfigError, match="conditioning"):
        GeneratorConfig(conditioning="adain")
