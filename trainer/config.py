"""Training configuration: frozen dataclasses, `--set key=value` overrides and YAML files.

A run is fully described by one `TrainConfig`: the model (faceedit's `ModelConfig`), the
optimiser settings, the loss weights, the data and the schedule. It is resolved once (stage
defaults -> recipe (trainer/recipes/) -> YAML file -> flags -> `--set`; trainer/stages/api.py),
printed as a diff against the defaults, saved as `config.yaml` beside the checkpoints and stored
in `state.pt`, so a resumed run checks it continues the same experiment. This module holds
defaults only; what made a trained model is its recipe.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import yaml

from faceedit.configs import build, check_retired, coerce, parse_text, plain, retired_options
from faceedit.errors import ConfigError
from faceedit.fileio import reason
from faceedit.limits import MAX_BATCH, MAX_SEED, MAX_STEPS, MAX_WORKERS
from faceedit.model.config import PRESETS, ModelConfig, preset
from faceedit.model.grouped import LOCAL_EXECUTIONS, LocalExecution

Stage = Literal["parser", "gan", "joint"]
STAGES: Final[tuple[Stage, ...]] = ("parser", "gan", "joint")
ParserOptimiser = Literal["auto", "sgd", "adam"]
ExpressionSource = Literal["affectnet", "rafd", "folders", "facial_expressions"]
EXPRESSION_SOURCES: Final[tuple[str, ...]] = ("affectnet", "rafd", "folders", "facial_expressions")
NonFiniteCheck = Literal["auto", "immediate", "deferred"]
NONFINITE_CHECKS: Final[tuple[NonFiniteCheck, ...]] = ("auto", "immediate", "deferred")
DEFAULT_PRESET: Final[str] = "paper-128"

# Fields a resumed run may change: they say how long to run, how often to report, where the
# data lives and how the networks are executed, not what is learned from it.
RESUMABLE_CHANGES: Final[frozenset[str]] = frozenset(
    {
        "steps",
        "checkpoint_every",
        "log_every",
        "image_every",
        "num_workers",
        "local_execution",
        "nonfinite_check",
        "data.celebamask_hq",
        "data.affectnet",
        "data.rafd",
        "data.folders",
        "data.facial_expressions",
    }
)


def _fail(owner: str, message: str) -> None:
    raise ConfigError(f"{owner}: {message}")


def _check_positive(owner: str, **values: float) -> None:
    bad = {k: v for k, v in values.items() if not v > 0}
    if bad:
        _fail(owner, f"must be > 0: {bad}")


def _check_non_negative(owner: str, **values: float) -> None:
    bad = {k: v for k, v in values.items() if not v >= 0}
    if bad:
        _fail(owner, f"must be >= 0: {bad}")


@dataclass(frozen=True)
class ParserOptimConfig:
    """Stage-1 optimisation: face-parsing.PyTorch's recipe (SGD, linear warm-up, poly decay),
    or Adam, which trains the small UNet from scratch more reliably. "auto" picks SGD for
    BiSeNet and Adam for UNet. The joint stage fine-tunes the parser with Adam at
    `gan_optim.lr_parser` and uses only the OHEM settings from here.
    """

    # "sgd" (BiSeNet's community recipe), "adam", or "auto": SGD for BiSeNet, Adam for UNet
    optimiser: ParserOptimiser = "auto"
    lr: float = 1e-2  # SGD's peak learning rate
    adam_lr: float = 1e-3  # Adam's peak learning rate
    momentum: float = 0.9  # SGD's momentum
    weight_decay: float = 5e-4  # SGD's, on conv/linear weights only, as in the community recipe
    poly_power: float = 0.9  # after the warm-up: `peak * (1 - progress) ** poly_power`
    warmup_steps: int = 1000  # capped at a tenth of the run, so short runs are not all warm-up
    warmup_start_lr: float = 1e-5  # the linear warm-up's first learning rate
    ohem_threshold: float = 0.7  # hard pixel: predicted probability of its class below this
    ohem_min_fraction: float = 1 / 16  # keep at least this fraction of the batch's pixels
    aux_weight: float = 1.0  # BiSeNet's two auxiliary heads, each
    # Options that experiments retired, with the one value still read from old configs
    # (docs/notes/retired-options.md; faceedit.configs.build drops them).
    RETIRED: ClassVar[Mapping[str, Any]] = {"dice_weight": 0.0, "class_weight_power": 0.0}

    def __post_init__(self) -> None:
        if self.optimiser not in ("auto", "sgd", "adam"):
            _fail("parser_optim.optimiser", f"{self.optimiser!r} is not 'auto', 'sgd' or 'adam'")
        _check_positive(
            "parser_optim", lr=self.lr, adam_lr=self.adam_lr, warmup_start_lr=self.warmup_start_lr
        )
        _check_non_negative(
            "parser_optim",
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            poly_power=self.poly_power,
            warmup_steps=self.warmup_steps,
            aux_weight=self.aux_weight,
        )
        if not 0.0 < self.ohem_threshold < 1.0:
            _fail("parser_optim.ohem_threshold", f"must be in (0, 1), got {self.ohem_threshold}")
        if not 0.0 < self.ohem_min_fraction <= 1.0:
            _fail(
                "parser_optim.ohem_min_fraction",
                f"must be in (0, 1], got {self.ohem_min_fraction}",
            )


CRITIC_MASKS: Final[tuple[str, ...]] = ("input", "own")


@dataclass(frozen=True)
class GanOptimConfig:
    """Stage-2/3 optimisation: Adam for generator, discriminators and (joint) the parser."""

    lr_g: float = 1e-4  # the generators' Adam learning rate
    lr_d: float = 1e-4  # the critics' Adam learning rate
    lr_parser: float = 1e-5  # joint stage: the parser is fine-tuned, not retrained
    beta1: float = 0.5  # Adam's beta1, for all three
    beta2: float = 0.999  # Adam's beta2, for all three
    n_critic: int = 5  # discriminator steps per generator step
    decay_start: float = 0.5  # learning rates fall linearly to 0 from this fraction of the run
    # The EMA generator (what the app loads) moves towards the trained one by this decay after
    # each generator step, warmed up as min(ema_decay, (1 + n) / (10 + n)) after n updates.
    ema_decay: float = 0.999
    # A fresh gan run's editors start keeping this fraction of each pixel (the attention heads'
    # bias set to its logit); 0 leaves the random initialisation, which keeps about half and so
    # starts by repainting the whole crop (trainer/stages/warm_start.py).
    attention_start: float = 0.0
    # The first iterations train only the critics' expression heads on real images, so the
    # generator's classification loss means something from its first update (warm_start.py).
    critic_warmup: int = 0
    # Which masks the region critics see a fake through: "input" (the input's, as the editors
    # use them) or "own" (the parser's masks of the fake itself). Through the input's masks a
    # region critic reads the input's outline of a part (a closed mouth's, a lowered brow's) in
    # every fake, so no faithful edit can satisfy it (docs/learning.md).
    critic_masks: str = "input"
    # Retired: what the critics saw of each image (shifted, blurred, noised views);
    # docs/notes/retired-options.md.
    RETIRED: ClassVar[Mapping[str, Any]] = {
        "critic_shift": 0,
        "critic_blur": 0.0,
        "critic_noise": 0.0,
    }

    def __post_init__(self) -> None:
        _check_positive("gan_optim", lr_g=self.lr_g, lr_d=self.lr_d, lr_parser=self.lr_parser)
        if self.critic_masks not in CRITIC_MASKS:
            _fail(
                "gan_optim.critic_masks",
                f"must be one of {list(CRITIC_MASKS)}, got {self.critic_masks!r}",
            )
        if not isinstance(self.critic_warmup, int) or self.critic_warmup < 0:
            _fail("gan_optim.critic_warmup", f"must be an integer >= 0, got {self.critic_warmup!r}")
        if not 0.0 <= self.attention_start < 1.0:
            _fail("gan_optim.attention_start", f"must be in [0, 1), got {self.attention_start}")
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            _fail("gan_optim", f"betas must be in [0, 1), got ({self.beta1}, {self.beta2})")
        if not isinstance(self.n_critic, int) or self.n_critic < 1:
            _fail("gan_optim.n_critic", f"must be an integer >= 1, got {self.n_critic!r}")
        if not 0.0 <= self.decay_start <= 1.0:
            _fail("gan_optim.decay_start", f"must be in [0, 1], got {self.decay_start}")
        if not 0.0 <= self.ema_decay < 1.0:
            _fail("gan_optim.ema_decay", f"must be in [0, 1), got {self.ema_decay}")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the GAN losses (StarGAN's and GANimation's defaults) and of the parser's."""

    adversarial: float = 1.0  # the global critic's WGAN loss
    local_adversarial: float = 1.0  # the region critics' WGAN loss (their mean)
    gradient_penalty: float = 10.0  # WGAN-GP, for every critic
    # Expression cross-entropy of the critics' heads: real images with their labels (critics),
    # edits with their targets (generator).
    classification: float = 1.0
    # The critics also learn to find the input's own (source) expression in each fake. StarGAN
    # (0) trains their classifiers on real images only, so an edit that paints patterns the
    # classifier misreads scores as well as a real change of expression; with this term the
    # source's features left in such an edit give it away (trainer/stages/steps.py).
    fake_source_classification: float = 0.0
    valence_arousal: float = 1.0  # the critics' valence/arousal regression, where labelled
    cycle: float = 10.0  # L1 between the input and its edit edited back to the source expression
    # GANimation's penalty on the attention's mean (1 keeps a pixel): without it the cycle loss
    # is happiest with every pixel kept.
    attention_mean: float = 0.1
    attention_tv: float = 1.0  # the attention's smoothness: mean absolute neighbour difference
    # The same smoothness on the change itself (edit - input): speckle that a critic's head
    # misreads as an expression costs far more than the edges of a reshaped mouth or brow.
    # 0 in the paper's setting (trainer/stages/steps.py).
    edit_tv: float = 0.0
    # Same-person pairs (trainer/data/pairs.py): where the data holds another photo of the same
    # identity, it is the target, and the edit's blurred luminance in the face parts is pulled
    # towards that photo's. 0 in the paper's setting; needs a prepared facial-expressions folder.
    paired: float = 0.0
    # The edit seen as `faceedit edit --editable mouth` shows it (the input outside the parser's
    # mouth, x + m_mouth (y - x)) is classified as the target by the global critic: a locked
    # mouth must carry the expression by itself, not leave it to cheeks and eyes. Needs a
    # "mouth" region; 0 in every recipe (a short probe changed nothing the judge sees:
    # docs/notes/real-faces-history.md).
    mouth_only_classification: float = 0.0
    parser_loss_weight: float = 1.0  # joint stage: the parser's own OHEM cross-entropy

    def __post_init__(self) -> None:
        _check_non_negative("loss", **dataclasses.asdict(self))


@dataclass(frozen=True)
class DataConfig:
    """Where the datasets are (each a folder, as downloaded or as `faceedit-train prepare` made
    it; "" for none) and how to read them."""

    celebamask_hq: str = ""  # CelebAMask-HQ: the parser's labelled faces
    affectnet: str = ""  # AffectNet: the gan and joint stages' expressions, valence and arousal
    rafd: str = ""  # RaFD: expression data, split by subject (one expression dataset at most)
    folders: str = ""  # your photos as expression data: `ROOT/<expression>/*` or `ROOT/train/...`
    # Real faces (trainer/data/facial_expressions.py): the gan and joint stages' expression
    # data, and, when celebamask_hq is empty, the parser's (its prepared folder's label maps
    # drawn from landmarks; see parsing_source).
    facial_expressions: str = ""
    # How expression crops are cut: "" = the loader's default (its face box, or the centre
    # square); "detect" (the app's detector and alignment; slow); for AffectNet also "box",
    # "landmarks" (its annotated points, aligned as the app aligns) and "aligned" (each image
    # is an aligned crop already, resized whole: the procedural world).
    align: str = ""
    augment: bool = True  # CelebAMask-HQ flips, scales and colour jitter
    # The scale range of that augmentation; (1, 1) flips and jitters without resampling, so
    # 1-2 px parts (brows, glasses frames at 64 px) keep their labels exactly.
    augment_scale: tuple[float, float] = (0.75, 1.25)
    class_balanced: bool = True  # expression batches draw every class equally often
    # With class_balanced: expressions with fewer training images than this are never drawn
    # (neither as source nor as target); a real dataset's 9 contempt photos would otherwise be
    # shown hundreds of times as often as a neutral one. 0 keeps every class.
    min_class_images: int = 0
    # Share of CelebAMask-HQ's training images whose parsing labels the parser and joint stages
    # may use (a seeded subset); the low-label experiment sets 0.1. Expression data is unaffected.
    parser_label_fraction: float = 1.0

    def __post_init__(self) -> None:
        given = [name for name in EXPRESSION_SOURCES if getattr(self, name)]
        if len(given) > 1:
            _fail("data", f"give one expression dataset, got {given}")
        if not isinstance(self.min_class_images, int) or self.min_class_images < 0:
            _fail(
                "data.min_class_images", f"must be an integer >= 0, got {self.min_class_images!r}"
            )
        if not 0.0 < self.parser_label_fraction <= 1.0:
            _fail("data.parser_label_fraction", f"{self.parser_label_fraction} is not in (0, 1]")
        low, high = self.augment_scale
        if not 0.0 < low <= high:
            _fail(
                "data.augment_scale",
                f"must be (low, high) with 0 < low <= high, got {self.augment_scale}",
            )

    @property
    def parsing_source(self) -> str | None:
        """The parser's labelled faces: CelebAMask-HQ when given, else a prepared
        facial_expressions folder, else None."""
        return self.celebamask_hq or self.facial_expressions or None

    @property
    def expression_source(self) -> tuple[ExpressionSource, str] | None:
        """(kind, root) of the expression dataset, or None when none is set."""
        for name in EXPRESSION_SOURCES:
            root = getattr(self, name)
            if root:
                return name, root  # type: ignore[return-value]  # name is one of the dataset kinds
        return None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (runtime choices like the device are flags)."""

    stage: Stage = "parser"  # which stage the run is (set by the command)
    preset: str = DEFAULT_PRESET  # the model preset the defaults start from (`--preset`)
    model: ModelConfig = field(default_factory=lambda: preset(DEFAULT_PRESET))
    steps: int = 80_000  # iterations of the stage (a gan stage's critic warm-up included)
    batch_size: int = 16  # per process; under torchrun the global batch is this x world size
    parser_optim: ParserOptimConfig = field(default_factory=ParserOptimConfig)
    gan_optim: GanOptimConfig = field(default_factory=GanOptimConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    data: DataConfig = field(default_factory=DataConfig)
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    log_every: int = 50  # steps between logged (averaged) losses
    image_every: int = 1000  # steps between TensorBoard image grids
    seed: int = 0  # every random draw: weights, sample order, augmentation
    # DataLoader workers per process; -1: from the machine's cores (loop.default_num_workers)
    num_workers: int = -1
    # Deterministic algorithms: bitwise repeatable on the CPU, best effort on CUDA.
    deterministic: bool = False
    # How the gan and joint stages run the local editors and the region critics: "separate",
    # one after the other (faster on a CPU); "grouped", each kind as one grouped network, for
    # GPUs: one network's kernel launches instead of one per region, from the same weights, with
    # the same results to float rounding (faceedit/model/grouped.py). Checkpoints are the same.
    local_execution: LocalExecution = "separate"
    # When a NaN or infinite loss stops the run: "immediate", read on the host in every phase
    # before backward, so a bad step never reaches the weights; "deferred", kept on the device
    # and read at logging steps and before every checkpoint, so no phase waits on the host (a
    # bad step reaches the weights, which are then never saved); "auto": immediate on the CPU,
    # where the read costs nothing, deferred on CUDA (trainer/stages/nonfinite.py).
    nonfinite_check: NonFiniteCheck = "auto"

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            _fail("stage", f"{self.stage!r} is not one of {list(STAGES)}")
        if self.preset not in PRESETS:
            _fail("preset", f"{self.preset!r} is not one of {sorted(PRESETS)}")
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "image_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                _fail(name, f"must be a positive integer, got {value!r}")
        # The flags' ranges (faceedit/limits.py) hold for config files and --set too.
        for name, limit in (("steps", MAX_STEPS), ("checkpoint_every", MAX_STEPS),
                            ("log_every", MAX_STEPS), ("image_every", MAX_STEPS),
                            ("batch_size", MAX_BATCH)):  # fmt: skip
            if getattr(self, name) > limit:
                _fail(name, f"must be at most {limit}, got {getattr(self, name)}")
        if not isinstance(self.num_workers, int) or not -1 <= self.num_workers <= MAX_WORKERS:
            _fail(
                "num_workers",
                f"must be an integer from -1 (auto) to {MAX_WORKERS}, got {self.num_workers!r}",
            )
        if self.local_execution not in LOCAL_EXECUTIONS:
            _fail(
                "local_execution",
                f"{self.local_execution!r} is not one of {list(LOCAL_EXECUTIONS)}",
            )
        if self.nonfinite_check not in NONFINITE_CHECKS:
            _fail(
                "nonfinite_check",
                f"{self.nonfinite_check!r} is not one of {list(NONFINITE_CHECKS)}",
            )
        if not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            _fail("seed", f"must be an integer from 0 to {MAX_SEED}, got {self.seed!r}")
        trains_parser = self.stage == "parser" or (
            self.stage == "joint" and not self.model.freeze_parser
        )
        if trains_parser and self.model.parser.kind == "bisenet" and self.batch_size < 2:
            _fail(
                "batch_size",
                f"{self.batch_size}: a BiSeNet parser in training needs at least 2 images per "
                "batch (its BatchNorms after global pooling see one value per image)",
            )
        if self.stage == "gan" and not self.model.freeze_parser:
            _fail(
                "model.freeze_parser",
                "the gan stage trains with the parser frozen; fine-tune it with the joint stage",
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists): what config.yaml and state.pt store."""
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild from `to_dict` output; unknown keys and bad values raise ConfigError."""
        return build(cls, data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------- defaults per stage


def default_config(stage: Stage, preset_name: str = DEFAULT_PRESET) -> TrainConfig:
    """The defaults of one stage for a model preset: the community parser recipe and StarGAN's
    GAN schedule. What a trained model used is its recipe (trainer/recipes/), applied on top."""
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r}; choose one of {sorted(PRESETS)}")
    model = preset(preset_name)
    if stage == "parser":
        return TrainConfig(stage="parser", preset=preset_name, model=model, steps=80_000)
    if stage == "gan":
        return TrainConfig(
            stage="gan",
            preset=preset_name,
            model=model.replace(freeze_parser=True),
            steps=200_000,
        )
    if stage == "joint":
        return TrainConfig(stage="joint", preset=preset_name, model=model, steps=20_000)
    raise ConfigError(f"unknown stage {stage!r}; choose one of {list(STAGES)}")


# ---------------------------------------------------------------- overrides and YAML


def apply_overrides(config: TrainConfig, assignments: Iterable[str]) -> TrainConfig:
    """Apply `key=value` strings with dotted keys (`model.parser.kind=unet`, `loss.cycle=5`).

    Values are parsed by the field's type: ints, floats, bools (true/false/yes/no/1/0), the
    choices of a Literal, and tuples written `a,b,c` or `[a, b, c]`.
    """
    updates: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--set expects KEY=VALUE (e.g. model.parser.kind=unet), got {text!r}"
            )
        updates[key] = value.strip()
    return merge(config, updates, from_text=True)


# A config is a few lines; anything larger is a mistake (or an attack on the parser).
MAX_CONFIG_BYTES: Final[int] = 1024 * 1024


class NoAliasLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses aliases (`*name`): a config never needs them, and a few
    hundred bytes of nested aliases expand to billions of nodes (a "billion laughs" bomb)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed in a faceedit config; write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a nested mapping (ConfigError for unreadable or non-mapping files)."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise ConfigError(f"config file {file} is a folder; give a YAML file")
    try:
        with open(file, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read config file {file}: {reason(error)}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {file} is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config is a "
            "few lines of YAML"
        )
    if b"\0" in raw:
        raise ConfigError(f"config file {file} is a binary file, not YAML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {file} is not UTF-8 text (byte {error.start}); save it as UTF-8 YAML"
        ) from None
    try:
        data = yaml.load(text, Loader=NoAliasLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = " ".join(str(error.problem or error.context or "").split())[:300]
        raise ConfigError(f"config file {file} is not valid YAML: {problem}{where}") from None
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())[:300]
        raise ConfigError(f"config file {file} is not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"config file {file} is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {file} must hold a mapping of keys, got {type(data).__name__}"
        )
    return data


def merge(config: TrainConfig, updates: Mapping[str, Any], from_text: bool = False) -> TrainConfig:
    """`config` with `updates` applied: keys are dotted paths or nested mappings.

    With `from_text` the values are strings to parse; otherwise they are YAML-typed values,
    coerced to the field types (lists become tuples, ints become floats where floats are due).
    """
    data = config.to_dict()
    for key, value in flatten_keys(updates).items():
        owner = retired_owner(key)
        if owner is not None:  # an old config's retired option: checked, then dropped
            check_retired(owner, key.rsplit(".", 1)[-1], value, key)
            continue
        hint = field_type(key)
        parsed = parse_text(value, hint, key) if from_text else coerce(value, hint, key)
        _assign(data, key, plain(parsed))
    return TrainConfig.from_dict(data)


def field_type(key: str) -> Any:
    """The type annotation of a dotted key of TrainConfig; ConfigError names the valid keys."""
    cls: Any = TrainConfig
    parts = key.split(".")
    for depth, name in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(
                f"unknown config key {key!r}: {'.'.join(parts[:depth])} has no fields"
            )
        hints = _field_hints(cls)
        if name not in hints:
            owner = ".".join(parts[:depth]) or "the top level"
            raise ConfigError(
                f"unknown config key {key!r}; keys at {owner}: {', '.join(sorted(hints))}"
            )
        cls = hints[name]
    return cls


def retired_owner(key: str) -> Any:
    """The config class a dotted key's last part is a retired option of, or None."""
    *parents, leaf = key.split(".")
    cls: Any = TrainConfig
    for name in parents:
        hints = _field_hints(cls) if dataclasses.is_dataclass(cls) else {}
        if name not in hints:
            return None
        cls = hints[name]
    if not dataclasses.is_dataclass(cls) or leaf in _field_hints(cls):
        return None
    return cls if leaf in retired_options(cls) else None


def _field_hints(cls: Any) -> dict[str, Any]:
    """Type annotations of the dataclass fields of `cls` (class attributes left out)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def save_yaml(config: TrainConfig) -> str:
    """The full config as YAML text (what config.yaml holds)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def differences(config: TrainConfig, base: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (base value, value) for every leaf that differs."""
    ours, theirs = flatten_keys(config.to_dict()), flatten_keys(base.to_dict())
    return {k: (theirs.get(k), v) for k, v in ours.items() if theirs.get(k) != v}


def describe_differences(config: TrainConfig, base: TrainConfig) -> str:
    """`key: value` lines for what differs from the defaults (what the run prints)."""
    diff = differences(config, base)
    if not diff:
        return f"config: the {config.stage} defaults of preset {config.preset}"
    lines = [f"config ({config.stage} stage, preset {config.preset}; differences from defaults):"]
    lines += [f"  {key}: {new!r}  (default {old!r})" for key, (old, new) in sorted(diff.items())]
    return "\n".join(lines)


def check_resumable(saved: TrainConfig, requested: TrainConfig) -> None:
    """Refuse to resume a run with settings that would make it a different experiment."""
    changed = sorted(k for k in differences(requested, saved) if k not in RESUMABLE_CHANGES)
    if changed:
        detail = ", ".join(
            f"{k}: {differences(requested, saved)[k][0]!r} -> {differences(requested, saved)[k][1]!r}"
            for k in changed
        )
        raise ConfigError(
            f"--resume continues the saved run, but these settings differ from it: {detail}. "
            "Drop those options, or start a new run in another --out folder"
        )


# ---------------------------------------------------------------- helpers


def flatten_keys(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys: {"loss": {"cycle": 10}} -> {"loss.cycle": 10}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_keys(value, path + "."))
        else:
            flat[path] = value
    return flat


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = data
    for name in parents:
        node = node[name]
    node[leaf] = value
