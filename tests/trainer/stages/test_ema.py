"""The EMA generator the gan and joint stages export (what the app loads): its average and its
save/load round trip against the network in memory."""

from __future__ import annotations

from pathlib import Path

import torch

from faceedit.model.config import preset
from faceedit.weights import checkpoint
from tests.factories import synthetic_faces, train_briefly
from trainer.stages.loop import ema_decay_at, make_ema, update_ema


def test_ema_follows_the_weights_and_stays_frozen() -> None:
    config = preset("tiny")
    start, _ = train_briefly(config, steps=1)
    ema = make_ema(start.generator)
    assert not ema.training and not any(p.requires_grad for p in ema.parameters())
    trained, _ = train_briefly(config, steps=3)
    update_ema(ema, trained.generator, decay=0.75)
    for name, averaged in ema.state_dict().items():
        old, new = start.generator.state_dict()[name], trained.generator.state_dict()[name]
        expected = new if name in dict(ema.named_buffers()) else 0.75 * old + 0.25 * new
        torch.testing.assert_close(averaged, expected, rtol=1e-5, atol=1e-6)
    assert ema_decay_at(0, 0.999) == 0.1 and ema_decay_at(10**6, 0.999) == 0.999


def test_saved_ema_generator_computes_what_it_did_before_saving(tmp_path: Path) -> None:
    """As the gan stage exports it: the EMA copy under `generator`, beside the parser."""
    config = preset("tiny")
    model, _ = train_briefly(config, steps=1)
    ema = make_ema(model.generator)
    later, _ = train_briefly(config, steps=3)
    update_ema(ema, later.generator, decay=ema_decay_at(2, 0.999))
    path = checkpoint.save(
        tmp_path / "model.safetensors", config, parser=model.parser, generator=ema
    )
    loaded = checkpoint.load(path)
    assert loaded.generator is not None and not loaded.generator.training
    x = synthetic_faces(2, config.crop_size, seed=4)
    cond = torch.eye(config.condition_dim)[torch.tensor([0, 6])]
    with torch.inference_mode():
        masks = model.region_masks(x).masks
        before, after = ema(x, masks, cond), loaded.generator(x, masks, cond)
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)
