"""The expression classifier that judges edits: a ResNet-18, its training loop, and its file.

StarGAN and GANimation score an edit by asking a classifier trained on real faces whether the
edited face shows the target expression. This is that classifier: torchvision's ResNet-18
layout (same key names, so its ImageNet weights can start it), a width knob so tests can use a
small one, and a `.safetensors` file whose JSON header holds the architecture, the class names,
the held-out accuracy and the dataset, so a score can always be traced to the judge behind it.
Loading never unpickles.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from faceedit import __version__
from faceedit.configs import build
from faceedit.errors import CheckpointError, ConfigError, DatasetError, TrainingError
from faceedit.model.bisenet import BasicBlock  # torchvision's ResNet block, same key names
from faceedit.model.config import IMAGENET_MEAN, IMAGENET_STD
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.weights.checkpoint import (
    check_state,
    existing_file,
    read_tensors,
    tensor_digest,
    write_with_header,
)
from faceedit.weights.torch_files import load_resnet18
from trainer.judges.metrics import confusion_matrix

logger = logging.getLogger("trainer.judges.classifier")

FORMAT_NAME: Final[str] = "faceedit-classifier"
FORMAT_VERSION: Final[int] = 1
HEADER_KEY: Final[str] = "faceedit_classifier"
RESNET18_BLOCKS: Final[tuple[int, int, int, int]] = (2, 2, 2, 2)
TORCHVISION_WIDTH: Final[int] = 64
_PICKLE_PROTOCOL_BYTE: Final[int] = 0x80
_ZIP_MAGIC: Final[bytes] = b"PK\x03\x04"


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and input size. `base_channels` 64 with (2, 2, 2, 2) blocks is ResNet-18."""

    class_names: tuple[str, ...] = EXPRESSIONS
    base_channels: int = TORCHVISION_WIDTH
    blocks: tuple[int, int, int, int] = RESNET18_BLOCKS
    image_size: int = 128

    def __post_init__(self) -> None:
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise ConfigError(
                f"ClassifierConfig.class_names: need at least 2 distinct names, got "
                f"{list(self.class_names)}"
            )
        if len(self.blocks) != 4 or any(not isinstance(b, int) or b < 1 for b in self.blocks):
            raise ConfigError(
                f"ClassifierConfig.blocks: four stage depths >= 1, got {list(self.blocks)}"
            )
        if not isinstance(self.base_channels, int) or self.base_channels < 1:
            raise ConfigError(
                f"ClassifierConfig.base_channels must be a positive integer, got "
                f"{self.base_channels!r}"
            )
        if not isinstance(self.image_size, int) or self.image_size < 32:
            raise ConfigError(
                f"ClassifierConfig.image_size must be an integer >= 32 (five halvings), got "
                f"{self.image_size!r}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassifierConfig:
        """Rebuild from `to_dict` output (a classifier file's header); ConfigError if it is bad."""
        return build(cls, data, "ClassifierConfig")


# --- the network ------------------------------------------------------------------------------


class ExpressionClassifier(nn.Module):
    """ResNet-18 (torchvision key names: conv1, bn1, layer1.0.conv1, ..., fc) over expressions.

    Takes (B, 3, H, W) in [-1, 1] and normalises with ImageNet statistics itself, so torchvision
    weights see what they were trained on; returns (B, num_classes) logits.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        width = config.base_channels
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # [-1, 1] -> ImageNet-normalised in one multiply-add; not persistent: from the config.
        self.scale: Tensor
        self.shift: Tensor
        self.register_buffer("scale", 0.5 / std, persistent=False)
        self.register_buffer("shift", (0.5 - mean) / std, persistent=False)
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        channels = width
        for index, depth in enumerate(config.blocks):
            out = width * 2**index
            blocks = [BasicBlock(channels, out, 1 if index == 0 else 2)]
            blocks += [BasicBlock(out, out, 1) for _ in range(depth - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
            channels = out
        self.fc = nn.Linear(channels, config.num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        # 1. Normalise and stem: /4.
        x = x * self.scale + self.shift
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x)), inplace=True), 3, 2, 1)
        # 2. Four stages: /32 in all.
        for index in range(len(self.config.blocks)):
            x = getattr(self, f"layer{index + 1}")(x)
        # 3. Global average pool and the linear head.
        return self.fc(x.mean(dim=(2, 3)))

    @torch.no_grad()
    def probabilities(self, x: Tensor) -> Tensor:
        """(B, num_classes) softmax of images (B, 3, H, W) in [-1, 1], resized to the trained size."""
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        return self(x).float().softmax(dim=1)


def load_torchvision_weights(
    model: ExpressionClassifier, path: str | os.PathLike[str]
) -> tuple[str, ...]:
    """Start `model` from a torchvision ResNet-18 state dict file; returns the keys left out.

    Only the full-width ResNet-18 fits; the reading and key checks are
    faceedit.weights.torch_files.load_resnet18 (`fc` stays initialised for another class count).
    """
    file = Path(path)
    cfg = model.config
    if cfg.base_channels != TORCHVISION_WIDTH or tuple(cfg.blocks) != RESNET18_BLOCKS:
        raise ConfigError(
            f"torchvision ResNet-18 weights need base_channels {TORCHVISION_WIDTH} and blocks "
            f"{RESNET18_BLOCKS}; this classifier has {cfg.base_channels} and {cfg.blocks}"
        )
    return load_resnet18(model, file)


# --- training and scoring ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """How the classifier trains: AdamW with a cosine decay, class-balanced batches, flips and,
    when asked, random shifts, colour jitter and Gaussian noise (`augment_batch`): a judge that
    has seen speckle and shifted faces cannot be fooled by either."""

    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    class_balanced: bool = True
    flip: bool = True
    shift: int = 0  # largest random shift, pixels at the training size (reflected border)
    colour: float = 0.0  # colour jitter strength: brightness, contrast, saturation, channel gains
    noise: float = 0.0  # largest Gaussian noise std, in [-1, 1] image units
    min_class_images: int = 0  # balanced batches leave out classes with fewer training images
    seed: int = 0
    num_workers: int = 2
    log_every: int = 100

    def __post_init__(self) -> None:
        bad = {
            k: v
            for k, v in (
                ("steps", self.steps),
                ("batch_size", self.batch_size),
                ("log_every", self.log_every),
            )
            if not isinstance(v, int) or v < 1
        }
        augment = (
            not isinstance(self.shift, int)
            or self.shift < 0
            or not 0.0 <= self.colour < 1.0
            or self.noise < 0
            or self.min_class_images < 0
        )
        if augment:
            raise ConfigError(
                f"ClassifierTrainConfig: shift >= 0 ({self.shift!r}), colour in [0, 1) "
                f"({self.colour}), noise >= 0 ({self.noise}), min_class_images >= 0 "
                f"({self.min_class_images})"
            )
        if bad or not self.lr > 0 or self.weight_decay < 0 or self.num_workers < 0:
            raise ConfigError(
                f"ClassifierTrainConfig: steps, batch_size, log_every must be >= 1 {bad or ''}, "
                f"lr > 0 ({self.lr}), weight_decay >= 0 ({self.weight_decay}), "
                f"num_workers >= 0 ({self.num_workers})"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True)
class ClassifierScores:
    """Accuracy on a labelled set, overall and per class (None for classes with no sample)."""

    accuracy: float
    per_class: dict[str, float | None]
    confusion: np.ndarray  # (C, C): rows truth, columns prediction
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "per_class": self.per_class, "count": self.count}


@dataclass
class TrainedClassifier:
    model: ExpressionClassifier
    scores: ClassifierScores
    losses: list[float] = field(default_factory=list)


def cosine_lr(step: int, total: int, peak: float) -> float:
    """peak at step 0 falling to 0 at `total` along half a cosine."""
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def augment_batch(
    images: Tensor, config: ClassifierTrainConfig, generator: torch.Generator
) -> Tensor:
    """(B, 3, H, W) in [-1, 1], augmented as `config` says: a random shift of up to
    `config.shift` pixels (the border reflected), colour jitter of strength `config.colour`
    (brightness, contrast, saturation and per-channel gains, so neither a tint nor a grey photo
    is a cue) and Gaussian noise of a random std up to `config.noise`. Flips are separate."""
    batch = images.shape[0]
    device = images.device

    def uniform(low: float, high: float, *shape: int) -> Tensor:
        values = torch.rand(batch, *shape, generator=generator) * (high - low) + low
        return values.to(device)

    if config.shift > 0:
        s = config.shift
        padded = F.pad(images, (s, s, s, s), mode="reflect")
        offsets = torch.randint(0, 2 * s + 1, (batch, 2), generator=generator).tolist()
        height, width = images.shape[-2:]
        images = torch.stack(
            [padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)]
        )
    if config.colour > 0:
        c = config.colour
        x = (images + 1) / 2  # [0, 1]
        grey = x.mean(dim=1, keepdim=True)
        x = grey + (x - grey) * uniform(1 - c, 1 + c, 1, 1, 1)  # saturation
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * uniform(1 - c, 1 + c, 1, 1, 1)  # contrast
        x = x * uniform(1 - c / 2, 1 + c / 2, 3, 1, 1)  # channel gains: white balance
        x = x + uniform(-c / 2, c / 2, 1, 1, 1)  # brightness
        images = x.clamp(0, 1) * 2 - 1
    if config.noise > 0:
        std = uniform(0.0, config.noise, 1, 1, 1)
        noise = torch.randn(images.shape, generator=generator).to(device)
        images = (images + std * noise).clamp(-1, 1)
    return images


def train_classifier(
    model: ExpressionClassifier,
    train_set: Dataset,
    held_out: Dataset,
    config: ClassifierTrainConfig,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] = logger.info,
) -> TrainedClassifier:
    """Train on `train_set` for `config.steps` batches, then score on `held_out`."""
    from trainer.data.sampling import class_balanced_weights
    from trainer.stages.distributed import DistInfo
    from trainer.stages.loop import EndlessLoader, seed_everything

    device = torch.device(device)
    seed_everything(config.seed)
    model.to(device).train()
    weights = (
        class_balanced_weights(train_set, config.min_class_images)  # type: ignore[arg-type]  # expression datasets list their targets
        if config.class_balanced
        else None
    )
    batches = EndlessLoader(
        train_set,
        config.batch_size,
        seed=config.seed,
        info=DistInfo(rank=0, world_size=1, local_rank=0, device=device),
        num_workers=config.num_workers,
        weights=weights,
        name="classifier training data",
    )
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    flips = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    for step in range(config.steps):
        images, labels = next(batches)[:2]
        images, labels = images.to(device), labels.to(device)
        if config.flip:
            # Expressions are left-right symmetric: mirrored faces are free extra data.
            mirror = (torch.rand(images.shape[0], generator=flips) < 0.5).to(device)
            images = torch.where(mirror[:, None, None, None], images.flip(-1), images)
        images = augment_batch(images, config, flips)
        for group in optimiser.param_groups:
            group["lr"] = cosine_lr(step, config.steps, config.lr)
        loss = F.cross_entropy(model(images), labels, label_smoothing=config.label_smoothing)
        if not torch.isfinite(loss):
            raise TrainingError(f"classifier loss became {loss.item()} at step {step}; lower --lr")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            recent = losses[-config.log_every :]
            log(f"classifier step {step + 1}/{config.steps} loss {sum(recent) / len(recent):.4f}")
    scores = evaluate_classifier(model, held_out, device, config.batch_size, config.num_workers)
    return TrainedClassifier(model.eval(), scores, losses)


@torch.no_grad()
def evaluate_classifier(
    model: ExpressionClassifier,
    dataset: Dataset,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    num_workers: int = 0,
) -> ClassifierScores:
    """Top-1 accuracy of `model` on `dataset` (items: image, class index, ...)."""
    if len(dataset) == 0:  # type: ignore[arg-type]  # map-style datasets have len()
        raise DatasetError("the held-out split is empty, so the classifier cannot be scored")
    model.to(device).eval()
    names = model.config.class_names
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    for batch in loader:
        images, labels = batch[0].to(device), batch[1]
        predicted = model.probabilities(images).argmax(dim=1).cpu()
        matrix += confusion_matrix(predicted, labels, len(names))
    totals = matrix.sum(axis=1)
    per_class = {
        name: (float(matrix[i, i] / totals[i]) if totals[i] else None)
        for i, name in enumerate(names)
    }
    count = int(matrix.sum())
    return ClassifierScores(float(np.trace(matrix) / count), per_class, matrix, count)


# --- the file ---------------------------------------------------------------------------------


@dataclass
class LoadedClassifier:
    path: Path
    model: ExpressionClassifier
    metadata: dict[str, Any]

    @property
    def config(self) -> ClassifierConfig:
        return self.model.config

    @property
    def held_out_accuracy(self) -> float | None:
        value = self.metadata.get("held_out_accuracy")
        return float(value) if isinstance(value, int | float) else None


def save_classifier(
    path: str | os.PathLike[str], model: ExpressionClassifier, metadata: Mapping[str, Any]
) -> Path:
    """Write weights and a JSON header (config, class names, metadata) atomically."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "faceedit_version": __version__,
        "config": model.config.to_dict(),
        "class_names": list(model.config.class_names),
        "tensor_sha256": tensor_digest(tensors),
        "metadata": dict(metadata),
    }
    return write_with_header(path, tensors, header, what="classifier", header_key=HEADER_KEY)


def load_classifier(
    path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> LoadedClassifier:
    """Rebuild a classifier from its file alone; refuse anything that is not one."""
    file = existing_file(path)
    with open(file, "rb") as handle:
        head = handle.read(9)
    # A safetensors file is an 8-byte length and then its JSON header ('{'); its first byte
    # may well be 0x80 (a length of 128 + 256 k), so the pickle test must not stop at byte 0.
    looks_like_safetensors = head[8:9] == b"{"
    if not looks_like_safetensors and (
        head.startswith(_ZIP_MAGIC) or head[:1] == bytes([_PICKLE_PROTOCOL_BYTE])
    ):
        raise CheckpointError(
            f"{file} is a PyTorch pickle/.pth file, not a faceedit classifier; train one with "
            "'faceedit-train classifier' (a torchvision ResNet-18 .pth goes to its --init-weights)"
        )
    try:
        with safe_open(str(file), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(HEADER_KEY)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{file} is not a readable safetensors file ({error})") from None
    if raw is None:
        raise CheckpointError(
            f"{file} is not a faceedit expression classifier (no '{HEADER_KEY}' metadata); "
            "train one with 'faceedit-train classifier'"
        )
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{file}: the classifier header is not valid JSON ({error})"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{file}: the header does not describe a faceedit classifier")
    version = header.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: classifier format {version!r} is not one this faceedit reads (1.."
            f"{FORMAT_VERSION}); upgrade faceedit"
        )
    try:
        config = ClassifierConfig.from_dict(header["config"])
    except (ConfigError, KeyError, TypeError) as error:
        raise CheckpointError(f"{file}: the stored classifier config is invalid: {error}") from None
    tensors = read_tensors(file)
    if header.get("tensor_sha256") != tensor_digest(tensors):
        raise CheckpointError(
            f"{file}: the tensors do not match the checksum stored when the file was saved; "
            "the file was modified or damaged after saving"
        )
    model = ExpressionClassifier(config)
    check_state(file, "classifier", model, tensors)
    model.load_state_dict(tensors, strict=True)
    return LoadedClassifier(file, model.to(device).eval(), dict(header.get("metadata") or {}))
