"""The expression classifier: ResNet-18 layout, learning a separable fixture, its file (its command:
tests/trainer/commands/test_classifier.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import Dataset

from faceedit.errors import CheckpointError, ConfigError
from faceedit.vocab.expressions import EXPRESSIONS
from trainer.judges.classifier import (
    ClassifierConfig,
    ClassifierTrainConfig,
    ExpressionClassifier,
    evaluate_classifier,
    load_classifier,
    load_torchvision_weights,
    save_classifier,
    train_classifier,
)

# torchvision's resnet18().state_dict() keys and shapes, for the 64-wide network (facts from
# torchvision's ResNet: stem conv1/bn1, layer1..4 of two BasicBlocks, downsample in layer2..4).
RESNET18_SHAPES = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.running_var": (64,),
    "layer1.0.conv1.weight": (64, 64, 3, 3),
    "layer1.1.bn2.bias": (64,),
    "layer2.0.conv1.weight": (128, 64, 3, 3),
    "layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "layer2.0.downsample.1.running_mean": (128,),
    "layer3.1.conv2.weight": (256, 256, 3, 3),
    "layer4.0.downsample.0.weight": (512, 256, 1, 1),
    "layer4.1.bn2.weight": (512,),
    "fc.weight": (8, 512),
    "fc.bias": (8,),
}
RESNET18_KEY_COUNT = 122  # 62 weights/biases + 20 BatchNorms x 3 buffers


class ColourClasses(Dataset):
    """Class k is a face-sized blob of colour k on noise: separable, but not from one pixel."""

    COLOURS = torch.tensor(
        [[0.8, -0.6, -0.6], [-0.6, 0.8, -0.6], [-0.6, -0.6, 0.8], [0.7, 0.7, -0.6]]
    )

    def __init__(self, count: int, size: int = 32, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(count) % len(self.COLOURS)
        yy, xx = torch.meshgrid(
            torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij"
        )
        shift = torch.rand(count, 2, generator=gen) * 0.6 - 0.3
        blob = ((xx - shift[:, :1, None]) ** 2 + (yy - shift[:, 1:, None]) ** 2 < 0.3).float()
        noise = 0.4 * torch.randn(count, 3, size, size, generator=gen)
        colour = self.COLOURS[self.labels][:, :, None, None]
        self.images = (noise + blob[:, None] * colour).clamp(-1, 1)

    @property
    def targets(self) -> np.ndarray:
        return self.labels.numpy()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index], torch.full((2,), float("nan"))


def small_config(**changes: object) -> ClassifierConfig:
    base = {"base_channels": 8, "blocks": (1, 1, 1, 1), "image_size": 32}
    return ClassifierConfig(**{**base, **changes})  # type: ignore[arg-type]  # mixed field types in one dict


def test_full_width_network_has_torchvision_resnet18_keys() -> None:
    state = ExpressionClassifier(ClassifierConfig()).state_dict()
    assert len(state) == RESNET18_KEY_COUNT
    for key, shape in RESNET18_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    params = sum(p.numel() for p in ExpressionClassifier(ClassifierConfig()).parameters())
    # resnet18's 11,689,512 parameters, less its 1000-class head (513,000), plus an 8-class one
    assert params == 11_689_512 - 513_000 + 4_104


def test_width_scales_and_logits_have_one_column_per_class() -> None:
    model = ExpressionClassifier(small_config(class_names=("a", "b", "c")))
    assert model.conv1.out_channels == 8 and model.fc.in_features == 64
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    probs = model.eval().probabilities(torch.zeros(2, 3, 48, 48))  # resized to 32 first
    assert torch.allclose(probs.sum(1), torch.ones(2))


@pytest.mark.parametrize(
    "changes",
    [{"class_names": ("happy",)}, {"base_channels": 0}, {"blocks": (2, 2, 2)}, {"image_size": 16}],
)
def test_config_refuses_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        small_config(**changes)


@pytest.mark.slow
def test_learns_a_separable_fixture_well_above_chance() -> None:
    model = ExpressionClassifier(small_config(class_names=("red", "green", "blue", "yellow")))
    train_set, held_out = ColourClasses(256, seed=1), ColourClasses(64, seed=2)
    before = evaluate_classifier(model, held_out).accuracy
    config = ClassifierTrainConfig(steps=150, batch_size=32, lr=3e-3, num_workers=0, log_every=50)
    trained = train_classifier(model, train_set, held_out, config)
    assert trained.scores.accuracy >= 0.9, (before, trained.scores.to_dict())
    assert trained.scores.count == 64
    assert np.mean(trained.losses[-20:]) < np.mean(trained.losses[:20])
    assert all(v is not None and v > 0.6 for v in trained.scores.per_class.values())


def test_save_and_load_round_trip_keeps_outputs_and_metadata(tmp_path: Path) -> None:
    model = ExpressionClassifier(small_config())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # training-mode passes move the BatchNorm statistics off their init
        for _ in range(2):
            model(torch.rand(4, 3, 32, 32) * 2 - 1)
    model.eval()
    path = save_classifier(
        tmp_path / "judge.safetensors",
        model,
        {"held_out_accuracy": 0.75, "dataset": {"kind": "rafd", "root": "/data/rafd"}},
    )
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file
    loaded = load_classifier(path)
    assert loaded.config == model.config
    assert loaded.config.class_names == EXPRESSIONS
    assert loaded.held_out_accuracy == 0.75
    assert loaded.metadata["dataset"]["kind"] == "rafd"
    assert not loaded.model.training
    with torch.inference_mode():
        assert torch.equal(loaded.model(x), model(x))


def test_loading_refuses_pickles_foreign_files_and_tampering(tmp_path: Path) -> None:
    pth = tmp_path / "resnet.pth"
    torch.save({"w": torch.zeros(1)}, pth)
    with pytest.raises(CheckpointError, match="pickle"):
        load_classifier(pth)
    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a faceedit expression classifier"):
        load_classifier(foreign)
    good = save_classifier(tmp_path / "c.safetensors", ExpressionClassifier(small_config()), {})
    data = bytearray(good.read_bytes())
    data[-4] ^= 0xFF  # flip bits in the last tensor
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_classifier(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_classifier(tmp_path / "missing.safetensors")


def test_torchvision_weights_load_and_fc_is_skipped_for_another_class_count(
    tmp_path: Path,
) -> None:
    source = ExpressionClassifier(ClassifierConfig(class_names=tuple(f"c{i}" for i in range(1000))))
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in source.state_dict().items()}
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    target = ExpressionClassifier(ClassifierConfig())
    fc_before = target.fc.weight.detach().clone()
    assert load_torchvision_weights(target, path) == ("fc.weight", "fc.bias")
    assert torch.equal(target.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert torch.equal(target.bn1.running_mean, state["bn1.running_mean"])
    assert torch.equal(target.fc.weight, fc_before)
    with pytest.raises(ConfigError, match="base_channels 64"):
        load_torchvision_weights(ExpressionClassifier(small_config()), path)
    del state["layer2.0.downsample.0.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"1 missing \(layer2.0.downsample.0.weight\)"):
        load_torchvision_weights(ExpressionClassifier(ClassifierConfig()), path)


def test_a_header_length_whose_first_byte_is_0x80_is_not_taken_for_a_pickle(
    tmp_path: Path,
) -> None:
    model = ExpressionClassifier(small_config())
    path = tmp_path / "judge.safetensors"
    save_classifier(path, model, {"pad": ""})
    length = int.from_bytes(path.read_bytes()[:8], "little")  # JSON length rounded up to 8
    pad = (0x80 - length) % 256  # more JSON bytes that round up to a length of 128 (mod 256)
    save_classifier(path, model, {"pad": "x" * pad})
    assert path.read_bytes()[0] == 0x80  # the first byte of a pickle, here a header length
    assert load_classifier(path).metadata["pad"] == "x" * pad


# --- augmentation ------------------------------------------------------------------------------


def test_augmentation_is_off_by_default_and_keeps_shape_and_range_when_on() -> None:
    from trainer.judges.classifier import augment_batch

    images = torch.rand(6, 3, 16, 16) * 2 - 1
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(augment_batch(images, ClassifierTrainConfig(), generator), images)
    for config in (
        ClassifierTrainConfig(shift=3),
        ClassifierTrainConfig(colour=0.3),
        ClassifierTrainConfig(noise=0.1),
    ):
        out = augment_batch(images, config, generator)
        assert out.shape == images.shape and not torch.equal(out, images)
        assert out.min() >= -1 and out.max() <= 1


def test_a_shift_moves_the_picture_and_reflects_the_border() -> None:
    from trainer.judges.classifier import augment_batch

    images = torch.zeros(8, 3, 9, 9)
    images[:, :, 4, 4] = 1.0  # one bright pixel in the middle
    out = augment_batch(images, ClassifierTrainConfig(shift=2), torch.Generator().manual_seed(1))
    peaks = [tuple(int(v) for v in divmod(int(o[0].argmax()), 9)) for o in out]
    assert all(abs(r - 4) <= 2 and abs(c - 4) <= 2 for r, c in peaks)
    assert len(set(peaks)) > 1  # not every image moved alike


@pytest.mark.parametrize(
    "changes", [{"shift": -1}, {"colour": 1.0}, {"noise": -0.1}, {"min_class_images": -1}]
)
def test_augmentation_settings_are_checked(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ClassifierTrainConfig(**changes)  # type: ignore[arg-type]
