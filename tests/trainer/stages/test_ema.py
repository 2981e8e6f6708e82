"""The EMA generator the gan and joint stages export (what the app loads): its average and its
save/load round trip against the network in memory."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from faceedit.weights import checkpoint
from tests.factories import synthetic_faces
from trainer.stages.loop import ema_decay_at, make_ema, update_ema


def moved(module: nn.Module, seed: int) -> nn.Module:
    """A copy of `module` with every weight and buffer nudged, as a few training steps would."""
    other = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*other.parameters(), *other.buffers()]:
            if tensor.is_floating_point():
                tensor.add_(0.01 * torch.randn(tensor.shape, generator=gen))
    return other


def test_ema_follows_the_weights_and_stays_frozen(tiny_model: Path) -> None:
    start = checkpoint.load(tiny_model).generator
    assert start is not None
    ema = make_ema(start)
    assert not ema.training and not any(p.requires_grad for p in ema.parameters())
    trained = moved(start, seed=1)
    update_ema(ema, trained, decay=0.75)
    buffers = dict(ema.named_buffers())
    for name, averaged in ema.state_dict().items():
        old, new = start.state_dict()[name], trained.state_dict()[name]
        expected = new if name in buffers else 0.75 * old + 0.25 * new
        torch.testing.assert_close(averaged, expected, rtol=1e-5, atol=1e-6)
    assert any(
        not torch.equal(a, b) for a, b in zip(ema.parameters(), trained.parameters(), strict=True)
    )
    assert ema_decay_at(0, 0.999) == 0.1 and ema_decay_at(10**6, 0.999) == 0.999


def test_saved_ema_generator_computes_what_it_did_before_saving(
    tiny_model: Path, tmp_path: Path
) -> None:
    """As the gan stage exports it: the EMA copy under `generator`, beside the parser."""
    loaded = checkpoint.load(tiny_model)
    assert loaded.generator is not None and loaded.parser is not None
    ema = make_ema(loaded.generator)
    update_ema(ema, moved(loaded.generator, seed=2), decay=ema_decay_at(2, 0.999))
    path = checkpoint.save(
        tmp_path / "model.safetensors", loaded.config, parser=loaded.parser, generator=ema
    )
    reloaded = checkpoint.load(path)
    assert reloaded.generator is not None and not reloaded.generator.training
    x = synthetic_faces(2, loaded.config.crop_size, seed=4)
    cond = torch.eye(loaded.config.condition_dim)[torch.tensor([0, 6])]
    with torch.inference_mode():
        masks = loaded.unified().region_masks(x).masks
        before, after = ema(x, masks, cond), reloaded.generator(x, masks, cond)
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)


def test_the_multi_tensor_update_is_the_per_tensor_average(tiny_model: Path) -> None:
    """update_ema's foreach form (few kernel launches on a GPU) gives bit for bit what a lerp of
    each tensor in turn gives; networks that do not match are refused."""
    import pytest

    start = checkpoint.load(tiny_model).generator
    assert start is not None
    trained = moved(start, seed=3)
    ema, by_hand = make_ema(start), make_ema(start)
    update_ema(ema, trained, decay=0.9)
    with torch.no_grad():
        for averaged, current in zip(by_hand.parameters(), trained.parameters(), strict=True):
            averaged.lerp_(current, 0.1)
        for averaged, current in zip(by_hand.buffers(), trained.buffers(), strict=True):
            averaged.copy_(current)
    for (name, a), b in zip(ema.state_dict().items(), by_hand.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="parameters"):
        update_ema(ema, nn.Linear(2, 2), decay=0.9)
