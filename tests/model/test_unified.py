from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from faceedit.model.config import ModelConfig, ParserConfig, preset
from faceedit.model.generator import ATTENTION_CHANNEL, HierarchicalGenerator
from faceedit.model.parsing import BiSeNet, UNet, build_parser
from faceedit.model.regions import box_region_masks, region_matrix, soft_region_masks
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.labels import NUM_CLASSES, REGION_GROUPS

GREY_LEVEL = 1 / 255
# 5-point template of a 112 px aligned crop (eyes, nose tip, mouth corners), scaled per test.
TEMPLATE_112 = ((38.3, 51.7), (73.5, 51.5), (56.0, 71.7), (41.5, 92.4), (70.7, 92.2))
# BiSeNet's deep-supervision heads: they read feat16_up / feat32_up and feed only the aux
# logits, never the main logits, so a loss on the edited image cannot reach them.
BISENET_AUX_HEADS = ("conv_out16.", "conv_out32.")


def landmarks(size: int, batch: int = 2) -> torch.Tensor:
    return (torch.tensor(TEMPLATE_112) * size / 112).expand(batch, -1, -1).clone()


def small_bisenet() -> ModelConfig:
    """Tiny generators with a real BiSeNet parsing at 64 px for 32 px crops (resize path)."""
    return preset("tiny").replace(parser=ParserConfig(kind="bisenet", resolution=64))


def inputs(config: ModelConfig, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    s = config.crop_size
    condition = torch.zeros(batch, config.condition_dim)
    condition[:, 3] = 1.0
    return torch.rand(batch, 3, s, s) * 2 - 1, condition


def parser_grads(model: UnifiedModel) -> dict[str, torch.Tensor | None]:
    return {name: p.grad for name, p in model.parser.named_parameters()}


def randomise_generator(generator: HierarchicalGenerator) -> None:
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(torch.randn_like(p) * 0.3)


# ---- region masks -----------------------------------------------------------------------------


def test_soft_region_masks_sum_the_probabilities_of_each_group() -> None:
    logits = torch.randn(2, NUM_CLASSES, 8, 8)
    regions = ("mouth", "eyes")
    masks = soft_region_masks(logits, regions)
    probs = logits.softmax(1)
    torch.testing.assert_close(masks[:, 0], probs[:, list(REGION_GROUPS["mouth"])].sum(1))
    torch.testing.assert_close(masks[:, 1], probs[:, list(REGION_GROUPS["eyes"])].sum(1))
    assert masks.sum(1).max() <= 1 + 1e-6
    assert region_matrix(regions).sum(0).tolist() == [3.0, 3.0]
    with pytest.raises(ValueError, match="19"):
        soft_region_masks(torch.randn(2, 5, 8, 8), regions)
    with pytest.raises(ValueError, match="chin"):
        soft_region_masks(logits, ("chin",))


def test_box_masks_are_hard_boxes_around_the_landmarks() -> None:
    size = 112
    points = landmarks(size, batch=1).requires_grad_(True)
    regions = ("brows", "eyes", "nose", "mouth")
    masks = box_region_masks(points, size, regions)
    assert masks.shape == (1, 4, size, size) and not masks.requires_grad
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    brows, eyes, nose, mouth = masks[0]
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, _) = (
        (round(x), round(y)) for x, y in TEMPLATE_112
    )
    assert eyes[ly, lx] == 1 and eyes[ry, rx] == 1
    assert eyes[ly, (lx + rx) // 2] == 0  # two boxes, not one band across the nose bridge
    assert brows[ly - 13, lx] == 1 and brows[ly, lx] == 0  # above the eye, not on it
    assert nose[ny, nx] == 1 and nose[ny + 15, nx] == 0
    assert mouth[mly, (mlx + mrx) // 2] == 1 and mouth[mly, mlx - 10] == 0
    assert brows[ly + 40, lx] == 0 and mouth[ny - 20, nx] == 0


def test_box_masks_turn_with_the_face() -> None:
    size, angle = 112, math.radians(30)
    centre = torch.tensor([size / 2, size / 2])
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    upright = landmarks(size, batch=1)
    turned = (upright - centre) @ rot.T + centre
    mouth = box_region_masks(turned, size, ("mouth",))[0, 0]
    for x, y in turned[0, 3:]:  # both mouth corners stay inside the turned box
        assert mouth[round(y.item()), round(x.item())] == 1
    with pytest.raises(ValueError, match=r"\(B, 5, 2\)"):
        box_region_masks(torch.zeros(1, 4, 2), size, ("mouth",))


# ---- the unified model ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "parser_type"), [("tiny", UNet), ("paper-128", BiSeNet)])
def test_unified_shapes(name: str, parser_type: type[nn.Module]) -> None:
    config = preset(name)
    model = UnifiedModel(config).eval()
    assert isinstance(model.parser, parser_type)
    x, condition = inputs(config, batch=1)
    s, k = config.crop_size, config.num_regions
    with torch.no_grad():
        out = model(x, condition)
    assert out.image.shape == (1, 3, s, s)
    assert out.region_masks.shape == (1, k, s, s)
    assert out.parser_logits.shape == (1, NUM_CLASSES, s, s)
    assert out.attention.shape == (1, 1 + k, 1, s, s)
    assert out.parser_aux == ()  # eval mode: no deep-supervision outputs
    torch.testing.assert_close(
        out.region_masks, soft_region_masks(out.parser_logits, config.regions)
    )


def test_bisenet_aux_logits_come_back_in_training_mode() -> None:
    config = small_bisenet()
    model = UnifiedModel(config).train()
    x, condition = inputs(config)
    out = model(x, condition)
    assert out.parser_logits.shape == (2, NUM_CLASSES, 32, 32)
    # Aux logits stay at the parser's resolution, where its label maps are.
    assert [a.shape for a in out.parser_aux] == [(2, NUM_CLASSES, 64, 64)] * 2


@pytest.mark.parametrize("config", [preset("tiny"), small_bisenet()], ids=["unet", "bisenet"])
def test_a_loss_on_the_edited_image_reaches_the_parser(config: ModelConfig) -> None:
    model = UnifiedModel(config).train()
    x, condition = inputs(config)
    model(x, condition).image.square().mean().backward()
    without = sorted(
        name for name, g in parser_grads(model).items() if g is None or not g.abs().sum() > 0
    )
    if isinstance(model.parser, BiSeNet):
        # Everything on the main path (backbone, ARMs, FFM, conv_out) gets a gradient; the
        # aux heads get theirs only from the aux losses.
        assert without == sorted(
            n for n, _ in model.parser.named_parameters() if n.startswith(BISENET_AUX_HEADS)
        )
        assert any(n.startswith("cp.resnet.") for n in parser_grads(model))
    else:
        assert without == []


@pytest.mark.parametrize("config", [preset("tiny"), small_bisenet()], ids=["unet", "bisenet"])
def test_a_frozen_parser_gets_no_gradient_and_keeps_its_statistics(config: ModelConfig) -> None:
    model = UnifiedModel(config.replace(freeze_parser=True)).train()
    assert not model.parser.training
    assert not any(p.requires_grad for p in model.parser.parameters())
    stats = {k: v.clone() for k, v in model.parser.state_dict().items() if "running" in k}
    assert stats, "both parsers have BatchNorm statistics that must not drift"
    x, condition = inputs(config)
    model(x, condition).image.square().mean().backward()
    assert all(g is None for g in parser_grads(model).values())
    assert all(torch.equal(v, model.parser.state_dict()[k]) for k, v in stats.items())
    assert all(p.grad is not None for p in model.generator.global_generator.parameters())
    # The same parser joins a joint model: every tensor trains again.
    joint = UnifiedModel(config, parser=model.parser)
    assert all(p.requires_grad for p in joint.parser.parameters())


def test_forced_full_attention_returns_the_input_with_real_soft_masks() -> None:
    config = preset("tiny")
    model = UnifiedModel(config)
    randomise_generator(model.generator)
    generator = model.generator
    with torch.no_grad():
        for editor in [generator.global_generator, *generator.local_generators.values()]:
            editor.heads.weight[ATTENTION_CHANNEL].zero_()
            editor.heads.bias[ATTENTION_CHANNEL] = 50.0
        generator.fusion.last.weight.zero_()
        generator.fusion.last.bias.zero_()
    x, condition = inputs(config)
    torch.testing.assert_close(model(x, condition).image, x, atol=1e-6, rtol=0)


def test_region_lock_with_the_parsers_soft_masks() -> None:
    """Eval mode (the app's): the edit is clamped to [-1, 1], so |out - x| <= 2 * union."""
    config = preset("tiny")
    model = UnifiedModel(config).eval()
    randomise_generator(model.generator)
    # A parser that is sure of its classes, so many pixels hold almost no mouth probability.
    with torch.no_grad():
        for p in model.parser.parameters():
            p.mul_(8.0)
    x, condition = inputs(config)
    mouth = config.regions.index("mouth")
    editable = torch.zeros(config.num_regions)
    editable[mouth] = 1.0
    with torch.no_grad():
        out = model(x, condition, editable=editable)
    union = out.region_masks[:, mouth : mouth + 1].expand_as(x)
    locked = union < 1e-3
    assert 0.2 < locked.float().mean() < 1, "the test needs pixels inside and outside the mouth"
    assert (out.image - x)[locked].abs().max() <= GREY_LEVEL
    assert (out.image - x).abs().max() > 0.05


def test_one_condition_per_editor_changes_the_output() -> None:
    config = preset("tiny")
    model = UnifiedModel(config).eval()
    randomise_generator(model.generator)
    x, condition = inputs(config)
    k = config.num_regions
    rows = torch.eye(config.condition_dim)[: 1 + k].expand(2, -1, -1)
    with torch.no_grad():
        single = model(x, condition).image
        per_region = model(x, rows).image
    assert (single - per_region).abs().max() > 1e-3


def test_keypoint_boxes_ignore_the_parser() -> None:
    config = preset("tiny").replace(region_source="boxes")
    model = UnifiedModel(config).train()
    x, condition = inputs(config)
    points = landmarks(config.crop_size)
    with pytest.raises(ValueError, match="landmarks"):
        model(x, condition)
    out = model(x, condition, landmarks=points)
    assert set(out.region_masks.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(
        out.region_masks, box_region_masks(points, config.crop_size, config.regions)
    )
    other = UnifiedModel(config, parser=build_parser(config.parser), generator=model.generator)
    torch.testing.assert_close(other.region_masks(x, points).masks, out.region_masks)
    out.image.square().mean().backward()
    assert all(g is None or not g.any() for g in parser_grads(model).values())
    assert out.parser_logits.requires_grad  # the parser still trains on its own supervision


def test_region_masks_then_generate_equals_forward() -> None:
    config = preset("tiny")
    model = UnifiedModel(config).eval()
    x, condition = inputs(config)
    with torch.no_grad():
        masks, logits, aux = model.region_masks(x)
        split = model.generate(x, masks, condition)
        joined = model(x, condition)
    torch.testing.assert_close(split.image, joined.image)
    torch.testing.assert_close(logits, joined.parser_logits)
    assert aux == ()


def test_mismatched_parts_and_inputs_are_refused() -> None:
    config = preset("tiny")
    generator = HierarchicalGenerator(config.replace(regions=("eyes", "mouth")))
    with pytest.raises(ValueError, match="regions"):
        UnifiedModel(config, generator=generator)
    model = UnifiedModel(config)
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"):
        model.region_masks(torch.rand(1, 3, 32, 16))


def test_a_global_only_model_runs_with_masks_or_boxes() -> None:
    """No regions: soft masks and keypoint boxes are both (B, 0, S, S), and the model edits."""
    for source in ("masks", "boxes"):
        config = preset("tiny").replace(regions=(), region_source=source)
        model = UnifiedModel(config).eval()
        x = torch.rand(2, 3, config.crop_size, config.crop_size) * 2 - 1
        points = torch.rand(2, 5, 2) * config.crop_size
        condition = torch.zeros(2, config.condition_dim)
        with torch.no_grad():
            out = model(x, condition, landmarks=points)
        assert out.region_masks.shape == (2, 0, config.crop_size, config.crop_size)
        assert out.image.shape == x.shape
    assert box_region_masks(torch.rand(3, 5, 2), 8, ()).shape == (3, 0, 8, 8)
    # no regions, no boxes: a global-only model needs no landmarks either
    model = UnifiedModel(preset("tiny").replace(regions=(), region_source="boxes")).eval()
    with torch.no_grad():
        assert model.region_masks(torch.zeros(1, 3, 32, 32)).masks.shape == (1, 0, 32, 32)
