"""A fresh GAN's start: editors close to the identity, critics that learn expressions first."""

from __future__ import annotations

import pytest
import torch

from faceedit.model.config import ModelConfig, preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.generator import HierarchicalGenerator
from faceedit.model.unified import UnifiedModel
from trainer.config import ConfigError, LossWeights, default_config
from trainer.stages.steps import ExpressionBatch, expression_batch
from trainer.stages.warm_start import critic_warmup_losses, start_attention


def random_batch(config: ModelConfig, count: int = 4) -> ExpressionBatch:
    """`count` random crops labelled 0, 1, ..., without valence/arousal."""
    size = config.crop_size
    return expression_batch(
        torch.rand(count, 3, size, size) * 2 - 1,
        torch.arange(count),
        torch.full((count, 2), float("nan")),
        config,
    )


def test_start_attention_makes_every_editor_keep_the_pixel() -> None:
    torch.manual_seed(0)
    config = preset("tiny")
    generator = HierarchicalGenerator(config)
    masks = torch.rand(2, config.num_regions, 32, 32) / config.num_regions
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    condition = torch.eye(8)[:2]
    with torch.no_grad():
        before = generator(x, masks, condition).attention
    assert start_attention(generator, 0.0) == 0  # 0 leaves the initialisation alone
    assert start_attention(generator, 0.95) == 1 + config.num_regions
    with torch.no_grad():
        after = generator(x, masks, condition).attention
    assert 0.3 < float(before.mean()) < 0.7
    assert float(after.mean()) > float(before.mean()) + 0.2
    with pytest.raises(ValueError):
        start_attention(generator, 1.0)


def test_critic_warmup_trains_only_on_real_images_and_lowers_the_classification_loss() -> None:
    torch.manual_seed(0)
    config = preset("tiny").replace(region_source="boxes", freeze_parser=True)
    model = UnifiedModel(config)
    critic = HierarchicalDiscriminator(config)
    optimiser = torch.optim.Adam(critic.parameters(), lr=1e-3)
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    labels = torch.arange(8) % 8
    landmarks = torch.tensor(
        [[[11.0, 12.0], [20.0, 12.0], [15.5, 17.0], [12.0, 22.0], [19.0, 22.0]]]
    )
    batch = expression_batch(images, labels, torch.zeros(8, 2), config, landmarks.expand(8, -1, -1))
    generator_before = [p.clone() for p in model.generator.parameters()]
    first = None
    for _ in range(30):
        named = critic_warmup_losses(model, critic, batch, LossWeights())
        assert set(named) == {"d/cls", "d/local_cls"}
        loss = sum(named.values())
        first = float(loss.detach()) if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss.detach()) < 0.8 * first
    for before, after in zip(generator_before, model.generator.parameters(), strict=True):
        assert after.grad is None and torch.equal(before, after)


def test_world_recipe_training_settings_and_validation() -> None:
    from trainer.recipes import load_recipe

    recipe = load_recipe("world-64")
    gan = recipe.config("gan").gan_optim
    assert gan.n_critic == 1 and gan.critic_warmup > 0 and gan.attention_start > 0.5
    assert gan.lr_d > gan.lr_g
    # the world's region critics see each image through its own parse, in both GAN stages
    for stage in ("gan", "joint"):
        world = recipe.config(stage)
        assert world.gan_optim.critic_masks == "own"
        assert world.loss.fake_source_classification > 0 and world.loss.edit_tv > 0
        assert world.model.global_generator.conditioning == "film"
        assert world.model.local_generator.conditioning == "film"
    paper_config = default_config("gan")
    paper = paper_config.gan_optim
    assert (paper.n_critic, paper.critic_warmup, paper.attention_start) == (5, 0, 0.0)
    assert paper.critic_masks == "input" and paper_config.loss.edit_tv == 0
    assert paper_config.model.global_generator.conditioning == "input"
    with pytest.raises(ConfigError, match="critic_warmup"):
        default_config("gan").replace(gan_optim=paper.__class__(critic_warmup=-1))


def test_gan_steps_of_a_global_only_model_skip_the_local_critics() -> None:
    """The baseline trains with the same losses minus the region critics, which it has not."""
    from trainer.stages.steps import discriminator_step, generator_step

    config = preset("tiny").replace(regions=())
    model = UnifiedModel(config)
    critic = HierarchicalDiscriminator(config)
    assert len(critic.local_discriminators) == 0
    batch = random_batch(config)
    weights = LossWeights()
    d = discriminator_step(model, critic, batch, weights)
    g = generator_step(model, critic, batch, weights)
    assert not any("local" in k for k in [*d, *g])
    assert {"d/adv", "d/gp", "g/adv", "g/cycle"} <= set(d) | set(g)
    sum(g.values()).backward()
    assert model.generator.global_generator.heads.weight.grad is not None


def test_the_critics_can_learn_the_source_expression_of_fakes() -> None:
    """loss.fake_source_classification: each critic's head is also trained to name the input's
    own expression in the edit made from it (off by default, as in StarGAN)."""
    import torch.nn.functional as F

    from trainer.stages.steps import discriminator_step

    config = preset("tiny")
    torch.manual_seed(0)
    model, critic = UnifiedModel(config).eval(), HierarchicalDiscriminator(config)
    batch = random_batch(config)
    labels = batch.labels
    assert "d/fake_cls" not in discriminator_step(model, critic, batch, LossWeights())
    torch.manual_seed(1)
    named = discriminator_step(model, critic, batch, LossWeights(fake_source_classification=0.5))
    with torch.no_grad():
        masks = model.region_masks(batch.images).masks
        fake = model.generate(batch.images, masks, batch.target).image
        expected = F.cross_entropy(critic(fake, masks).global_.logits, labels)
    torch.testing.assert_close(named["d/fake_cls"].detach(), 0.5 * expected)
    assert "d/local_fake_cls" in named
    named["d/fake_cls"].backward()
    assert critic.global_discriminator.class_head.weight.grad is not None


def test_the_edit_can_be_kept_smooth() -> None:
    """loss.edit_tv: total variation of the change the edit makes (off by default)."""
    from trainer.stages import losses
    from trainer.stages.steps import generator_step

    config = preset("tiny")
    torch.manual_seed(0)
    model, critic = UnifiedModel(config), HierarchicalDiscriminator(config).requires_grad_(False)
    batch = random_batch(config, 2)
    assert "g/edit_tv" not in generator_step(model, critic, batch, LossWeights())
    model.eval()  # the same edit twice
    named = generator_step(model, critic, batch, LossWeights(edit_tv=2.0))
    with torch.no_grad():
        change = model(batch.images, batch.target).image - batch.images
    torch.testing.assert_close(named["g/edit_tv"].detach(), 2.0 * losses.total_variation(change))
    named["g/edit_tv"].backward()
    assert model.generator.global_generator.heads.weight.grad is not None


def test_region_critics_can_see_each_fake_through_its_own_parse() -> None:
    """gan_optim.critic_masks="own": the region critics judge an edit through the parser's
    masks of the edit (a reshaped part keeps its new outline), not through the input's; the
    gradient reaches the generator through the parser; the default stays the input's masks."""
    from trainer.config import GanOptimConfig
    from trainer.stages.steps import discriminator_step, generator_step

    config = preset("tiny")
    torch.manual_seed(0)
    model = UnifiedModel(config).eval()
    critic = HierarchicalDiscriminator(config).requires_grad_(False)
    batch = random_batch(config)
    seen: list[torch.Tensor] = []
    critic.register_forward_pre_hook(lambda _, args: seen.append(args[1].detach().clone()))
    with torch.no_grad():
        model.generator.global_generator.heads.bias.fill_(-3.0)  # a visible edit
        input_masks = model.region_masks(batch.images).masks
        fake = model(batch.images, batch.target).image
        fake_masks = model.region_masks(fake).masks
    assert (fake_masks - input_masks).abs().max() > 1e-3  # the edit parses differently

    generator_step(model, critic, batch, LossWeights())
    torch.testing.assert_close(seen[-1], input_masks)  # default: the input's masks
    named = generator_step(model, critic, batch, LossWeights(), own_masks=True)
    torch.testing.assert_close(seen[-1], fake_masks)
    named["g/local_cls"].backward()
    assert model.generator.global_generator.heads.weight.grad is not None

    discriminator_step(model, critic, batch, LossWeights(), own_masks=True)
    reals_and_fakes = seen[-1]
    torch.testing.assert_close(reals_and_fakes[:4], input_masks)
    torch.testing.assert_close(reals_and_fakes[4:], fake_masks)
    with pytest.raises(ConfigError, match="critic_masks"):
        GanOptimConfig(critic_masks="target")
