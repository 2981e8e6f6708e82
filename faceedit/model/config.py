"""Frozen, validated configs for every network, with presets and a JSON round trip.

A checkpoint stores `ModelConfig.to_dict()`; `ModelConfig.from_dict` rebuilds it exactly, so
inference rebuilds networks from the stored config alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

from faceedit.configs import build
from faceedit.errors import ConfigError
from faceedit.vocab.expressions import NUM_EXPRESSIONS
from faceedit.vocab.labels import NUM_CLASSES, REGION_GROUPS

ParserKind = Literal["bisenet", "unet"]
RegionSource = Literal["masks", "boxes"]
EditArea = Literal["crop", "face"]

IMAGENET_MEAN: Final[tuple[float, float, float]] = (0.485, 0.456, 0.406)
IMAGENET_STD: Final[tuple[float, float, float]] = (0.229, 0.224, 0.225)
# [-1, 1] inputs mapped to themselves: x01 = (x + 1) / 2, then (x01 - 0.5) / 0.5 = x.
IDENTITY_MEAN: Final[tuple[float, float, float]] = (0.5, 0.5, 0.5)
IDENTITY_STD: Final[tuple[float, float, float]] = (0.5, 0.5, 0.5)


# Upper bounds of what a config may ask for (docs/architecture.md §7): far above every preset,
# far below what would exhaust a machine. A checkpoint's config is untrusted input; without
# bounds a valid file could ask for a 65536-channel generator and hundreds of GB.
MAX_CROP_SIZE: Final[int] = 1024
MAX_PARSER_RESOLUTION: Final[int] = 2048
MAX_CHANNELS: Final[int] = 1024
MAX_RES_BLOCKS: Final[int] = 64
MAX_UNET_DEPTH: Final[int] = 8
MAX_DISCRIMINATOR_LAYERS: Final[int] = 10
MAX_EXPRESSIONS: Final[int] = 64


def _fail(owner: str, message: str) -> None:
    raise ConfigError(f"{owner}: {message}")


def _check_positive(owner: str, **values: int) -> None:
    bad = {k: v for k, v in values.items() if not isinstance(v, int) or v <= 0}
    if bad:
        _fail(owner, f"must be positive integers: {bad}")


def _check_at_most(owner: str, limit: int, **values: int) -> None:
    big = {k: v for k, v in values.items() if isinstance(v, int) and v > limit}
    if big:
        _fail(owner, f"must be at most {limit}: {big} (far beyond any model faceedit trains)")


@dataclass(frozen=True)
class ParserConfig:
    """A face parser: architecture, classes, input normalisation and working resolution.

    The parser normalises [-1, 1] input itself with `mean`/`std` (defined on [0, 1] images);
    `resolution` is the size the engine resizes crops to before parsing.
    """

    kind: ParserKind = "bisenet"  # the architecture: BiSeNet (the paper's) or a plain UNet
    num_classes: int = NUM_CLASSES  # CelebAMask-HQ's 19 classes (the region groups need them)
    resolution: int = 512  # crops are resized to this before parsing
    # The input normalisation's per-channel mean and std, defined on [0, 1] images (ImageNet's
    # for BiSeNet's backbone; (0.5, 0.5, 0.5) leaves the [-1, 1] input as it is).
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD  # see mean
    unet_depth: int = 4  # UNet only: max-pool levels (the resolution: a multiple of `2**depth`)
    unet_base_width: int = 32  # UNet only: channels at full resolution, doubled per level

    def __post_init__(self) -> None:
        if self.kind not in ("bisenet", "unet"):
            _fail("ParserConfig.kind", f"{self.kind!r} is not one of 'bisenet', 'unet'")
        _check_positive(
            "ParserConfig",
            num_classes=self.num_classes,
            resolution=self.resolution,
            unet_depth=self.unet_depth,
            unet_base_width=self.unet_base_width,
        )
        _check_at_most("ParserConfig", MAX_PARSER_RESOLUTION, resolution=self.resolution)
        _check_at_most("ParserConfig", MAX_CHANNELS, unet_base_width=self.unet_base_width)
        _check_at_most("ParserConfig", MAX_UNET_DEPTH, unet_depth=self.unet_depth)
        if (
            len(self.mean) != 3
            or len(self.std) != 3
            or not all(math.isfinite(v) for v in (*self.mean, *self.std))
            or min(self.std) <= 0
        ):
            _fail(
                "ParserConfig",
                f"mean and std need 3 finite values, std > 0: {self.mean}, {self.std}",
            )
        divisor = 32 if self.kind == "bisenet" else 2**self.unet_depth
        if self.resolution % divisor:
            _fail("ParserConfig.resolution", f"{self.resolution} is not a multiple of {divisor}")


CONDITIONING_MODES: Final[tuple[str, ...]] = ("input", "film")


@dataclass(frozen=True)
class GeneratorConfig:
    """One GANimation-style generator: conv 7x7, 2 downsamplings, residual blocks, 2 upsamplings."""

    base_channels: int = 64  # width of the first convolution (x2, x4 after the downsamplings)
    num_res_blocks: int = 6  # residual blocks at the lowest resolution
    # "input": the condition enters only as constant channels beside the image (StarGAN, the
    # paper). Instance norm then subtracts each channel's mean over the image, which removes a
    # constant channel's contribution everywhere but near the zero-padded border, so the
    # target reaches the middle of the face only through that border (docs/learning.md).
    # "film": every instance norm's output is also scaled and shifted by a linear map of the
    # condition (FiLM), which starts at zero, so a fresh editor computes what "input" does.
    conditioning: str = "input"
    # Retired: `upsample: resize` (nearest upsampling and a 3x3 convolution instead of the
    # transposed convolutions); old checkpoints store "transposed" (docs/notes/retired-options.md).
    RETIRED: ClassVar[Mapping[str, Any]] = {"upsample": "transposed"}

    def __post_init__(self) -> None:
        if self.conditioning not in CONDITIONING_MODES:
            _fail(
                "GeneratorConfig.conditioning",
                f"must be one of {list(CONDITIONING_MODES)}, got {self.conditioning!r}",
            )
        _check_positive("GeneratorConfig", base_channels=self.base_channels)
        _check_at_most("GeneratorConfig", MAX_CHANNELS // 4, base_channels=self.base_channels)
        if not isinstance(self.num_res_blocks, int) or self.num_res_blocks < 0:
            _fail("GeneratorConfig.num_res_blocks", f"must be >= 0, got {self.num_res_blocks}")
        _check_at_most("GeneratorConfig", MAX_RES_BLOCKS, num_res_blocks=self.num_res_blocks)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Global StarGAN PatchGAN plus lighter local PatchGANs on each region."""

    base_channels: int = 64  # the global critic's first width, doubled per layer
    num_layers: int = 6  # the global critic's stride-2 layers (the crop: a multiple of `2**layers`)
    local_base_channels: int = 32  # each region critic's first width
    local_num_layers: int = 4  # each region critic's stride-2 layers

    def __post_init__(self) -> None:
        _check_positive(
            "DiscriminatorConfig",
            base_channels=self.base_channels,
            num_layers=self.num_layers,
            local_base_channels=self.local_base_channels,
            local_num_layers=self.local_num_layers,
        )
        _check_at_most(
            "DiscriminatorConfig",
            MAX_CHANNELS,
            base_channels=self.base_channels,
            local_base_channels=self.local_base_channels,
        )
        _check_at_most(
            "DiscriminatorConfig",
            MAX_DISCRIMINATOR_LAYERS,
            num_layers=self.num_layers,
            local_num_layers=self.local_num_layers,
        )


@dataclass(frozen=True)
class ModelConfig:
    """The whole unified model: parser + hierarchical generator (+ discriminators for training)."""

    crop_size: int = 128  # side of the aligned face crop the generators edit (a multiple of 4)
    num_expressions: int = NUM_EXPRESSIONS  # the 8 expressions of faceedit.vocab.expressions
    # Two more condition dimensions, valence and arousal in [-1, 1] (set when trained on
    # AffectNet, which labels them).
    valence_arousal: bool = False
    # The local editors and region critics, one per region (faceedit.vocab.labels
    # REGION_GROUPS); empty: the global-only baseline, no local editors, fuser or region critics.
    regions: tuple[str, ...] = tuple(REGION_GROUPS)
    # "masks": the parser's soft masks select the regions (the method); "boxes": boxes around
    # each face's five landmarks (the paper's ablation).
    region_source: RegionSource = "masks"
    # The local editors and region critics each work on a fixed-size window around their region
    # (faceedit/model/windows.py: a size per region, placed on the region's mask) instead of the
    # whole crop; an editor's result is pasted back before the blend, and a region's mask
    # outside its window is left to the global editor. At 128 px the real-128 hierarchy's FLOPs
    # fall by 47 %. Off: every local network on the whole crop (what older models did).
    local_windows: bool = False
    freeze_parser: bool = False  # the parser gets no gradients (the gan stage; an ablation)
    # Where the app pastes an edit: "crop", the whole aligned crop (feathered at its border);
    # "face", the face's oval in the crop template (faceedit/faces/align.py `face_oval`), so hair
    # and background stay as they were. Inference only: no weight depends on it.
    edit_area: EditArea = "crop"
    parser: ParserConfig = field(default_factory=ParserConfig)
    global_generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    local_generator: GeneratorConfig = field(
        default_factory=lambda: GeneratorConfig(base_channels=16, num_res_blocks=3)
    )
    fusion_channels: int = 32  # width of the small network that removes the regions' seams
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def __post_init__(self) -> None:
        _check_positive(
            "ModelConfig",
            crop_size=self.crop_size,
            num_expressions=self.num_expressions,
            fusion_channels=self.fusion_channels,
        )
        _check_at_most("ModelConfig", MAX_CROP_SIZE, crop_size=self.crop_size)
        _check_at_most("ModelConfig", MAX_CHANNELS, fusion_channels=self.fusion_channels)
        _check_at_most("ModelConfig", MAX_EXPRESSIONS, num_expressions=self.num_expressions)
        if self.crop_size % 4:
            _fail("ModelConfig.crop_size", f"{self.crop_size} is not a multiple of 4")
        if self.edit_area not in ("crop", "face"):
            _fail("ModelConfig.edit_area", f"{self.edit_area!r} is not 'crop' or 'face'")
        if self.region_source not in ("masks", "boxes"):
            _fail("ModelConfig.region_source", f"{self.region_source!r} is not 'masks' or 'boxes'")
        if len(self.regions) > len(REGION_GROUPS):
            _fail(
                "ModelConfig.regions",
                f"lists {len(self.regions)} regions; there are {len(REGION_GROUPS)} "
                f"({', '.join(REGION_GROUPS)}), each at most once",
            )
        unknown = [r for r in self.regions if r not in REGION_GROUPS]
        if unknown or len(set(self.regions)) != len(self.regions):
            _fail(
                "ModelConfig.regions",
                f"{list(self.regions)} must be distinct names from {list(REGION_GROUPS)}",
            )
        if self.parser.num_classes != NUM_CLASSES:
            _fail("ModelConfig.parser.num_classes", f"the region groups need {NUM_CLASSES} classes")
        if 2 ** (self.discriminator.num_layers) > self.crop_size:
            _fail(
                "ModelConfig.discriminator.num_layers",
                f"{self.discriminator.num_layers} halvings do not fit a {self.crop_size} crop",
            )

    @property
    def condition_dim(self) -> int:
        """Length of a condition vector: the expressions, plus valence and arousal if trained so."""
        return self.num_expressions + (2 if self.valence_arousal else 0)

    @property
    def num_regions(self) -> int:
        return len(self.regions)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from `to_dict` output; unknown keys are refused so typos do not pass silently."""
        config: ModelConfig = build(cls, data, "ModelConfig")
        return config

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


def _paper_128() -> ModelConfig:
    # BiSeNet parses at 256 (enough for 128 crops, 4x cheaper than 512); the global generator
    # has StarGAN's size, the local ones are light so the hierarchy stays within 1.5x of it.
    return ModelConfig(crop_size=128, parser=ParserConfig(kind="bisenet", resolution=256))


def _tiny() -> ModelConfig:
    # Small enough that a few training steps run in seconds on a laptop CPU.
    return ModelConfig(
        crop_size=32,
        parser=ParserConfig(
            kind="unet",
            resolution=32,
            mean=IDENTITY_MEAN,
            std=IDENTITY_STD,
            unet_depth=2,
            unet_base_width=8,
        ),
        global_generator=GeneratorConfig(base_channels=8, num_res_blocks=1),
        local_generator=GeneratorConfig(base_channels=4, num_res_blocks=1),
        fusion_channels=8,
        discriminator=DiscriminatorConfig(
            base_channels=8, num_layers=3, local_base_channels=4, local_num_layers=2
        ),
    )


def _world_64() -> ModelConfig:
    # The procedural world at 64 px (trainer/world): every stage trains in minutes on a 2-core
    # CPU (`faceedit-train learning-check`). A small UNet parses at the crop size (16 channels
    # wide: at 8 the held-out mIoU after 1500 steps was 0.66, at 12 0.71, at 16 0.75, the
    # thin parts, glasses frames, earrings and necklaces, gaining most; docs/learning.md); the
    # generators are a quarter of paper-128's width, enough for the world's simple shapes.
    # They read the target through FiLM rather than as input planes: with the world's settings
    # the full check's held-out edits were judged their target 0.315 of the time with FiLM
    # against 0.297 with input planes (seed 0; docs/learning.md), and FiLM keeps the target in
    # every block of a generator this narrow.
    return ModelConfig(
        crop_size=64,
        parser=ParserConfig(
            kind="unet",
            resolution=64,
            mean=IDENTITY_MEAN,
            std=IDENTITY_STD,
            unet_depth=3,
            unet_base_width=16,
        ),
        global_generator=GeneratorConfig(base_channels=16, num_res_blocks=2, conditioning="film"),
        local_generator=GeneratorConfig(base_channels=8, num_res_blocks=1, conditioning="film"),
        fusion_channels=8,
        discriminator=DiscriminatorConfig(
            base_channels=16, num_layers=4, local_base_channels=8, local_num_layers=3
        ),
    )


def _real_128() -> ModelConfig:
    # Real photographs at the paper's crop size, sized to train on a 2-core CPU and to edit a
    # slider move in tens of milliseconds there (docs/real-faces.md): a U-Net parser at the
    # crop's own resolution (the landmark labels are polygons, not hair-thin parts), world-64's
    # narrow FiLM generators, and critics one layer deeper for the larger crop.
    return ModelConfig(
        crop_size=128,
        parser=ParserConfig(
            kind="unet",
            resolution=128,
            mean=IDENTITY_MEAN,
            std=IDENTITY_STD,
            unet_depth=4,
            unet_base_width=16,
        ),
        global_generator=GeneratorConfig(base_channels=16, num_res_blocks=2, conditioning="film"),
        local_generator=GeneratorConfig(base_channels=8, num_res_blocks=1, conditioning="film"),
        fusion_channels=8,
        discriminator=DiscriminatorConfig(
            base_channels=16, num_layers=5, local_base_channels=8, local_num_layers=3
        ),
        # Real photos: edits stay on the face (its global editor also repaints hair and
        # background, 3.8 grey levels outside the face on held-out photos; docs/real-faces.md).
        edit_area="face",
    )


PRESETS: Final[dict[str, Callable[[], ModelConfig]]] = {
    "paper-128": _paper_128,
    "real-128": _real_128,
    "tiny": _tiny,
    "world-64": _world_64,
}


def preset(name: str) -> ModelConfig:
    """A named preset: 'paper-128' (the paper's sizes, 128 crops), 'real-128' (real photos,
    128 crops, trainable on a CPU), 'world-64' (the procedural world on a CPU) or 'tiny' (fast
    CPU tests)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
