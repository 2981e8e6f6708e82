"""Parser + hierarchical generator as one differentiable model (docs/architecture.md §1).

The parser's softmax gates the local editors, so in joint mode every loss on the edited image
reaches the parser's weights; frozen mode and keypoint boxes are the paper's two ablations.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceedit.model.config import ModelConfig
from faceedit.model.generator import GeneratorOutput, HierarchicalGenerator
from faceedit.model.parsing import build_parser
from faceedit.model.regions import box_region_masks, soft_region_masks


class UnifiedOutput(NamedTuple):
    """The edited crop plus everything the losses and the app need from the same pass."""

    image: Tensor  # (B, 3, S, S) the edited crop
    region_masks: Tensor  # (B, K, S, S) in [0, 1], regions in config order
    parser_logits: Tensor  # (B, 19, S, S)
    parser_aux: tuple[Tensor, ...]  # the parser's auxiliary logits at its own resolution, or ()
    attention: Tensor  # (B, 1 + K, 1, S, S): global editor first, then the regions


class RegionMasks(NamedTuple):
    """What `UnifiedModel.region_masks` returns; unpacks as (masks, logits, aux)."""

    masks: Tensor  # (B, K, S, S) in [0, 1]
    logits: Tensor  # (B, 19, S, S)
    aux: tuple[Tensor, ...]


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize to size x size without antialiasing: cheap, and differentiable."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=False
    )


class UnifiedModel(nn.Module):
    """The parser and the hierarchical generator in one module.

    Parts not given are built fresh from `config`. With `config.freeze_parser` the parser's
    parameters get requires_grad False, it runs under no_grad and stays in eval mode (its
    BatchNorm statistics do not drift); otherwise requires_grad is switched on for all of them,
    so joint training reaches every parser tensor even when the parser came from a frozen stage.
    """

    def __init__(
        self,
        config: ModelConfig,
        parser: nn.Module | None = None,
        generator: HierarchicalGenerator | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.parser = parser if parser is not None else build_parser(config.parser)
        self.generator = generator if generator is not None else HierarchicalGenerator(config)
        if self.generator.regions != config.regions:
            raise ValueError(
                f"the generator edits regions {list(self.generator.regions)} but the config names "
                f"{list(config.regions)}; build both from the same ModelConfig"
            )
        self.parser.requires_grad_(not config.freeze_parser)
        if config.freeze_parser:
            self.parser.eval()

    def train(self, mode: bool = True) -> UnifiedModel:
        super().train(mode)
        if self.config.freeze_parser:
            self.parser.eval()
        return self

    def forward(
        self,
        x: Tensor,
        condition: Tensor,
        editable: Tensor | None = None,
        landmarks: Tensor | None = None,
    ) -> UnifiedOutput:
        """Parse x, then edit it towards condition.

        x (B, 3, S, S) in [-1, 1]; condition (B, C) or (B, 1 + K, C); editable (B, K) or (K,)
        region weights for the region lock, or None; landmarks (B, 5, 2) in crop pixels, needed
        only when config.region_source is "boxes".
        """
        masks, logits, aux = self.region_masks(x, landmarks)
        out = self.generate(x, masks, condition, editable)
        return UnifiedOutput(out.image, masks, logits, aux, out.attention)

    def region_masks(self, x: Tensor, landmarks: Tensor | None = None) -> RegionMasks:
        """Run the parser once: region masks (B, K, S, S), logits (B, 19, S, S), aux logits.

        The engine caches this per frame, so slider changes only re-run `generate`.
        """
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"x must be a (B, 3, S, S) batch in [-1, 1], got {tuple(x.shape)}")
        boxes = self.config.region_source == "boxes" and bool(self.config.regions)
        if boxes and landmarks is None:
            raise ValueError(
                "this model takes its regions from keypoint boxes (region_source='boxes'): "
                "pass landmarks, (B, 5, 2) pixel coordinates in the crop"
            )
        size = x.shape[-1]
        # 1. Parse at the parser's working resolution and bring the logits back to the crop's.
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_parser):
            parsed = self.parser(resize(x, self.config.parser.resolution))
            logits = resize(parsed.logits, size)  # (B, 19, S, S)
        # 2. Regions: the parser's soft masks, or hard boxes for the keypoint ablation.
        if boxes:
            assert landmarks is not None
            masks = box_region_masks(landmarks, size, self.config.regions).to(x.dtype)
        else:
            masks = soft_region_masks(logits, self.config.regions)
        return RegionMasks(masks, logits, tuple(parsed.aux))

    def generate(
        self,
        x: Tensor,
        region_masks: Tensor,
        condition: Tensor,
        editable: Tensor | None = None,
    ) -> GeneratorOutput:
        """Run only the generators on cached masks (see HierarchicalGenerator.forward)."""
        out: GeneratorOutput = self.generator(x, region_masks, condition, editable)
        return out
