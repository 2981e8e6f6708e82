"""The local editors and the region critics run as one grouped network compute, from the same
weights, what they compute run one after the other: outputs and every parameter's gradient
within rounding (checked in float64, where a slip cannot hide in it, and in float32, where
training runs), and the state dict (so every checkpoint) unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import torch
from torch import Tensor, nn

from faceedit.model.config import GeneratorConfig, ModelConfig, preset
from faceedit.model.discriminator import DiscriminatorOutput, HierarchicalDiscriminator
from faceedit.model.generator import GeneratorOutput, HierarchicalGenerator
from faceedit.model.grouped import LocalExecution, grouped_layer
from faceedit.weights import checkpoint

ModuleT = TypeVar("ModuleT", bound=nn.Module)
# Largest difference allowed, relative to the largest magnitude of the tensor compared (instance
# norms divide by small deviations of random weights' features, which magnifies rounding).
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}
# Editors that read the condition through FiLM too, with two residual blocks each.
TINY_FILM = preset("tiny").replace(
    local_generator=GeneratorConfig(base_channels=4, num_res_blocks=2, conditioning="film"),
    global_generator=GeneratorConfig(base_channels=8, num_res_blocks=1, conditioning="film"),
)
CONFIGS = {
    "input": preset("tiny"),
    "film": TINY_FILM,
    "two regions, valence-arousal": preset("tiny").replace(
        regions=("mouth", "eyes"), valence_arousal=True
    ),
    # each on its region's window: brows and eyes share a shape, nose and mouth have their own
    "windows": TINY_FILM.replace(local_windows=True),
}


def randomise(module: ModuleT, seed: int) -> ModuleT:
    """Different weights in every copy, FiLM's and the fuser's zero initialisations included."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return module


def generator_inputs(
    config: ModelConfig, dtype: torch.dtype = torch.float32, batch: int = 2
) -> dict[str, Tensor]:
    """Soft, overlapping masks, a different condition per editor and a partial region lock."""
    gen = torch.Generator().manual_seed(3)
    s, k, c = config.crop_size, config.num_regions, config.condition_dim
    inputs = {
        "x": torch.rand(batch, 3, s, s, generator=gen) * 2 - 1,
        "region_masks": torch.rand(batch, k, s, s, generator=gen),
        "condition": torch.rand(batch, 1 + k, c, generator=gen),
        "editable": torch.rand(batch, k, generator=gen),
    }
    return {name: value.to(dtype) for name, value in inputs.items()}


def assert_near(actual: Tensor, expected: Tensor, tolerance: float, what: str) -> None:
    scale = max(1.0, expected.abs().max().item())
    difference = (actual - expected).abs().max().item()
    assert difference <= tolerance * scale, (
        f"{what}: differs by {difference:.3g} (scale {scale:.3g})"
    )


def run(
    module: nn.Module, mode: LocalExecution, call: Callable[[nn.Module], tuple[Tensor, ...]]
) -> tuple[list[Tensor], dict[str, Tensor]]:
    """The outputs of `call` in `mode` and every parameter's gradient of a random mix of them."""
    module.set_local_execution(mode)  # type: ignore[operator]  # a generator or discriminator
    module.zero_grad(set_to_none=True)
    outputs = [t for t in call(module) if t is not None]
    gen = torch.Generator().manual_seed(5)
    loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in outputs)
    loss.backward()  # type: ignore[union-attr]
    grads = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
    return [t.detach() for t in outputs], grads


def assert_modes_agree(
    module: nn.Module,
    call: Callable[[nn.Module], tuple[Tensor, ...]],
    dtype: torch.dtype,
    every_parameter: bool = True,
) -> None:
    separate, separate_grads = run(module, "separate", call)
    grouped, grouped_grads = run(module, "grouped", call)
    assert len(grouped) == len(separate)
    for i, (a, b) in enumerate(zip(grouped, separate, strict=True)):
        assert_near(a, b, TOLERANCE[dtype], f"output {i}")
    names = {name for name, _ in module.named_parameters()}
    assert grouped_grads.keys() == separate_grads.keys()
    assert not every_parameter or separate_grads.keys() == names
    for name, grad in separate_grads.items():
        assert_near(grouped_grads[name], grad, TOLERANCE[dtype], f"{name}'s gradient")


def generator_outputs(inputs: dict[str, Tensor]) -> Callable[[nn.Module], GeneratorOutput]:
    return lambda generator: generator(**inputs)


CASES = [
    # (config, per-region conditions, training mode, dtype)
    *((name, True, True, torch.float64) for name in CONFIGS),
    ("film", False, False, torch.float64),  # one (B, C) condition for every editor
    ("film", True, True, torch.float32),
    ("two regions, valence-arousal", False, False, torch.float32),
    ("windows", True, True, torch.float32),
]


@pytest.mark.parametrize(("name", "per_region", "training", "dtype"), CASES)
def test_grouped_local_editors_compute_what_separate_ones_do(
    name: str, per_region: bool, training: bool, dtype: torch.dtype
) -> None:
    config = CONFIGS[name]
    torch.manual_seed(0)
    generator = randomise(HierarchicalGenerator(config), seed=1).train(training).to(dtype)
    inputs = generator_inputs(config, dtype)
    if not per_region:
        inputs["condition"] = inputs["condition"][:, 0]
    assert_modes_agree(generator, generator_outputs(inputs), dtype)


def test_a_global_only_model_is_unaffected() -> None:
    config = preset("tiny").replace(regions=())
    torch.manual_seed(0)
    generator = randomise(HierarchicalGenerator(config), seed=1)
    inputs = generator_inputs(config)
    del inputs["editable"]
    separate, _ = run(generator, "separate", generator_outputs(inputs))
    grouped, _ = run(generator, "grouped", generator_outputs(inputs))
    for a, b in zip(grouped, separate, strict=True):
        assert torch.equal(a, b)
    critic = HierarchicalDiscriminator(config).set_local_execution("grouped")
    out = critic(inputs["x"], inputs["region_masks"])
    assert out.local == {}


def critic_outputs(image: Tensor, masks: Tensor) -> Callable[[nn.Module], tuple[Tensor, ...]]:
    def call(critic: nn.Module) -> tuple[Tensor, ...]:
        out: DiscriminatorOutput = critic(image, masks)
        heads = [out.global_, *out.local.values()]
        return tuple(t for head in heads for t in head if t is not None)

    return call


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", ["input", "two regions, valence-arousal", "windows"])
def test_grouped_region_critics_compute_what_separate_ones_do(
    name: str, dtype: torch.dtype
) -> None:
    config = CONFIGS[name]
    torch.manual_seed(0)
    critic = randomise(HierarchicalDiscriminator(config), seed=2).to(dtype)
    inputs = generator_inputs(config, dtype)
    assert_modes_agree(critic, critic_outputs(inputs["x"], inputs["region_masks"]), dtype)
    assert list(critic(inputs["x"], inputs["region_masks"]).local) == list(config.regions)


@pytest.mark.parametrize("name", ["input", "windows"])
def test_grouped_critics_agree_through_the_gradient_penalty(name: str) -> None:
    """WGAN-GP differentiates the critics' scores by their input, then trains on that."""
    config = CONFIGS[name]
    torch.manual_seed(0)
    critic = randomise(HierarchicalDiscriminator(config), seed=2).double()
    inputs = generator_inputs(config, torch.float64)

    def penalty(module: nn.Module) -> tuple[Tensor, ...]:
        image = inputs["x"].clone().requires_grad_(True)
        out: DiscriminatorOutput = module(image, inputs["region_masks"])
        scores = torch.stack([head.patch.sum() for head in out.local.values()]).sum()
        (grad,) = torch.autograd.grad(scores, image, create_graph=True)
        return (grad.flatten(1).norm(dim=1),)

    # the penalty does not reach the critics' expression heads
    assert_modes_agree(critic, penalty, torch.float64, every_parameter=False)


def test_state_dicts_and_checkpoints_are_the_same_in_both_modes(tmp_path: Path) -> None:
    config = CONFIGS["film"]
    torch.manual_seed(0)
    generator = randomise(HierarchicalGenerator(config), seed=1).eval()
    critic = randomise(HierarchicalDiscriminator(config), seed=2).eval()
    before = {**generator.state_dict(), **critic.state_dict()}
    generator.set_local_execution("grouped")
    critic.set_local_execution("grouped")
    after = {**generator.state_dict(), **critic.state_dict()}
    assert list(after) == list(before)
    assert all(torch.equal(after[key], value) for key, value in before.items())
    path = checkpoint.save(
        tmp_path / "m.safetensors", config, generator=generator, discriminator=critic
    )
    loaded = checkpoint.load(path)
    assert loaded.generator is not None and loaded.discriminator is not None
    assert loaded.generator.local_execution == "separate"  # an execution choice, not stored
    inputs = generator_inputs(config)
    with torch.no_grad():  # the loaded copies, run separately, compute what the grouped ones did
        pairs = [
            (generator_outputs(inputs)(generator), generator_outputs(inputs)(loaded.generator)),
            (critic_outputs(inputs["x"], inputs["region_masks"])(critic),
             critic_outputs(inputs["x"], inputs["region_masks"])(loaded.discriminator)),
        ]  # fmt: skip
    for grouped, separate in pairs:
        for a, b in zip(grouped, separate, strict=True):
            assert_near(a, b, TOLERANCE[torch.float32], "a reloaded network's output")


def test_unknown_modes_and_layers_are_refused() -> None:
    generator = HierarchicalGenerator(preset("tiny"))
    with pytest.raises(ValueError, match="grouped"):
        generator.set_local_execution("batched")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Identity"):
        grouped_layer([nn.Identity(), nn.Identity()], torch.zeros(1, 2, 4, 4))
    reflect = [nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect") for _ in range(2)]
    with pytest.raises(ValueError, match="zeros"):
        grouped_layer(reflect, torch.zeros(1, 2, 4, 4))
