"""The hierarchical generator: a global editor, one light editor per region, and a seam fuser.

Every editor is GANimation-style: it predicts a colour image C and an attention map A and returns
A * input + (1 - A) * C, so pixels it attends to stay untouched. The condition enters as constant
channels concatenated to the input, as in StarGAN, and with `conditioning: film` also as a scale
and shift of every instance norm's output (GeneratorConfig.conditioning says why).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceedit.model.config import GeneratorConfig, ModelConfig
from faceedit.model.grouped import LocalExecution, check_local_execution, grouped_layer
from faceedit.model.windows import region_windows, shape_groups, window_specs

IMAGE_CHANNELS: Final[int] = 3
# Output channel of an editor's `heads` conv that holds the attention logit (0..2: colour).
ATTENTION_CHANNEL: Final[int] = IMAGE_CHANNELS


class EditOutput(NamedTuple):
    """One editor's result: the composed image and the two maps it was composed from."""

    image: Tensor  # (B, 3, H, W) = attention * input + (1 - attention) * colour
    attention: Tensor  # (B, 1, H, W) in [0, 1]; 1 keeps the input pixel
    colour: Tensor  # (B, 3, H, W) in [-1, 1]


class GeneratorOutput(NamedTuple):
    """The hierarchical generator's result, with its parts for losses and inspection."""

    image: Tensor  # (B, 3, S, S) the edited image, region-locked when `editable` was given
    attention: Tensor  # (B, 1 + K, 1, S, S): global first, then the regions in config order
    global_image: Tensor  # (B, 3, S, S) the global editor's output alone
    # (B, K, 3, S, S) each region editor's output (with local windows: x outside its window)
    local_images: Tensor


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm (per-image, per-channel statistics, affine) computed by the group-norm
    kernel with one group per channel: the same maths and parameters as nn.InstanceNorm2d,
    whose eager form repeats its weights into a (1, B*C, H, W) batch norm and copies: a quarter
    of the kernel-launching operators of a world-64 generator training step (2,916 -> 2,174).
    On a GPU training is bound by the host's cost per operator (docs/training.md)."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


def _conv_block(
    in_channels: int, out_channels: int, kernel: int, stride: int, padding: int
) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False),
        InstanceNorm(out_channels),
        nn.ReLU(inplace=True),
    ]


def _up_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    # 4x4 stride-2 transposed convolutions (StarGAN): measured on a 2-core CPU at 128 px they
    # are as fast as nearest upsampling + 3x3 conv, with less than half its FLOPs; the
    # alternative did not help on the world (docs/notes/retired-options.md).
    return [
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
        InstanceNorm(out_channels),
        nn.ReLU(inplace=True),
    ]


class ResidualBlock(nn.Module):
    """Two 3x3 conv + instance-norm layers added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_block(channels, channels, 3, 1, 1),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            InstanceNorm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = x + self.body(x)
        return out


def _modulated(layers: nn.Sequential, x: Tensor, film: Iterator[tuple[Tensor, Tensor]]) -> Tensor:
    """Run `layers` (a trunk, or a residual block's body) with each instance norm's output
    scaled by 1 + scale and shifted, taking (scale, shift) from `film` in order."""
    for layer in layers:
        if isinstance(layer, ResidualBlock):
            x = x + _modulated(layer.body, x, film)
            continue
        x = layer(x)
        if isinstance(layer, nn.InstanceNorm2d):  # also torch's own, as the bench swaps in
            scale, shift = next(film)
            x = torch.addcmul(shift, x, 1 + scale)
    return x


def expand_condition(condition: Tensor, height: int, width: int) -> Tensor:
    """(B, C) -> (B, C, H, W) constant maps, the StarGAN way of conditioning a conv net."""
    return condition[:, :, None, None].expand(-1, -1, height, width)


class _AttentionEditor(nn.Module):
    """Encoder (7x7 conv, two stride-2 downsamplings), residual blocks, decoder, two heads."""

    def __init__(self, in_channels: int, condition_dim: int, config: GeneratorConfig) -> None:
        super().__init__()
        if in_channels <= 0 or condition_dim < 0:
            raise ValueError(
                f"in_channels must be > 0 and condition_dim >= 0, got {in_channels}, {condition_dim}"
            )
        self.in_channels = in_channels
        self.condition_dim = condition_dim
        ch = config.base_channels
        self.trunk = nn.Sequential(
            *_conv_block(in_channels + condition_dim, ch, 7, 1, 3),
            *_conv_block(ch, 2 * ch, 4, 2, 1),
            *_conv_block(2 * ch, 4 * ch, 4, 2, 1),
            *(ResidualBlock(4 * ch) for _ in range(config.num_res_blocks)),
            *_up_block(4 * ch, 2 * ch),
            *_up_block(2 * ch, ch),
        )
        # Both heads in one conv: output channels 0..2 are the colour head, channel 3 the
        # attention head. On CPU a 7x7 conv costs the same for 1, 3 or 4 output channels, so two
        # separate convs would pay for the most expensive layer twice.
        self.heads = nn.Conv2d(ch, IMAGE_CHANNELS + 1, 7, 1, 3)
        # FiLM: one linear map gives every norm's scale and shift (one matmul, not one per norm).
        self.norm_channels = tuple(
            m.num_features for m in self.trunk.modules() if isinstance(m, nn.InstanceNorm2d)
        )
        self.condition_film: nn.Linear | None = None
        if config.conditioning == "film":
            # Built on the meta device (no random draws, so a seed builds the same other weights),
            # then given zero parameters directly: Module.to_empty would import sympy, which the
            # app's load path must not pull in (tests/weights/test_load_imports.py).
            width = 2 * sum(self.norm_channels)
            film = nn.Linear(condition_dim, width, device="meta")
            film.weight = nn.Parameter(torch.zeros(width, condition_dim))
            film.bias = nn.Parameter(torch.zeros(width))
            self.condition_film = film

    def _film(self, condition: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        """Per instance norm in trunk order: (scale, shift), each (B, C, 1, 1)."""
        assert self.condition_film is not None
        chunks = self.condition_film(condition).split([2 * c for c in self.norm_channels], 1)
        for chunk in chunks:
            scale, shift = chunk[:, :, None, None].chunk(2, 1)
            yield scale, shift

    def _edit(self, inputs: Tensor, condition: Tensor, base: Tensor) -> EditOutput:
        if inputs.dim() != 4 or inputs.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.in_channels}, H, W) input, "
                f"got {tuple(inputs.shape)}"
            )
        if inputs.shape[-1] % 4 or inputs.shape[-2] % 4:
            raise ValueError(f"image sides must be multiples of 4, got {tuple(inputs.shape[-2:])}")
        if condition.shape != (inputs.shape[0], self.condition_dim):
            raise ValueError(
                f"{type(self).__name__} expects a ({inputs.shape[0]}, {self.condition_dim}) "
                f"condition, got {tuple(condition.shape)}"
            )
        height, width = inputs.shape[-2:]
        condition = condition.to(inputs.dtype)
        stacked = torch.cat([inputs, expand_condition(condition, height, width)], 1)
        if self.condition_film is None:
            features = self.trunk(stacked)
        else:
            features = _modulated(self.trunk, stacked, self._film(condition))
        heads = self.heads(features)
        colour = torch.tanh(heads[:, :IMAGE_CHANNELS])  # (B, 3, H, W) in [-1, 1]
        attention = torch.sigmoid(heads[:, ATTENTION_CHANNEL:])  # (B, 1, H, W) in [0, 1]
        image = attention * base + (1 - attention) * colour
        return EditOutput(image, attention, colour)


class GlobalGenerator(_AttentionEditor):
    """Edits the whole crop towards a condition (StarGAN trunk with GANimation heads)."""

    def __init__(self, in_channels: int, condition_dim: int, config: GeneratorConfig) -> None:
        if in_channels != IMAGE_CHANNELS:
            raise ValueError(
                f"GlobalGenerator composes with its input image, which needs {IMAGE_CHANNELS} "
                f"channels, got in_channels={in_channels}"
            )
        super().__init__(in_channels, condition_dim, config)

    def forward(self, x: Tensor, condition: Tensor) -> EditOutput:
        """x (B, 3, H, W) in [-1, 1], condition (B, C) -> EditOutput."""
        return self._edit(x, condition, base=x)


class LocalGenerator(_AttentionEditor):
    """Edits one region: sees the masked crop x * m and the mask m, composes with the full crop.

    Composing with x (not x * m) makes a fully attending editor the identity even where the
    mask is soft, so the hierarchy returns the input exactly when every attention map is 1.
    """

    def __init__(self, condition_dim: int, config: GeneratorConfig) -> None:
        super().__init__(IMAGE_CHANNELS + 1, condition_dim, config)

    def forward(self, x: Tensor, mask: Tensor, condition: Tensor) -> EditOutput:
        """x (B, 3, H, W) in [-1, 1], mask (B, 1, H, W) in [0, 1], condition (B, C)."""
        return self._edit(torch.cat([x * mask, mask], 1), condition, base=x)


def grouped_local_edits(
    editors: Sequence[LocalGenerator], x: Tensor, region_masks: Tensor, conditions: Tensor
) -> tuple[Tensor, Tensor]:
    """The K local editors run as one grouped network (faceedit/model/grouped.py), computing
    what each editor's forward does on its own region.

    x (B, 3, H, W), the crop every editor sees, or (B, K, 3, H, W), one window each;
    region_masks (B, K, H, W), conditions (B, K, C) -> images (B, K, 3, H, W) and attention
    (B, K, 1, H, W).
    """
    k, (height, width) = len(editors), x.shape[-2:]
    masks = region_masks.unsqueeze(2)  # (B, K, 1, H, W)
    conditions = conditions.to(x.dtype)
    planes = conditions[..., None, None].expand(-1, -1, -1, height, width)  # (B, K, C, H, W)
    # Editor k's input, [x * m_k, m_k, condition planes], on its own block of channels.
    stacked = torch.cat([_per_editor(x) * masks, masks, planes], 2).flatten(1, 2)
    film = None if editors[0].condition_film is None else _grouped_film(editors, conditions)
    features = _grouped_trunk([editor.trunk for editor in editors], stacked, film)
    heads = grouped_layer([editor.heads for editor in editors], features)
    heads = torch.unflatten(heads, 1, (k, -1))  # (B, K, 4, H, W)
    colour = torch.tanh(heads[:, :, :IMAGE_CHANNELS])  # (B, K, 3, H, W) in [-1, 1]
    attention = torch.sigmoid(heads[:, :, ATTENTION_CHANNEL:])  # (B, K, 1, H, W) in [0, 1]
    return attention * _per_editor(x) + (1 - attention) * colour, attention


def _per_editor(x: Tensor) -> Tensor:
    """x as (B, K or 1, 3, H, W), an image per editor or one that every editor shares."""
    return x if x.dim() == 5 else x.unsqueeze(1)


def _grouped_film(
    editors: Sequence[LocalGenerator], conditions: Tensor
) -> Iterator[tuple[Tensor, Tensor]]:
    """Per instance norm in trunk order: (scale, shift) of all K editors, each (B, K * C, 1, 1),
    from conditions (B, K, C_in) (as `_AttentionEditor._film` gives one editor's)."""
    films = [cast(nn.Linear, editor.condition_film) for editor in editors]
    weight = torch.stack([film.weight for film in films])  # (K, W, C_in)
    bias = torch.stack([film.bias for film in films])  # (K, W)
    out = torch.einsum("bkc,kwc->bkw", conditions, weight) + bias  # (B, K, W)
    for chunk in torch.split(out, [2 * c for c in editors[0].norm_channels], 2):
        scale, shift = chunk.chunk(2, 2)  # (B, K, C) each
        yield scale.flatten(1)[:, :, None, None], shift.flatten(1)[:, :, None, None]


def _grouped_trunk(
    trunks: Sequence[nn.Sequential], x: Tensor, film: Iterator[tuple[Tensor, Tensor]] | None
) -> Tensor:
    """K trunks as one grouped network on x (B, K * C, H, W), each instance norm's output
    modulated by `film` when given (as `_modulated` runs one trunk)."""
    for layers in zip(*trunks, strict=True):
        if isinstance(layers[0], ResidualBlock):
            bodies = [cast(ResidualBlock, block).body for block in layers]
            x = x + _grouped_trunk(bodies, x, film)
            continue
        x = grouped_layer(layers, x)
        if film is not None and isinstance(layers[0], nn.InstanceNorm2d):
            scale, shift = next(film)
            x = torch.addcmul(shift, x, 1 + scale)
    return x


class FusionNetwork(nn.Module):
    """Removes seams where region edits meet: y + f(y, union of the region masks).

    f is three 3x3 convs whose last one starts at zero, so a fresh fuser is the identity and
    training only adds what the seams need. The mask union tells it where seams can be. The
    output is clamped to [-1, 1] in eval mode only: in training a clamp would zero the gradient
    of every pixel that overshoots, while the losses on the image pull it back into range anyway.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"FusionNetwork needs channels > 0, got {channels}")
        self.body = nn.Sequential(
            nn.Conv2d(IMAGE_CHANNELS + 1, channels, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, IMAGE_CHANNELS, 3, 1, 1),
        )
        nn.init.zeros_(self.last.weight)
        assert self.last.bias is not None
        nn.init.zeros_(self.last.bias)

    @property
    def last(self) -> nn.Conv2d:
        """The residual's last conv (zero at initialisation)."""
        layer = self.body[-1]
        assert isinstance(layer, nn.Conv2d)
        return layer

    def forward(self, y: Tensor, union: Tensor) -> Tensor:
        """y (B, 3, H, W), union (B, 1, H, W) in [0, 1] -> (B, 3, H, W)."""
        out: Tensor = y + self.body(torch.cat([y, union], 1))
        return out if self.training else out.clamp(-1.0, 1.0)


class HierarchicalGenerator(nn.Module):
    """Global editor + one local editor per region + fusion, with an optional region lock.

    With no regions (config.regions empty) it is the global-only baseline (StarGAN/GANimation
    style): no local editors and no fuser, since there are no seams to remove.

    Local editors are separate modules (a ModuleDict keyed by region name), so each region's
    weights keep their own name, and by default they run one after the other: running them as
    one grouped-conv network (groups=K) was measured slower on CPU (about 47 ms against 42 ms
    for four 16-channel editors at 128 px, 2 threads). On a GPU, where four editors are four
    times the kernel launches, `set_local_execution("grouped")` runs them as one network from
    the same weights (faceedit/model/grouped.py). With `config.local_windows` each local editor
    edits a fixed-size window around its region (faceedit/model/windows.py).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.regions = config.regions
        self.condition_dim = config.condition_dim
        self.global_generator = GlobalGenerator(
            IMAGE_CHANNELS, config.condition_dim, config.global_generator
        )
        self.local_generators = nn.ModuleDict(
            {
                name: LocalGenerator(config.condition_dim, config.local_generator)
                for name in self.regions
            }
        )
        # No regions, no seams: a fuser would only add an unconstrained residual to the edit.
        self.fusion = FusionNetwork(config.fusion_channels) if self.regions else None
        self.local_execution: LocalExecution = "separate"
        # each region's window, or None: every local editor on the whole crop
        self.window_specs = window_specs(config) if config.local_windows else None

    @property
    def num_regions(self) -> int:
        return len(self.regions)

    def set_local_execution(self, mode: LocalExecution) -> HierarchicalGenerator:
        """Run the local editors one after the other ("separate") or as one grouped network
        ("grouped"); the weights, and so the state dict, stay as they are. Returns self."""
        self.local_execution = check_local_execution(mode)
        return self

    def forward(
        self,
        x: Tensor,
        region_masks: Tensor,
        condition: Tensor,
        editable: Tensor | None = None,
    ) -> GeneratorOutput:
        """Edit x towards condition; with `editable`, only the editable regions may change.

        x (B, 3, S, S) in [-1, 1]; region_masks (B, K, S, S) in [0, 1]; condition (B, C) for
        every editor, or (B, 1 + K, C): row 0 for the global editor, then one per region in
        config order; editable (B, K) or (K,) weights in [0, 1] (or bools), or None for no lock.
        """
        conditions = self._check_inputs(x, region_masks, condition)
        # 1. Global edit of the whole crop.
        global_out = self.global_generator(x, conditions[:, 0])
        # 2. Each local editor edits the whole crop (or its window), seeing only its region.
        local_images, local_attention, inside = self._local_edits(
            x, region_masks, conditions[:, 1:]
        )
        if self.regions:
            # 3. Blend: y = (1 - sum_k w_k) y0 + sum_k w_k y_k; a region's mask outside its
            #    window (inside = 0 there) is left to the global editor.
            blend_masks = region_masks if inside is None else region_masks * inside
            weights, union = _blend_weights(blend_masks)
            y = (1 - union) * global_out.image + (weights.unsqueeze(2) * local_images).sum(1)
            # 4. Remove seams.
            assert self.fusion is not None
            y = self.fusion(y, union)
        else:  # global-only: the global edit is the output
            y = global_out.image if self.training else global_out.image.clamp(-1.0, 1.0)
        # 5. Region lock: out = x + U * (y - x), so where U = 0 the input passes through exactly,
        #    and in eval mode (y clamped to [-1, 1]) |out - x| <= 2 U everywhere.
        if editable is not None:
            lock = self._editable_union(region_masks, editable)  # (B, 1, S, S) in [0, 1]
            y = x + lock * (y - x)
        attention = torch.cat([global_out.attention.unsqueeze(1), local_attention], 1)
        return GeneratorOutput(y, attention, global_out.image, local_images)

    def _local_edits(
        self, x: Tensor, region_masks: Tensor, conditions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Every local editor's image (B, K, 3, S, S) and attention (B, K, 1, S, S), from
        conditions (B, K, C), run as `local_execution` says; with windows also where each
        window lies (B, K, S, S), 1 inside, else None."""
        editors = cast(list[LocalGenerator], list(self.local_generators.values()))
        batch, _, height, width = x.shape
        if not editors:  # global-only
            empty = x.new_zeros(batch, 0, 1, height, width)
            return x.new_zeros(batch, 0, 3, height, width), empty, None
        if self.window_specs is not None:
            return self._windowed_local_edits(editors, x, region_masks, conditions)
        if self.local_execution == "grouped":
            return (*grouped_local_edits(editors, x, region_masks, conditions), None)
        outs = [
            editor(x, region_masks[:, k : k + 1], conditions[:, k])
            for k, editor in enumerate(editors)
        ]
        images = torch.stack([out.image for out in outs], 1)
        attention = torch.stack([out.attention for out in outs], 1)
        return images, attention, None

    def _windowed_local_edits(
        self, editors: list[LocalGenerator], x: Tensor, region_masks: Tensor, conditions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`_local_edits` with each editor on its region's window: outside it, its image is x
        and its attention 1, the identity, which the blend does not use (its weight is 0)."""
        assert self.window_specs is not None
        windows = region_windows(region_masks, self.window_specs)
        masks = [window.crop(region_masks[:, k : k + 1]) for k, window in enumerate(windows)]
        edits: dict[int, tuple[Tensor, Tensor]] = {}  # region -> image, attention in its window
        if self.local_execution == "grouped":  # one grouped network per window shape
            for group in shape_groups(windows):
                images, attention = grouped_local_edits(
                    [editors[k] for k in group],
                    torch.stack([windows[k].crop(x) for k in group], 1),
                    torch.cat([masks[k] for k in group], 1),
                    conditions[:, group],
                )
                edits.update((k, (images[:, i], attention[:, i])) for i, k in enumerate(group))
        else:
            for k, (editor, window) in enumerate(zip(editors, windows, strict=True)):
                out = editor(window.crop(x), masks[k], conditions[:, k])
                edits[k] = out.image, out.attention
        keep = x.new_ones(x.shape[0], 1, *x.shape[-2:])
        pasted = [
            (window.paste(x, edits[k][0]), window.paste(keep, edits[k][1]), window.inside(x))
            for k, window in enumerate(windows)
        ]
        images, attention, inside = (torch.stack(parts, 1) for parts in zip(*pasted, strict=True))
        return images, attention, inside[:, :, 0]

    def _check_inputs(self, x: Tensor, region_masks: Tensor, condition: Tensor) -> Tensor:
        """Validate shapes; return the conditions as (B, 1 + K, C)."""
        if x.dim() != 4 or x.shape[1] != IMAGE_CHANNELS:
            raise ValueError(f"x must be (B, 3, S, S) in [-1, 1], got {tuple(x.shape)}")
        batch, _, height, width = x.shape
        k = self.num_regions
        if region_masks.shape != (batch, k, height, width):
            raise ValueError(
                f"region_masks must be (B, K, S, S) = ({batch}, {k}, {height}, {width}) for "
                f"regions {list(self.regions)}, got {tuple(region_masks.shape)}"
            )
        c = self.condition_dim
        if condition.shape == (batch, c):
            return condition.unsqueeze(1).expand(-1, 1 + k, -1)
        if condition.shape == (batch, 1 + k, c):
            return condition
        raise ValueError(
            f"condition must be (B, C) = ({batch}, {c}) for every editor or (B, 1 + K, C) = "
            f"({batch}, {1 + k}, {c}) with one row per editor (global first), "
            f"got {tuple(condition.shape)}"
        )

    def _editable_union(self, region_masks: Tensor, editable: Tensor) -> Tensor:
        batch, k = region_masks.shape[:2]
        editable = editable.to(device=region_masks.device, dtype=region_masks.dtype)
        if editable.shape == (k,):
            editable = editable.unsqueeze(0).expand(batch, -1)
        if editable.shape != (batch, k):
            raise ValueError(
                f"editable must be (K,) = ({k},) or (B, K) = ({batch}, {k}) weights for regions "
                f"{list(self.regions)}, got {tuple(editable.shape)}"
            )
        union = (editable[:, :, None, None] * region_masks).sum(1, keepdim=True)
        return union.clamp(0.0, 1.0)


def _blend_weights(region_masks: Tensor) -> tuple[Tensor, Tensor]:
    """Per-region blend weights whose sum (returned as the union, (B, 1, S, S)) is at most 1.

    Softmax-grouped parser masks are disjoint and already sum to at most 1 (bilinear resizing
    keeps that, being a convex combination), but keypoint boxes overlap (a brow box and an eye
    box), and masks resized with an overshooting kernel or given by a caller may too. Where the
    sum exceeds 1 the weights are divided by it, which is the clamp of the sum to 1 done so the
    blend stays a convex combination: a pixel is never counted more than once.
    """
    total = region_masks.sum(1, keepdim=True)  # (B, 1, S, S)
    scale = 1.0 / total.clamp_min(1.0)
    weights = region_masks * scale  # (B, K, S, S)
    return weights, total * scale
