"""Discriminators: a StarGAN PatchGAN on the whole crop and a lighter one on each region x * m_k
(on the whole crop, or with `local_windows` on a window around the region)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
from torch import Tensor, nn

from faceedit.model.config import ModelConfig
from faceedit.model.grouped import (
    LocalExecution,
    check_local_execution,
    grouped_layer,
    grouped_sequential,
)
from faceedit.model.windows import Window, region_windows, shape_groups, window_specs

LEAKY_SLOPE = 0.01  # StarGAN's


class PatchOutput(NamedTuple):
    """One discriminator's heads."""

    patch: Tensor  # (B, 1, h, w) real/fake score per patch (WGAN critic, unbounded)
    logits: Tensor  # (B, num_classes) expression logits
    valence_arousal: Tensor | None  # (B, 2) in [-1, 1], only when trained with them


class DiscriminatorOutput(NamedTuple):
    """The global critic's heads and each region critic's, keyed by region name.

    A NamedTuple with a dict field: DistributedDataParallel finds the tensors inside both.
    """

    global_: PatchOutput
    local: dict[str, PatchOutput]


class PatchDiscriminator(nn.Module):
    """StarGAN critic: 4x4 stride-2 convs with LeakyReLU and no normalisation (WGAN-GP needs
    per-sample gradients, which batch statistics would mix), channels doubling per layer.

    Heads: a 3x3 conv gives the real/fake patch map; a conv as large as the remaining map gives
    expression logits, and optionally a tanh-bounded (valence, arousal) pair.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int | tuple[int, int],
        base_channels: int,
        num_layers: int,
        num_classes: int,
        valence_arousal: bool,
    ) -> None:
        """image_size: the side of square inputs, or (height, width)."""
        super().__init__()
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        values = {
            "in_channels": in_channels,
            "height": height,
            "width": width,
            "base_channels": base_channels,
            "num_layers": num_layers,
            "num_classes": num_classes,
        }
        bad = {k: v for k, v in values.items() if v <= 0}
        if bad:
            raise ValueError(f"PatchDiscriminator needs positive sizes, got {bad}")
        if height % 2**num_layers or width % 2**num_layers:
            raise ValueError(
                f"PatchDiscriminator: {num_layers} stride-2 layers need an image size divisible "
                f"by {2**num_layers}, got {height} x {width}"
            )
        self.image_size = (height, width)
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(num_layers):
            out = base_channels * 2**i
            layers += [nn.Conv2d(channels, out, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE)]
            channels = out
        self.trunk = nn.Sequential(*layers)
        final_size = (height // 2**num_layers, width // 2**num_layers)
        self.patch_head = nn.Conv2d(channels, 1, 3, 1, 1, bias=False)
        self.class_head = nn.Conv2d(channels, num_classes, final_size, bias=False)
        self.va_head = nn.Conv2d(channels, 2, final_size) if valence_arousal else None

    def forward(self, x: Tensor) -> PatchOutput:
        """x (B, C, H, W) with (H, W) = image_size -> PatchOutput."""
        if x.dim() != 4 or x.shape[-2:] != self.image_size:
            raise ValueError(
                f"PatchDiscriminator expects (B, C, {self.image_size[0]}, {self.image_size[1]}) "
                f"input, got {tuple(x.shape)}"
            )
        features = self.trunk(x)
        logits = self.class_head(features).flatten(1)  # (B, num_classes)
        va = None if self.va_head is None else torch.tanh(self.va_head(features).flatten(1))
        return PatchOutput(self.patch_head(features), logits, va)


class HierarchicalDiscriminator(nn.Module):
    """The global critic on the full crop plus one lighter critic per region on x * m_k.

    Every critic has the expression head: with per-region conditions only a region's own critic
    can tell whether that region shows its target expression. The region critics run one after
    the other, or as one grouped network (`set_local_execution`), as the local editors do. With
    `config.local_windows` each region critic sees x * m_k in its region's window, placed as
    the generator places it (faceedit/model/windows.py).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.discriminator
        self.regions = config.regions
        self.global_discriminator = PatchDiscriminator(
            3,
            config.crop_size,
            d.base_channels,
            d.num_layers,
            config.num_expressions,
            config.valence_arousal,
        )
        # each region's window, or None: every region critic on the crop
        self.window_specs = window_specs(config) if config.local_windows else None
        sizes: list[int | tuple[int, int]] = [config.crop_size] * len(self.regions)
        if self.window_specs is not None:
            sizes = [(spec.height, spec.width) for spec in self.window_specs]
        self.local_discriminators = nn.ModuleDict(
            {
                name: PatchDiscriminator(
                    3,
                    size,
                    d.local_base_channels,
                    d.local_num_layers,
                    config.num_expressions,
                    config.valence_arousal,
                )
                for name, size in zip(self.regions, sizes, strict=True)
            }
        )
        self.local_execution: LocalExecution = "separate"

    def set_local_execution(self, mode: LocalExecution) -> HierarchicalDiscriminator:
        """Run the region critics one after the other ("separate") or as one grouped network
        ("grouped"); the weights, and so the state dict, stay as they are. Returns self."""
        self.local_execution = check_local_execution(mode)
        return self

    def forward(self, image: Tensor, region_masks: Tensor) -> DiscriminatorOutput:
        """image (B, 3, S, S) in [-1, 1], region_masks (B, K, S, S) in [0, 1]."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, S, S), got {tuple(image.shape)}")
        expected = (image.shape[0], len(self.regions), *image.shape[-2:])
        if region_masks.shape != expected:
            raise ValueError(
                f"region_masks must be (B, K, S, S) = {expected} for regions "
                f"{list(self.regions)}, got {tuple(region_masks.shape)}"
            )
        global_ = self.global_discriminator(image)  # first: it checks the image size
        windows = self.region_windows(region_masks)
        critics = cast(list[PatchDiscriminator], list(self.local_discriminators.values()))
        if self.local_execution == "separate" or not critics:
            views = self.region_inputs(image, region_masks, windows)
            local = {
                name: critic(view)
                for name, critic, view in zip(self.regions, critics, views, strict=True)
            }
            return DiscriminatorOutput(global_, local)
        outs: dict[int, PatchOutput] = {}
        for group, stacked in self._grouped_views(image, region_masks, windows):
            grouped = grouped_critics([critics[k] for k in group], stacked)
            outs.update(zip(group, grouped, strict=True))
        return DiscriminatorOutput(global_, {name: outs[k] for k, name in enumerate(self.regions)})

    def region_windows(self, region_masks: Tensor) -> list[Window] | None:
        """Where each region critic looks, from region_masks (B, K, S, S): its window around
        the region, or None without windows (the whole crop)."""
        if self.window_specs is None:
            return None
        return region_windows(region_masks, self.window_specs)

    def region_inputs(
        self, image: Tensor, region_masks: Tensor, windows: list[Window] | None
    ) -> list[Tensor]:
        """Each region critic's input: image * m_k (B, 3, S, S), cut to window k if given.

        The gradient penalty takes the windows of the real images for the fakes too, so that
        it mixes the same pixels of both.
        """
        masked = [image * region_masks[:, k : k + 1] for k in range(len(self.regions))]
        if windows is None:
            return masked
        return [window.crop(view) for window, view in zip(windows, masked, strict=True)]

    def _grouped_views(
        self, image: Tensor, region_masks: Tensor, windows: list[Window] | None
    ) -> list[tuple[list[int], Tensor]]:
        """The region critics' inputs for grouped execution: per window shape, the regions
        that have it and their inputs side by side (B, G, 3, h, w); without windows, all K
        regions on the whole crop."""
        if windows is None:
            return [
                (list(range(len(self.regions))), image.unsqueeze(1) * region_masks.unsqueeze(2))
            ]
        views = self.region_inputs(image, region_masks, windows)
        return [
            (group, torch.stack([views[k] for k in group], 1)) for group in shape_groups(windows)
        ]


def grouped_critics(critics: Sequence[PatchDiscriminator], views: Tensor) -> list[PatchOutput]:
    """The K critics run as one grouped network (faceedit/model/grouped.py), critic k on
    views[:, k] (B, 3, H, W): what each critic's forward gives, in order."""
    k = len(critics)
    features = grouped_sequential([critic.trunk for critic in critics], views.flatten(1, 2))
    patch = grouped_layer([critic.patch_head for critic in critics], features)  # (B, K, h, w)
    logits = grouped_layer([critic.class_head for critic in critics], features)
    logits = torch.unflatten(logits.flatten(1), 1, (k, -1))  # (B, K, num_classes)
    va = None
    if critics[0].va_head is not None:
        va_heads = [cast(nn.Conv2d, critic.va_head) for critic in critics]
        va = torch.unflatten(torch.tanh(grouped_layer(va_heads, features).flatten(1)), 1, (k, -1))
    return [
        PatchOutput(patch[:, i : i + 1], logits[:, i], None if va is None else va[:, i])
        for i in range(k)
    ]
