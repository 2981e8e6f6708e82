"""Training throughput for `faceedit bench`: steps per second of each phase, per preset.

The bench finds `section_training` through the entry point `training` in the group
`faceedit.bench_sections` (pyproject.toml), so the dependency runs trainer -> faceedit as
docs/architecture.md §2 draws it: faceedit never imports the trainer, and a faceedit without
the trainer reports the section as skipped. It sees the bench through the plug-in contract
(faceedit/bench_plugins.py) and times with faceedit/timing.py: the command line
(faceedit/commands) is not imported. The rows land in the report's `training` list, which the bench
prints as its "Training throughput" table and writes under the JSON key "training".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from faceedit.bench_plugins import SectionContext
from faceedit.model.config import ModelConfig, preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.grouped import LocalExecution
from faceedit.model.unified import UnifiedModel
from faceedit.timing import Timing, measure, measure_interleaved
from trainer.config import GanOptimConfig, LossWeights, NonFiniteCheck, ParserOptimConfig
from trainer.stages import steps
from trainer.stages.data_throughput import consumption, load_average, measure_data
from trainer.stages.distributed import DistInfo
from trainer.stages.nonfinite import NonFiniteGuard

# The preset whose sizes the data rows use (parser 256 px, crops 128 px).
DATA_PRESET = "paper-128"
# A whole GAN iteration as the gan stage runs it with n_critic 1: less than a discriminator
# step plus a generator step timed apart, which each make their own edit.
GAN_ITERATION = "GAN iteration (D + G, one edit)"
# The GAN iteration as it ran before issue 32 and with each of its options, on the issue's
# yardstick (world-64, batch 8): the local networks one after the other or grouped, on the whole
# crop or on their windows, the non-finite sum read on the host per phase or folded on the device.
VARIANT_PRESET: Final[str] = "world-64"
VARIANT_BATCH: Final[int] = 8
STEP_VARIANTS: Final[dict[str, tuple[LocalExecution, bool, NonFiniteCheck]]] = {
    "before: separate locals, whole crop, host check": ("separate", False, "immediate"),
    "grouped locals": ("grouped", False, "immediate"),
    "local windows": ("separate", True, "immediate"),
    "deferred check": ("separate", False, "deferred"),
    "grouped + windows + deferred": ("grouped", True, "deferred"),
}


def section_training(ctx: SectionContext) -> None:
    """Steps per second of each training phase for each preset (random data, random weights),
    the data loaders' samples per worker core, and what each model consumes."""
    section_training_data(ctx)
    s = ctx.settings
    # Training steps take seconds each: few repeats, and --quick leaves out the joint phase.
    repeats = 1 if s.quick else max(2, s.repeats // 4)
    for name in s.training_presets:
        results = measure_training(
            preset(name), ctx.device, s.train_batch, repeats, 1, joint=not s.quick
        )
        if name == DATA_PRESET:
            ctx.report.training_consumption.extend(
                consumption_rows(preset(name), ctx.device, results, s.train_batch)
            )
            differences = penalty_precision(preset(name), ctx.device, s.train_batch)
            ctx.report.notes.append(
                f"{name} on {ctx.dev}: bf16 autocast vs float32 on one fixed batch, relative "
                "difference of " + ", ".join(f"{k} {v:.2%}" for k, v in differences.items())
            )
        for step, timing in results.items():
            ctx.report.training.append(
                _training_row(name, ctx.dev, step, s.train_batch, timing, None)
            )
    if s.quick:
        ctx.report.notes.append("GAN iteration variants (issue 32) left out of --quick")
        return
    variants = gan_iteration_variants(
        preset(VARIANT_PRESET), ctx.device, VARIANT_BATCH, max(3, s.repeats // 2)
    )
    for variant, (timing, ops) in variants.items():
        row = _training_row(
            VARIANT_PRESET, ctx.dev, f"GAN iteration: {variant}", VARIANT_BATCH, timing, ops
        )
        ctx.report.training.append(row)


def _training_row(
    preset_name: str, dev: str, step: str, batch: int, timing: Timing, ops: int | None
) -> dict[str, Any]:
    return {
        "preset": preset_name,
        "device": dev,
        "step": step,
        "batch": batch,
        "ms": timing.to_dict(),
        "steps_per_s": round(1000 / timing.p50, 3),
        "images_per_s": round(1000 * batch / timing.p50, 2),
        "aten_ops": ops,
        "source": "trainer.stages.steps + Adam update",
    }


def section_training_data(ctx: SectionContext) -> None:
    """Samples per worker core from raw files and from shards (once per run: CPU work)."""
    if ctx.report.training_data:
        return
    ctx.report.training_data.extend(measure_data(quick=ctx.settings.quick))
    ctx.report.notes.append(
        f"training data measured at load average {load_average():.2f} "
        f"({ctx.report.machine.get('cpu_model', '?')}); rates are per CPU-second of one process"
    )


def measure_training(
    config: ModelConfig,
    device: torch.device,
    batch: int,
    repeats: int,
    warmup: int,
    joint: bool = True,
) -> dict[str, Timing]:
    """Time one optimiser step of each phase with the trainer's own step functions.

    parser: OHEM cross-entropy (stage 1). discriminator and generator: the GAN stage with the
    parser frozen. joint: the generator step with the parser trained too, plus its own loss.
    Each timed step is zero_grad, the step's losses, backward and an Adam update, on random
    images (speed does not depend on the data).
    """
    phases = phase_steps(config, device, batch, joint)
    return {name: measure(fn, device, repeats, warmup) for name, fn in phases.items()}


def gan_iteration_variants(
    config: ModelConfig, device: torch.device, batch: int, repeats: int, warmup: int = 1
) -> dict[str, tuple[Timing, int]]:
    """Each of STEP_VARIANTS' GAN iteration, timed in alternation so load changes hit all
    alike: its time and the ATen operators it dispatches (on a GPU about one kernel launch
    each)."""
    iterations = {
        name: phase_steps(
            config.replace(local_windows=windows),
            device,
            batch,
            joint=False,
            execution=execution,
            check=check,
        )[GAN_ITERATION]
        for name, (execution, windows, check) in STEP_VARIANTS.items()
    }
    ops = {name: count_ops(iteration) for name, iteration in iterations.items()}
    timings = measure_interleaved(iterations, device, repeats, warmup)
    return {name: (timings[name], ops[name]) for name in iterations}


def phase_steps(
    config: ModelConfig,
    device: torch.device,
    batch: int,
    joint: bool = True,
    execution: LocalExecution = "separate",
    check: NonFiniteCheck = "auto",
) -> dict[str, Callable[[], None]]:
    """One callable per training phase (see measure_training), on random data, with the local
    networks run as `execution` says and the non-finite check made as `check` says."""
    torch.manual_seed(0)
    weights, parser_settings = LossWeights(), ParserOptimConfig()
    frozen = UnifiedModel(config.replace(freeze_parser=True)).to(device).train()
    frozen.generator.set_local_execution(execution)
    unified = UnifiedModel(config.replace(freeze_parser=False)).to(device).train()
    disc = HierarchicalDiscriminator(config).set_local_execution(execution).to(device).train()
    betas = (0.5, 0.999)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=betas)
    opt_g = torch.optim.Adam(frozen.generator.parameters(), lr=1e-4, betas=betas)
    opt_joint = torch.optim.Adam(unified.parameters(), lr=1e-5, betas=betas)
    opt_parser = torch.optim.Adam(unified.parser.parameters(), lr=1e-3)

    rng = torch.Generator().manual_seed(0)
    res, size = config.parser.resolution, config.crop_size
    images = (torch.rand(batch, 3, size, size, generator=rng) * 2 - 1).to(device)
    labels = torch.randint(0, config.num_expressions, (batch,), generator=rng).to(device)
    no_va = torch.full((batch, 2), float("nan"), device=device)
    data = steps.expression_batch(images, labels, no_va, config)
    parser_images = (torch.rand(batch, 3, res, res, generator=rng) * 2 - 1).to(device)
    parser_labels = torch.randint(0, 19, (batch, res, res), generator=rng).to(device)

    # The non-finite check the stages make (TrainConfig.nonfinite_check; "auto" by default).
    guard = NonFiniteGuard(check, DistInfo(rank=0, world_size=1, local_rank=0, device=device))

    def update(optimiser: torch.optim.Optimizer, named: dict[str, Tensor]) -> None:
        guard.total(named, 0).backward()
        optimiser.step()

    def parser_step() -> None:
        opt_parser.zero_grad(set_to_none=True)
        update(
            opt_parser,
            steps.parser_step(unified.parser, parser_images, parser_labels, parser_settings),
        )

    def discriminator_step() -> None:
        steps.set_requires_grad(disc, True)
        opt_d.zero_grad(set_to_none=True)
        update(opt_d, steps.discriminator_step(frozen, disc, data, weights))

    def generator_step() -> None:
        steps.set_requires_grad(disc, False)
        opt_g.zero_grad(set_to_none=True)
        update(opt_g, steps.generator_step(frozen, disc, data, weights))

    def gan_iteration() -> None:
        # GanStage.train_step with the parser frozen and n_critic 1: one edit serves both
        # phases (steps.EditPass), the critics' update comes first
        edit = steps.edit_pass(frozen, data)
        steps.set_requires_grad(disc, True)
        opt_d.zero_grad(set_to_none=True)
        update(opt_d, steps.discriminator_step(frozen, disc, data, weights, edit=edit))
        steps.set_requires_grad(disc, False)
        opt_g.zero_grad(set_to_none=True)
        update(opt_g, steps.generator_step(frozen, disc, data, weights, edit=edit))

    def joint_step() -> None:
        steps.set_requires_grad(disc, False)
        opt_joint.zero_grad(set_to_none=True)
        named = steps.generator_step(unified, disc, data, weights)
        named.update(
            steps.parser_step(
                unified.parser,
                parser_images,
                parser_labels,
                parser_settings,
                weight=weights.parser_loss_weight,
            )
        )
        update(opt_joint, named)

    phases = {
        "parser": parser_step,
        "discriminator": discriminator_step,
        "generator (parser frozen)": generator_step,
        GAN_ITERATION: gan_iteration,
    }
    if joint:
        phases["joint generator + parser"] = joint_step
    return phases


class _DispatchCount(TorchDispatchMode):
    """Counts every ATen operator dispatched (each about one kernel launch on a GPU) and the
    FLOPs of those PyTorch's flop counter knows (convolutions, matrix products), double backward
    included: FlopCounterMode's module hooks refuse the gradient penalty's autograd.grad, a bare
    dispatch mode does not."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.flops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops += 1
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.flops += count(*args, **kwargs, out_val=out)
        return out


def _counted(fn: Callable[[], Any]) -> _DispatchCount:
    counter = _DispatchCount()
    with counter:
        fn()
    return counter


def count_ops(fn: Callable[[], Any]) -> int:
    """ATen operators of one call of a training step."""
    return _counted(fn).ops


def count_step_gflop(fn: Callable[[], Any]) -> float:
    """GFLOPs of one call of a training step (forward, backward, double backward)."""
    return _counted(fn).flops / 1e9


def penalty_precision(
    config: ModelConfig, device: torch.device, batch: int = 4
) -> dict[str, float]:
    """bf16 autocast against float32 for the gradient penalty on one fixed batch: relative
    differences of the critic's input-gradient norms, of the penalty, and of the critic's
    parameter gradient from the penalty's double backward.

    The random-weight critic's input gradients are tiny (the penalty sits near 1 whatever the
    precision), so the critic is first scaled to gradient norms near 1 by dividing its output,
    the regime training keeps it in. Autocast runs on `device` (CUDA, or the CPU's bf16).
    """
    torch.manual_seed(0)
    critic = HierarchicalDiscriminator(config).global_discriminator.to(device).train()
    rng = torch.Generator().manual_seed(1)
    size = config.crop_size
    x = (torch.rand(batch, 3, size, size, generator=rng) * 2 - 1).to(device)

    def run(bf16: bool, scale: float) -> tuple[Tensor, Tensor, Tensor]:
        critic.zero_grad(set_to_none=True)
        inputs = x.clone().requires_grad_(True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            scores = critic(inputs).patch
        values = scores.float().reshape(batch, -1).mean(1) / scale  # (B,)
        (grad,) = torch.autograd.grad(values.sum(), inputs, create_graph=True)
        norms = grad.float().flatten(1).norm(2, dim=1)
        penalty = ((norms - 1.0) ** 2).mean()
        penalty.backward()
        grads = torch.cat([p.grad.flatten() for p in critic.parameters() if p.grad is not None])
        return norms.detach(), penalty.detach(), grads

    scale = float(run(False, 1.0)[0].mean()) / 0.7  # gradient norms about 0.7
    norms, penalty, grads = run(False, scale)
    norms16, penalty16, grads16 = run(True, scale)

    def relative(a: Tensor, b: Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp_min(1e-12))

    return {
        "gradient norms": relative(norms16, norms),
        "penalty": relative(penalty16, penalty),
        "double-backward critic gradient": relative(grads16, grads),
    }


def consumption_rows(
    config: ModelConfig, device: torch.device, timings: dict[str, Timing], batch: int
) -> list[dict[str, Any]]:
    """What the parser and the GAN consume per second: measured here, estimated for an H100.

    FLOPs (forward and backward, convolutions and matrix products) are counted on one step of
    each phase; a GAN iteration is a discriminator step plus 1/n_critic of a generator step.
    """
    n_critic = GanOptimConfig().n_critic
    steps_ = phase_steps(config, torch.device("cpu"), 2, joint=False)
    flops = {name: count_step_gflop(fn) / 2 for name, fn in steps_.items()}
    gan_flop = flops["discriminator"] + flops["generator (parser frozen)"] / n_critic
    gan_ms = timings["discriminator"].p50 + timings["generator (parser frozen)"].p50 / n_critic
    return [
        consumption(
            f"parser at {config.parser.resolution} px",
            flops["parser"],
            1000 * batch / timings["parser"].p50,
            str(device),
        ),
        consumption(
            f"GAN iteration at {config.crop_size} px (n_critic {n_critic})",
            gan_flop,
            1000 * batch / gan_ms,
            str(device),
        ),
    ]
