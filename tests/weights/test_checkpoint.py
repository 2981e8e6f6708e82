from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from faceedit.errors import CheckpointError
from faceedit.model.config import GeneratorConfig, ModelConfig, ParserConfig, preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.weights import checkpoint
from tests.factories import synthetic_faces, train_briefly


@pytest.fixture(scope="module")
def saved(tiny_model: Path) -> Path:
    return tiny_model


def rewrite(
    src: Path, dst: Path, *, header_edit=None, tensor_edit=None, fix_digest: bool = True
) -> Path:
    """Copy a checkpoint with its header or tensors changed, as a tamperer would."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as handle:
        header = json.loads(handle.metadata()["faceedit"])
    tensors = load_file(str(src))
    if tensor_edit:
        tensor_edit(tensors)
    if header_edit:
        header_edit(header)
    if fix_digest:
        header["tensor_sha256"] = checkpoint.tensor_digest(tensors)
    save_file(tensors, str(dst), metadata={"faceedit": json.dumps(header)})
    return dst


def tensors_of(output: object) -> list[torch.Tensor]:
    """Every tensor in a (nested) network output, in a fixed order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for key in sorted(output) for t in tensors_of(output[key])]
    if isinstance(output, tuple | list):
        return [t for item in output for t in tensors_of(item)]
    return []


def assert_same_outputs(before: object, after: object) -> None:
    a, b = tensors_of(before), tensors_of(after)
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


TINY_BISENET = preset("tiny").replace(parser=ParserConfig(kind="bisenet", resolution=32))
TINY_FILM = preset("tiny").replace(
    global_generator=GeneratorConfig(8, 1, conditioning="film"),
    local_generator=GeneratorConfig(4, 1, conditioning="film"),
)


def as_if_trained(module: nn.Module, seed: int) -> nn.Module:
    """`module` in eval mode with every saved weight and norm statistic moved off its
    initialisation (what training does, without its cost): a round trip must carry them all.
    (Non-persistent buffers are constants the network rebuilds, not state: left alone.)"""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0, generator=gen)
            else:
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=gen))
    return module.eval()


@pytest.mark.parametrize(
    "config", [preset("tiny"), TINY_BISENET, TINY_FILM], ids=["unet", "bisenet", "film"]
)
def test_round_trip_outputs_equal_the_networks_before_saving(
    config: ModelConfig, tmp_path: Path
) -> None:
    """Each saved network, reloaded, computes exactly what the network in memory did."""
    torch.manual_seed(0)
    model = as_if_trained(UnifiedModel(config), seed=1)
    disc = as_if_trained(HierarchicalDiscriminator(config), seed=2)
    path = checkpoint.save(
        tmp_path / "model.safetensors",
        config,
        parser=model.parser,
        generator=model.generator,
        discriminator=disc,
        metadata={"trained_steps": 2},
    )
    loaded = checkpoint.load(path)
    assert loaded.contents == ("parser", "generator", "discriminator")
    assert loaded.metadata == {"trained_steps": 2}
    assert loaded.parser is not None and loaded.generator is not None
    assert loaded.discriminator is not None
    assert not (
        loaded.parser.training or loaded.generator.training or loaded.discriminator.training
    )
    x = synthetic_faces(2, config.crop_size, seed=9)
    cond = torch.eye(config.condition_dim)[torch.tensor([2, 5])]
    with torch.inference_mode():
        masks = model.region_masks(x).masks
        assert_same_outputs(model.parser(x), loaded.parser(x))
        assert_same_outputs(model.generator(x, masks, cond), loaded.generator(x, masks, cond))
        assert_same_outputs(disc(x, masks), loaded.discriminator(x, masks))
        assert_same_outputs(model(x, cond), loaded.unified()(x, cond))


def test_saved_weights_are_the_trained_ones(tmp_path: Path) -> None:
    config = preset("tiny")
    model, _ = train_briefly(config, steps=2)
    path = checkpoint.save(
        tmp_path / "m.safetensors", config, parser=model.parser, generator=model.generator
    )
    loaded = checkpoint.load(path)
    for name, value in model.generator.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[name], value), name
    assert loaded.discriminator is None


@pytest.mark.parametrize("parts", [("parser",), ("generator",), ("parser", "generator")])
def test_partial_checkpoints(tmp_path: Path, tiny_model: Path, parts: tuple[str, ...]) -> None:
    full = checkpoint.load(tiny_model)
    modules = {"parser": full.parser, "generator": full.generator}
    path = checkpoint.save(
        tmp_path / "p.safetensors", full.config, **{p: modules[p] for p in parts}
    )
    loaded = checkpoint.load(path)
    assert loaded.contents == parts


def test_refuses_files_that_are_not_safetensors(tmp_path: Path) -> None:
    text = tmp_path / "notes.safetensors"
    text.write_text("these are my notes, not a model at all")
    with pytest.raises(CheckpointError, match="not a safetensors"):
        checkpoint.load(text)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        checkpoint.load(empty)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "missing.safetensors")


def test_refuses_foreign_safetensors(tmp_path: Path) -> None:
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a faceedit checkpoint"):
        checkpoint.load(other)


def test_refuses_newer_format(saved: Path, tmp_path: Path) -> None:
    newer = rewrite(
        saved, tmp_path / "newer.safetensors", header_edit=lambda h: h.update(format_version=99)
    )
    with pytest.raises(CheckpointError, match="newer faceedit"):
        checkpoint.load(newer)


def test_refuses_missing_and_misshapen_tensors(saved: Path, tmp_path: Path) -> None:
    def drop(t: dict) -> None:
        del t[next(k for k in t if k.startswith("generator."))]

    def reshape(t: dict) -> None:
        key = next(k for k in t if k.startswith("parser.") and t[k].ndim == 4)
        t[key] = torch.zeros(1, *t[key].shape[1:])

    with pytest.raises(CheckpointError, match="1 missing"):
        checkpoint.load(rewrite(saved, tmp_path / "a.safetensors", tensor_edit=drop))
    with pytest.raises(CheckpointError, match="misshapen"):
        checkpoint.load(rewrite(saved, tmp_path / "b.safetensors", tensor_edit=reshape))


def test_refuses_tampered_tensors(saved: Path, tmp_path: Path) -> None:
    def nudge(t: dict) -> None:
        key = next(k for k in t if k.startswith("generator.") and t[k].is_floating_point())
        t[key] = t[key] + 1e-3

    tampered = rewrite(saved, tmp_path / "t.safetensors", tensor_edit=nudge, fix_digest=False)
    with pytest.raises(CheckpointError, match="modified or damaged"):
        checkpoint.load(tampered)


def test_refuses_a_config_that_does_not_validate(saved: Path, tmp_path: Path) -> None:
    bad = rewrite(
        saved, tmp_path / "c.safetensors", header_edit=lambda h: h["config"].update(crop_size=-4)
    )
    with pytest.raises(CheckpointError, match="config is invalid"):
        checkpoint.load(bad)


def test_refuses_truncated_file(saved: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.safetensors"
    data = saved.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        checkpoint.load(cut)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_never_unpickles(tmp_path: Path, suffix: str) -> None:
    marker = tmp_path / "pwned"
    for protocol in (2, 5):
        evil = tmp_path / f"evil{protocol}{suffix}"
        evil.write_bytes(pickle.dumps({"state_dict": _Exploit(marker)}, protocol=protocol))
        with pytest.raises(CheckpointError, match=r"never\s+unpickles"):
            checkpoint.load(evil)
    zipped = tmp_path / f"zipped{suffix}"
    torch.save({"w": torch.zeros(2)}, zipped)
    with pytest.raises(CheckpointError, match="pickle"):
        checkpoint.load(zipped)
    assert not marker.exists()


def test_save_is_atomic(saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "keep.safetensors"
    target.write_bytes(saved.read_bytes())
    before = target.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(checkpoint, "safetensors_bytes", explode)
    loaded = checkpoint.load(saved)
    with pytest.raises(RuntimeError, match="disk full"):
        checkpoint.save(target, loaded.config, parser=loaded.parser)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.safetensors"]


def test_nothing_to_save_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nothing to save"):
        checkpoint.save(tmp_path / "x.safetensors", preset("tiny"))
