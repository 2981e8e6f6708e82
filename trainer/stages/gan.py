"""Stages 2 and 3's training: the hierarchical GAN on expression data (`GanStage`).

Stage 2 keeps the parser frozen; the joint stage (trainer/stages/joint.py starts it) trains it
too, with CelebAMask-HQ batches in between. One iteration: a discriminator step; every
`n_critic` iterations a generator step (then the EMA update); in the joint stage a parser step,
whose update also carries the GAN gradients that reached the parser. Exports
`model.safetensors`: the EMA generator, the parser and the discriminators.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor, nn

from faceedit.errors import CheckpointError, ConfigError
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.generator import HierarchicalGenerator
from faceedit.model.parsing import build_parser
from faceedit.model.unified import UnifiedModel
from faceedit.weights import checkpoint
from trainer.config import TrainConfig
from trainer.data.pairs import PairedExpressions
from trainer.stages.distributed import DistInfo, autocast, wrap
from trainer.stages.loop import (
    EndlessLoader,
    ema_decay_at,
    linear_decay,
    make_ema,
    set_lr,
    update_ema,
)
from trainer.stages.nonfinite import NonFiniteGuard
from trainer.stages.parser import CHECKPOINT_NAME as PARSER_CHECKPOINT
from trainer.stages.parser import parsing_train_set
from trainer.stages.run_log import colour_regions, grey, grid, to_unit
from trainer.stages.speed import (
    adam,
    compile_module,
    images_to,
    to_memory_format,
    uses_channels_last,
)
from trainer.stages.steps import (
    MOUTH_REGION,
    SamePersonPairs,
    condition,
    discriminator_step,
    edit_pass,
    expression_batch,
    generator_step,
    parser_step,
    set_requires_grad,
)
from trainer.stages.warm_start import critic_warmup_losses, start_attention

logger = logging.getLogger("trainer.stages.gan")

CHECKPOINT_NAME: Final[str] = "model.safetensors"
NUM_PREVIEW: Final[int] = 4


def load_parser(path: str) -> checkpoint.LoadedCheckpoint:
    """The parser checkpoint named by --parser (a file, or a run folder holding one)."""
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / PARSER_CHECKPOINT
    loaded = checkpoint.load(file)
    if loaded.parser is None:
        raise CheckpointError(
            f"--parser {path}: {file} holds no parser (it has {list(loaded.contents)})"
        )
    return loaded


@dataclass
class InitialWeights:
    """State dicts to start from (None: fresh initialisation); `source` names where they came from."""

    parser: Mapping[str, Tensor] | None = None
    generator: Mapping[str, Tensor] | None = None
    ema: Mapping[str, Tensor] | None = None
    discriminator: Mapping[str, Tensor] | None = None
    source: str = ""


def _load_into(
    module: nn.Module, state: Mapping[str, Tensor] | None, what: str, source: str
) -> None:
    if state is None:
        return
    try:
        module.load_state_dict(dict(state), strict=True)
    except RuntimeError as error:
        detail = " ".join(line.strip() for line in str(error).splitlines()[1:3])[:400]
        raise CheckpointError(
            f"the {what} weights from {source} do not fit the configured model ({detail}); "
            "do not change the architecture (model.*) of an initialised stage"
        ) from None


def template_landmarks(batch: int, size: int, device: torch.device) -> Tensor:
    """(B, 5, 2) faceedit's alignment template in crop pixels: the keypoint-box fallback for
    samples without keypoints of their own (aligned crops sit near the template)."""
    from faceedit.faces.align import template_landmarks as template

    points = torch.as_tensor(template(size), dtype=torch.float32, device=device)
    return points.unsqueeze(0).expand(batch, -1, -1)


def face_landmarks(points: Tensor, size: int) -> tuple[Tensor, int]:
    """(B, 5, 2) each face's own keypoints, the template where a sample has none (NaN rows);
    returns them with the number of samples that fell back to the template."""
    missing = ~torch.isfinite(points).all(dim=2).all(dim=1)  # (B,)
    if not bool(missing.any()):
        return points, 0
    template = template_landmarks(points.shape[0], size, points.device)
    filled = torch.where(missing[:, None, None], template, points)
    return filled, int(missing.sum())


def paired_expressions(expressions: Any, config: TrainConfig) -> PairedExpressions:
    """The training set with same-person partners (loss.paired), among the expressions the run
    teaches (those with at least data.min_class_images photos)."""
    if config.model.region_source == "boxes":
        raise ConfigError("loss.paired works with model.region_source=masks only")
    counts = np.bincount(np.asarray(expressions.targets), minlength=config.model.num_expressions)
    teachable = counts >= max(1, config.data.min_class_images)
    paired = PairedExpressions(expressions, teachable, seed=config.seed)
    logger.info(
        "same-person pairs: %.0f %% of training photos have one", 100 * paired.share_with_partner
    )
    return paired


class GanStage:
    """Stages 2 and 3 (see trainer.stages.loop.Stage). With `joint`, the parser trains too (unless
    model.freeze_parser) and CelebAMask-HQ batches keep its own supervision."""

    def __init__(
        self,
        config: TrainConfig,
        info: DistInfo,
        expressions: Any,
        parsing: Any | None,
        init: InitialWeights,
    ) -> None:
        self.config = config
        self.info = info
        self.name = config.stage
        model_config = config.model
        self.joint = config.stage == "joint"
        self.train_parser = self.joint and not model_config.freeze_parser
        device = info.device
        opt = config.gan_optim

        # ---- networks (raw modules: what is saved, averaged and exported)
        self.parser_net = build_parser(model_config.parser)
        _load_into(self.parser_net, init.parser, "parser", init.source)
        self.has_parser = init.parser is not None or self.train_parser
        local = config.local_execution  # how the local editors and critics run (the EMA: as copied)
        self.generator_net = HierarchicalGenerator(model_config).set_local_execution(local)
        if init.generator is None:
            start_attention(self.generator_net, opt.attention_start)
        _load_into(self.generator_net, init.generator, "generator", init.source)
        self.discriminator_net = (
            HierarchicalDiscriminator(model_config).set_local_execution(local).to(device).train()
        )
        _load_into(self.discriminator_net, init.discriminator, "discriminator", init.source)
        # UnifiedModel freezes the parser (eval, no grad) or makes it trainable, per config.
        self.model = UnifiedModel(model_config, self.parser_net, self.generator_net).to(device)
        self.ema = make_ema(self.generator_net)
        _load_into(self.ema, init.ema or init.generator, "EMA generator", init.source)
        # Shares the parser; the EMA generator stays in eval mode (make_ema).
        self.ema_model = UnifiedModel(model_config, self.parser_net, self.ema)
        self.model.train()

        # ---- CUDA speed (trainer/stages/speed.py): NHWC weights, a compiled generator
        self.channels_last = uses_channels_last(info)
        for net in (self.parser_net, self.generator_net, self.ema, self.discriminator_net):
            to_memory_format(net, self.channels_last)

        # ---- DDP: each trained network wrapped on its own; the training model uses the wrappers
        self.generator = compile_module(wrap(self.generator_net, info), info.compile)
        self.discriminator = wrap(self.discriminator_net, info)
        has_aux = model_config.parser.kind == "bisenet"  # aux heads the GAN losses never reach
        self.parser = (
            wrap(self.parser_net, info, find_unused=has_aux)
            if self.train_parser
            else self.parser_net
        )
        if info.distributed or info.compile:
            self.model.generator = self.generator  # type: ignore[assignment]  # the DDP wrapper stands in for it
            self.model.parser = self.parser

        self.own_masks = opt.critic_masks == "own"

        # ---- optimisers, and the watch for non-finite losses
        betas = (opt.beta1, opt.beta2)
        self.opt_g = adam(self.generator_net.parameters(), opt.lr_g, betas, device)
        self.opt_d = adam(self.discriminator_net.parameters(), opt.lr_d, betas, device)
        self.opt_p = (
            adam(self.parser_net.parameters(), opt.lr_parser, betas, device)
            if self.train_parser
            else None
        )
        self.guard = NonFiniteGuard(config.nonfinite_check, info)

        # ---- data
        from trainer.data import class_balanced_weights

        # Keypoint boxes come from each face's own points, which the loader then returns.
        self.boxes = model_config.region_source == "boxes" and bool(model_config.regions)
        if self.boxes and not hasattr(expressions, "return_points"):
            raise ConfigError(
                "model.region_source=boxes needs each face's own keypoints, which a prepared "
                "folder does not hold: train on the raw dataset, or with region_source=masks"
            )
        if self.boxes:
            expressions.return_points = True
        if config.loss.mouth_only_classification > 0 and MOUTH_REGION not in model_config.regions:
            raise ConfigError(
                f"loss.mouth_only_classification needs a {MOUTH_REGION!r} region; "
                f"model.regions is {list(model_config.regions)}"
            )
        self.paired = config.loss.paired > 0
        if self.paired:
            expressions = paired_expressions(expressions, config)
        self.box_samples = 0  # samples given keypoint boxes, and of those, template fallbacks
        self.template_fallbacks = 0
        weights = (
            class_balanced_weights(expressions, config.data.min_class_images)
            if config.data.class_balanced
            else None
        )
        self.loaders = {
            "expressions": EndlessLoader(
                expressions,
                config.batch_size,
                seed=config.seed,
                info=info,
                num_workers=config.num_workers,
                weights=weights,
                name="expression data",
            )
        }
        if self.train_parser:
            assert parsing is not None
            self.loaders["celebamask_hq"] = EndlessLoader(
                parsing,
                config.batch_size,
                seed=config.seed + 1,
                info=info,
                num_workers=config.num_workers,
                name="CelebAMask-HQ",
            )
        count = min(NUM_PREVIEW, len(expressions))
        samples = [expressions[i] for i in range(count)]
        self.preview = torch.stack([sample[0] for sample in samples]).to(device)
        self.preview_points = (
            torch.stack([sample[3] for sample in samples]).to(device) if self.boxes else None
        )
        self.source = init.source

    @classmethod
    def build(cls, config: TrainConfig, info: DistInfo, init: InitialWeights) -> GanStage:
        from trainer.data import build_expression_dataset

        source = config.data.expression_source
        assert source is not None
        kind, root = source
        options: dict[str, Any] = {"seed": config.seed}
        if config.data.align:
            options["align"] = config.data.align
        try:
            expressions = build_expression_dataset(
                kind, root, "train", config.model.crop_size, **options
            )
        except ValueError as error:
            raise ConfigError(f"data.align / {kind}: {error}") from None
        parsing = None
        if config.stage == "joint" and not config.model.freeze_parser:
            parsing = parsing_train_set(config)
        return cls(config, info, expressions, parsing, init)

    # ---- schedules

    def g_updates_before(self, step: int) -> int:
        """Generator steps in iterations 0 .. step - 1 (one in every n_critic, the first included;
        none during the critic warm-up)."""
        n = self.config.gan_optim.n_critic
        return -(-max(0, step - self.config.gan_optim.critic_warmup) // n)

    def _set_learning_rates(self, step: int) -> None:
        opt, total = self.config.gan_optim, self.config.steps
        set_lr(self.opt_g, linear_decay(step, total, opt.lr_g, opt.decay_start))
        set_lr(self.opt_d, linear_decay(step, total, opt.lr_d, opt.decay_start))
        if self.opt_p is not None:
            set_lr(self.opt_p, linear_decay(step, total, opt.lr_parser, opt.decay_start))

    # ---- one iteration

    def _next_batch(self) -> Any:
        images, labels, valence_arousal, *rest = next(self.loaders["expressions"])
        device = self.info.device
        images = images_to(images.to(device, non_blocking=True), self.channels_last)
        pairs, pair_labels, points = None, None, rest
        if self.paired:
            partner, pair_labels, has_partner, parts = (t.to(device) for t in rest)
            pairs = SamePersonPairs(images_to(partner, self.channels_last), has_partner, parts)
            points = []
        landmarks = None
        if self.boxes:
            landmarks, fallbacks = face_landmarks(points[0].to(device), images.shape[-1])
            self._count_fallbacks(images.shape[0], fallbacks)
        return expression_batch(
            images,
            labels.to(device, non_blocking=True),
            valence_arousal.to(device, non_blocking=True),
            self.config.model,
            landmarks,
            pairs,
            pair_labels,
        )

    def _count_fallbacks(self, samples: int, fallbacks: int) -> None:
        """Say (once, then in the run's log) when samples had no keypoints of their own."""
        if fallbacks and not self.template_fallbacks:
            logger.warning(
                "keypoint boxes: some samples have no landmarks of their own (the dataset has "
                "none for them); they get the alignment template's boxes"
            )
        self.box_samples += samples
        self.template_fallbacks += fallbacks

    def train_step(self, step: int) -> dict[str, Tensor]:
        self._set_learning_rates(step)
        batch = self._next_batch()
        weights = self.config.loss
        named: dict[str, Tensor] = {}
        if step < self.config.gan_optim.critic_warmup:  # the critics learn expressions first
            with autocast(self.info):
                named = critic_warmup_losses(self.model, self.discriminator, batch, weights)
            self.opt_d.zero_grad(set_to_none=True)
            self.guard.total(named, step).backward()
            self.opt_d.step()
            return named
        if self.opt_p is not None:
            self.opt_p.zero_grad(set_to_none=True)
        warm = self.config.gan_optim.critic_warmup
        generator_phase = (step - warm) % self.config.gan_optim.n_critic == 0
        # With the parser frozen, both phases see the same edit: made once, with gradients
        # (steps.EditPass). A trained parser parses in train mode for the generator and in
        # eval mode for the critics, so the joint stage makes each phase's own.
        edit = None
        if generator_phase and not self.train_parser:
            with autocast(self.info):
                edit = edit_pass(self.model, batch, self.own_masks)

        # ---- discriminator phase
        set_requires_grad(self.discriminator_net, True)
        with autocast(self.info):
            d_losses = discriminator_step(
                self.model,
                self.discriminator,
                batch,
                weights,
                self.own_masks,
                edit,
            )
        loss = self.guard.total(d_losses, step)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        named.update(d_losses)

        # ---- generator phase (every n_critic iterations); GAN gradients also reach the parser
        if generator_phase:
            set_requires_grad(self.discriminator_net, False)
            with autocast(self.info):
                g_losses = generator_step(
                    self.model,
                    self.discriminator_net,
                    batch,
                    weights,
                    self.own_masks,
                    edit,
                )
            loss = self.guard.total(g_losses, step)
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
            set_requires_grad(self.discriminator_net, True)
            decay = ema_decay_at(self.g_updates_before(step), self.config.gan_optim.ema_decay)
            update_ema(self.ema, self.generator_net, decay)
            named.update(g_losses)

        # ---- parser phase (joint): its own supervision, added to the GAN's gradients
        if self.opt_p is not None:
            images, labels = next(self.loaders["celebamask_hq"])
            images = images_to(images.to(self.info.device, non_blocking=True), self.channels_last)
            labels = labels.to(self.info.device, non_blocking=True)
            with autocast(self.info):
                p_losses = parser_step(
                    self.parser,
                    images,
                    labels,
                    self.config.parser_optim,
                    weights.parser_loss_weight,
                )
            loss = self.guard.total(p_losses, step)
            loss.backward()
            # With its own loss weighted 0, the parser learns only from GAN gradients: without a
            # generator phase it has none, and Adam would still move it on stale momentum.
            if weights.parser_loss_weight > 0 or generator_phase:
                self.opt_p.step()
            named.update(p_losses)
        return named

    # ---- bookkeeping

    def learning_rates(self) -> dict[str, float]:
        rates = {
            "generator": self.opt_g.param_groups[0]["lr"],
            "discriminator": self.opt_d.param_groups[0]["lr"],
        }
        if self.opt_p is not None:
            rates["parser"] = self.opt_p.param_groups[0]["lr"]
        return rates

    def images_per_step(self) -> int:
        per_batch = self.config.batch_size * self.info.world_size
        return per_batch * (2 if self.opt_p is not None else 1)

    def networks(self) -> dict[str, nn.Module]:
        return {
            "parser": self.parser_net,
            "generator": self.generator_net,
            "ema": self.ema,
            "discriminator": self.discriminator_net,
        }

    def state_dict(self) -> dict[str, Any]:
        optimizers = {
            "generator": self.opt_g.state_dict(),
            "discriminator": self.opt_d.state_dict(),
        }
        if self.opt_p is not None:
            optimizers["parser"] = self.opt_p.state_dict()
        return {
            "modules": {name: net.state_dict() for name, net in self.networks().items()},
            "optimizers": optimizers,
            "has_parser": self.has_parser,
            "source": self.source,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state["modules"][name])
        self.opt_g.load_state_dict(state["optimizers"]["generator"])
        self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
        if self.opt_p is not None:
            self.opt_p.load_state_dict(state["optimizers"]["parser"])
        self.has_parser = bool(state.get("has_parser", True))
        self.source = str(state.get("source", ""))

    def export(self, folder: Path, step: int) -> Path:
        """The EMA generator (what the app should use), the parser and the discriminators."""
        from trainer.world.world import is_world_data

        kind_root = self.config.data.expression_source
        procedural = bool(kind_root) and is_world_data(kind_root[1])  # type: ignore[index]
        metadata: dict[str, Any] = {
            "stage": self.name,
            "step": step,
            "dataset": kind_root[0] if kind_root else "",
            # What the model is for (faceedit.media.bundled.training_domain): `faceedit edit`
            # says so when it is given other faces.
            "domain": "procedural" if procedural else "photos",
            "initialised_from": self.source,
        }
        if self.boxes:  # since this process started (a resumed run counts from the resume)
            metadata["keypoint_boxes"] = {
                "samples": self.box_samples,
                "template_fallbacks": self.template_fallbacks,
            }
        return checkpoint.save(
            folder / CHECKPOINT_NAME,
            self.config.model,
            parser=self.parser_net if self.has_parser else None,
            generator=self.ema,
            discriminator=self.discriminator_net,
            metadata=metadata,
        )

    @torch.no_grad()
    def images(self) -> dict[str, Tensor]:
        """Edits of the preview faces towards every expression, with the EMA generator.

        `edits`: input | region masks | one column per expression. `attention`: per expression,
        the effective keep-map (1 - sum m_k) A_0 + sum m_k A_k (white = pixel kept).
        """
        x = self.preview
        was_training = self.parser_net.training
        self.parser_net.eval()
        try:
            landmarks = None
            if self.preview_points is not None:
                landmarks = face_landmarks(self.preview_points, x.shape[-1])[0]
            masks = self.ema_model.region_masks(x, landmarks).masks
            edits, keeps = [], []
            for index in range(self.config.model.num_expressions):
                labels = torch.full((x.shape[0],), index, dtype=torch.long, device=x.device)
                va = torch.zeros(x.shape[0], 2, device=x.device)
                out = self.ema_model.generate(x, masks, condition(labels, va, self.config.model))
                union = masks.sum(1, keepdim=True).clamp(0, 1)
                local = (masks.unsqueeze(2) * out.attention[:, 1:]).sum(1)
                keeps.append(grey((1 - union) * out.attention[:, 0] + local))
                edits.append(to_unit(out.image))
        finally:
            self.parser_net.train(was_training)
        regions = colour_regions(masks, self.config.model.regions)
        return {
            "gan/edits": grid([to_unit(x), regions, *edits]),
            "gan/attention": grid(keeps),
        }
