from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import IMAGENET_MEAN, IMAGENET_STD, ParserConfig, preset
from faceedit.model.parsing import (
    PARSERS,
    InputNormalization,
    ParserOutput,
    build_parser,
    fold_batchnorm,
)
from faceedit.model.unet import UNet
from tests.weights.community_files import randomise_batchnorm

# The tensor names and shapes of face-parsing.PyTorch's 79999_iter.pth, in file order.
REFERENCE_KEYS = Path(__file__).resolve().parents[1] / "data" / "face-parsing-bisenet-keys.tsv"

BISENET = ParserConfig(kind="bisenet", resolution=64)
UNET_D2 = ParserConfig(kind="unet", resolution=32, unet_depth=2, unet_base_width=8)
UNET_D3 = ParserConfig(kind="unet", resolution=64, unet_depth=3, unet_base_width=8)


def images(batch: int, size: int) -> torch.Tensor:
    return torch.rand(batch, 3, size, size) * 2 - 1  # (B, 3, S, S) in [-1, 1]


@pytest.fixture(scope="module")
def bisenet() -> BiSeNet:
    torch.manual_seed(1)
    return randomise_batchnorm(BiSeNet(BISENET)).eval()


def test_registry_builds_each_kind_from_its_config() -> None:
    assert set(PARSERS) == {"bisenet", "unet"}
    assert PARSERS["bisenet"] is BiSeNet and PARSERS["unet"] is UNet
    for config in (BISENET, UNET_D2):
        parser = build_parser(config)
        assert type(parser) is PARSERS[config.kind]
        assert parser.config is config
    assert isinstance(build_parser(preset("tiny").parser), UNet)


@pytest.mark.parametrize(
    ("config", "size"),
    [(BISENET, 64), (BISENET, 128), (UNET_D2, 96), (UNET_D3, 64), (UNET_D3, 128)],
    ids=["bisenet-64", "bisenet-128", "unet2-96", "unet3-64", "unet3-128"],
)
@pytest.mark.parametrize("batch", [1, 2])
def test_eval_output_is_logits_at_input_size_without_aux(
    config: ParserConfig, size: int, batch: int
) -> None:
    parser = build_parser(config).eval()
    with torch.no_grad():
        out = parser(images(batch, size))
    assert isinstance(out, ParserOutput)
    assert out.logits.shape == (batch, 19, size, size)
    assert out.aux == ()
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("size", [64, 96])
def test_bisenet_trains_with_two_aux_heads_at_input_size(size: int) -> None:
    parser = BiSeNet(BISENET).train()
    out = parser(images(2, size))
    assert out.logits.shape == (2, 19, size, size)
    assert len(out.aux) == 2
    assert all(aux.shape == (2, 19, size, size) for aux in out.aux)
    # aux16 and aux32 come from different heads, so they differ from the main logits and each other
    assert not torch.allclose(out.aux[0], out.aux[1])
    assert not torch.allclose(out.logits, out.aux[0])


def test_bisenet_training_on_one_image_says_why_it_cannot() -> None:
    with pytest.raises(ValueError, match="batch of at least 2"):
        BiSeNet(BISENET).train()(images(1, 64))


def test_unet_has_no_aux_heads_in_training_either() -> None:
    out = UNet(UNET_D2).train()(images(1, 32))
    assert out.logits.shape == (1, 19, 32, 32) and out.aux == ()


def test_bisenet_state_dict_is_the_community_layout() -> None:
    rows = [line.split("\t") for line in REFERENCE_KEYS.read_text().splitlines() if line.strip()]
    reference = [(key, shape) for key, shape in rows]
    assert len(reference) == 191
    ours = [(key, str(tuple(v.shape))) for key, v in BiSeNet(BISENET).state_dict().items()]
    assert ours == reference


@pytest.mark.parametrize("config", [BISENET, UNET_D2], ids=["bisenet", "unet"])
def test_normalisation_buffers_stay_out_of_the_state_dict(config: ParserConfig) -> None:
    parser = build_parser(config)
    names = {name for name, _ in parser.named_buffers()}
    assert {"normalize.scale", "normalize.shift"} <= names
    assert not any(key.startswith("normalize.") for key in parser.state_dict())


def test_input_normalisation_maps_minus_one_one_to_the_training_statistics() -> None:
    norm = InputNormalization(IMAGENET_MEAN, IMAGENET_STD)
    x = images(2, 8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), ((x + 1) / 2 - mean) / std)
    identity = InputNormalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    torch.testing.assert_close(identity(x), x)


def _without_grad(parser: nn.Module) -> list[str]:
    return [
        name
        for name, p in parser.named_parameters()
        if p.grad is None or not torch.count_nonzero(p.grad)
    ]


def test_unet_loss_on_logits_reaches_every_parameter() -> None:
    parser = UNet(UNET_D3).train()
    out = parser(images(2, 64))
    target = torch.randint(0, 19, (2, 64, 64))
    F.cross_entropy(out.logits, target).backward()
    assert _without_grad(parser) == []


def test_bisenet_losses_reach_every_parameter() -> None:
    parser = BiSeNet(BISENET).train()
    out = parser(images(2, 64))
    target = torch.randint(0, 19, (2, 64, 64))
    # The main logits reach everything except the two auxiliary heads ...
    F.cross_entropy(out.logits, target).backward(retain_graph=True)
    unreached = _without_grad(parser)
    assert unreached and all(n.startswith(("conv_out16.", "conv_out32.")) for n in unreached)
    # ... which the auxiliary losses train.
    sum(F.cross_entropy(aux, target) for aux in out.aux).backward()
    assert _without_grad(parser) == []


@pytest.mark.parametrize(
    ("config", "shape", "message"),
    [
        (BISENET, (1, 3, 100, 96), r"multiples of 32.*100x96"),
        (BISENET, (1, 3, 64, 48), r"multiples of 32.*64x48"),
        (UNET_D2, (1, 3, 30, 32), r"UNet\(depth=2\).*multiples of 4.*30x32"),
        (UNET_D2, (1, 1, 32, 32), r"\(B, 3, H, W\).*\(1, 1, 32, 32\)"),
        (BISENET, (3, 64, 64), r"\(B, 3, H, W\)"),
    ],
    ids=["bisenet-100", "bisenet-48", "unet-30", "unet-gray", "bisenet-unbatched"],
)
def test_bad_input_sizes_name_the_size_and_the_multiple(
    config: ParserConfig, shape: tuple[int, ...], message: str
) -> None:
    parser = build_parser(config).eval()
    with pytest.raises(ValueError, match=message):
        parser(torch.zeros(shape))


def test_fold_batchnorm_matches_the_unfolded_model(bisenet: BiSeNet) -> None:
    folded = fold_batchnorm(bisenet)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert not folded.training
    assert not any(p.requires_grad for p in folded.parameters())
    # the original keeps its BatchNorms and its state dict
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bisenet.modules()) == 31
    assert len(bisenet.state_dict()) == 191
    x = images(2, 64)
    with torch.inference_mode():
        expected = bisenet(x).logits
        got = folded(x).logits
    assert (got - expected).abs().max() < 1e-4
    assert expected.abs().max() > 1e-2  # not a vacuous comparison of near-zero maps


def test_fold_batchnorm_handles_the_unet_too() -> None:
    unet = randomise_batchnorm(UNet(UNET_D2)).eval()
    folded = fold_batchnorm(unet)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = images(2, 32)
    with torch.inference_mode():
        assert (folded(x).logits - unet(x).logits).abs().max() < 1e-4


def module_calls(module: nn.Module, x: torch.Tensor) -> Counter[str]:
    """How many times each kind of layer runs in one forward pass."""
    calls: Counter[str] = Counter()
    hooks = [
        m.register_forward_hook(lambda m, i, o: calls.update([type(m).__name__]))
        for m in module.modules()
        if not list(m.children())
    ]
    try:
        with torch.inference_mode():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def test_fold_batchnorm_runs_the_same_convolutions_and_no_batchnorm(bisenet: BiSeNet) -> None:
    """Folding removes work and adds none (`faceedit bench` measures what that saves)."""
    x = images(1, 64)
    plain, folded = module_calls(bisenet, x), module_calls(fold_batchnorm(bisenet), x)
    assert plain["BatchNorm2d"] > 0 and folded["BatchNorm2d"] == 0
    assert folded["Conv2d"] == plain["Conv2d"]
    assert folded["Identity"] - plain["Identity"] == plain["BatchNorm2d"]  # each BN, now a no-op
    assert folded - Counter(Identity=folded["Identity"]) == plain - Counter(
        BatchNorm2d=plain["BatchNorm2d"], Identity=plain["Identity"]
    )
