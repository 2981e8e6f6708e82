"""Stage 1's training: the face parser on CelebAMask-HQ.

BiSeNet follows face-parsing.PyTorch's recipe: OHEM cross-entropy on the main and both
auxiliary heads, SGD (momentum 0.9, weight decay 5e-4 on conv weights) with a linear warm-up
and a poly (0.9) decay. UNet has no auxiliary heads and trains with Adam on the same schedule.
Exports `parser.safetensors` (what `faceedit-train gan --parser` and the app load).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from faceedit.model.bisenet import BiSeNet
from faceedit.model.parsing import build_parser
from faceedit.weights import checkpoint
from trainer.config import ParserOptimConfig, TrainConfig
from trainer.stages.distributed import DistInfo, autocast, unwrap, wrap
from trainer.stages.loop import EndlessLoader, poly_lr, set_lr
from trainer.stages.nonfinite import NonFiniteGuard
from trainer.stages.run_log import colour_labels, colour_probabilities, grid, to_unit
from trainer.stages.speed import (
    adam,
    compile_module,
    images_to,
    to_memory_format,
    uses_channels_last,
)
from trainer.stages.steps import parser_step

if TYPE_CHECKING:
    from trainer.data import CelebAMaskHQ, ShardParsing

CHECKPOINT_NAME: Final[str] = "parser.safetensors"
NUM_PREVIEW: Final[int] = 4
ADAM_BETAS: Final[tuple[float, float]] = (0.9, 0.999)  # torch's default


def optimiser_kind(settings: ParserOptimConfig, parser_kind: str) -> str:
    """'auto' -> SGD for BiSeNet (the community recipe), Adam for the small UNet."""
    if settings.optimiser != "auto":
        return settings.optimiser
    return "sgd" if parser_kind == "bisenet" else "adam"


def make_parser_optimizer(
    parser: nn.Module, settings: ParserOptimConfig, kind: str
) -> torch.optim.Optimizer:
    """SGD with weight decay on conv/linear weights only (not on norms or biases), or Adam."""
    if kind == "adam":
        device = next(parser.parameters()).device
        return adam(parser.parameters(), settings.adam_lr, ADAM_BETAS, device)
    decay = [p for p in parser.parameters() if p.dim() > 1]
    no_decay = [p for p in parser.parameters() if p.dim() <= 1]
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings.lr,
        momentum=settings.momentum,
    )


def load_backbone(net: nn.Module, path: str) -> str:
    """Start BiSeNet's ResNet-18 backbone from torchvision's ImageNet file (the face-parsing
    reference recipe); returns the file's name for the checkpoint's metadata. The file is read
    by faceedit.weights.torch_files (weights only: no pickled code runs), every backbone
    tensor must fit, and its classifier (fc) is left out."""
    from faceedit.errors import ConfigError
    from faceedit.weights.torch_files import load_resnet18

    if not isinstance(net, BiSeNet):
        raise ConfigError(
            "--backbone-weights starts BiSeNet's ResNet-18 backbone; this parser is "
            f"{type(net).__name__} (set model.parser.kind=bisenet)"
        )
    file = Path(path).expanduser()
    load_resnet18(net.cp.resnet, file)
    return file.name


def parsing_train_set(config: TrainConfig) -> CelebAMaskHQ | ShardParsing | LabelledSubset:
    """The parsing training split (CelebAMask-HQ, or prepared facial_expressions: see
    DataConfig.parsing_source) at the parser's resolution, augmented per the config.

    Stage 1 trains the parser on it and the joint stage keeps supervising the parser with it,
    so both read it here: a jointly trained parser sees the data it was first trained on.
    """
    from trainer.data import AugmentConfig, open_parsing_dataset

    root = config.data.parsing_source
    assert root is not None, "the commands check that a parsing dataset is given"
    dataset = open_parsing_dataset(
        root,
        "train",
        size=config.model.parser.resolution,
        augment=AugmentConfig(scale=config.data.augment_scale) if config.data.augment else False,
        seed=config.seed,
    )
    fraction = config.data.parser_label_fraction
    return dataset if fraction >= 1.0 else LabelledSubset(dataset, fraction, config.seed)


class LabelledSubset(Dataset):
    """A seeded share of a parsing dataset: the images whose labels a low-label run may use.

    The same (fraction, seed) picks the same images in the parser and the joint stage; at
    least one image is kept. `set_epoch` reaches the dataset, so augmentations still vary.
    """

    def __init__(self, dataset: Any, fraction: float, seed: int) -> None:
        count = len(dataset)
        keep = max(1, round(count * fraction))
        generator = torch.Generator().manual_seed(seed * 7919 + 17)
        self.dataset = dataset
        self.indices = sorted(torch.randperm(count, generator=generator)[:keep].tolist())

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)


class ParserStage:
    """Stage 1's networks, data and iteration (see trainer.stages.loop.Stage)."""

    name = "parser"

    def __init__(
        self, config: TrainConfig, info: DistInfo, dataset: Any, backbone: str | None = None
    ) -> None:
        self.config = config
        self.info = info
        self.settings = config.parser_optim
        self.net = build_parser(config.model.parser)
        self.backbone = load_backbone(self.net, backbone) if backbone else ""
        self.channels_last = uses_channels_last(info)
        self.net = to_memory_format(self.net.to(info.device).train(), self.channels_last)
        self.parser = compile_module(wrap(self.net, info), info.compile)
        self.kind = optimiser_kind(self.settings, config.model.parser.kind)
        self.peak_lr = self.settings.adam_lr if self.kind == "adam" else self.settings.lr
        self.optimizer = make_parser_optimizer(self.net, self.settings, self.kind)
        self.guard = NonFiniteGuard(config.nonfinite_check, info)
        self.loaders = {
            "celebamask_hq": EndlessLoader(
                dataset,
                config.batch_size,
                seed=config.seed,
                info=info,
                num_workers=config.num_workers,
                name="CelebAMask-HQ",
            )
        }
        count = min(NUM_PREVIEW, len(dataset))
        samples = [dataset[i] for i in range(count)]
        self.preview = (
            torch.stack([s[0] for s in samples]).to(info.device),
            torch.stack([s[1] for s in samples]),
        )

    @classmethod
    def build(cls, config: TrainConfig, info: DistInfo, backbone: str | None = None) -> ParserStage:
        return cls(config, info, parsing_train_set(config), backbone)

    def lr_at(self, step: int) -> float:
        s = self.settings
        return poly_lr(
            step, self.config.steps, self.peak_lr, s.poly_power, s.warmup_steps, s.warmup_start_lr
        )

    # ---- one iteration

    def train_step(self, step: int) -> dict[str, Tensor]:
        set_lr(self.optimizer, self.lr_at(step))
        images, labels = next(self.loaders["celebamask_hq"])
        images = images_to(images.to(self.info.device, non_blocking=True), self.channels_last)
        labels = labels.to(self.info.device, non_blocking=True)
        with autocast(self.info):
            named = parser_step(self.parser, images, labels, self.settings)
        loss = self.guard.total(named, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return named

    # ---- bookkeeping

    def learning_rates(self) -> dict[str, float]:
        return {"parser": self.optimizer.param_groups[0]["lr"]}

    def images_per_step(self) -> int:
        return self.config.batch_size * self.info.world_size

    def networks(self) -> dict[str, nn.Module]:
        return {"parser": self.net}

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {"parser": self.net.state_dict()},
            "optimizers": {"parser": self.optimizer.state_dict()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["modules"]["parser"])
        self.optimizer.load_state_dict(state["optimizers"]["parser"])

    def export(self, folder: Path, step: int) -> Path:
        return checkpoint.save(
            folder / CHECKPOINT_NAME,
            self.config.model,
            parser=self.net,
            metadata={
                "stage": "parser",
                "step": step,
                "dataset": "CelebAMask-HQ",
                "backbone_weights": self.backbone,
            },
        )

    @torch.no_grad()
    def images(self) -> dict[str, Tensor]:
        """Input | predicted class probabilities | ground truth, one row per preview image."""
        net = unwrap(self.parser)
        was_training = net.training
        net.eval()
        try:
            logits = net(self.preview[0]).logits.float()
        finally:
            net.train(was_training)
        columns = [
            to_unit(self.preview[0]),
            colour_probabilities(logits.softmax(1)),
            colour_labels(self.preview[1]),
        ]
        return {"parser/input_prediction_truth": grid(columns)}
