"""Section `optimizations`: each inference optimisation against the same work without it."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

import torch
from torch import Tensor, nn

from faceedit.commands.bench.context import Context, cfg_crop
from faceedit.commands.bench.fixtures import (
    DTYPES,
    build_models,
    conditions,
    crops_tensor,
    reduced_precision,
)
from faceedit.commands.bench.report import Gain, round_or_none
from faceedit.faces.detect import FaceDetector
from faceedit.inference import optimize
from faceedit.model.config import GeneratorConfig, ModelConfig
from faceedit.model.generator import HierarchicalGenerator, InstanceNorm
from faceedit.model.unified import resize
from faceedit.timing import measure, measure_interleaved

LIGHT_LOCALS: Final[GeneratorConfig] = GeneratorConfig(base_channels=8, num_res_blocks=2)

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def record_gain(
    ctx: Context,
    name: str,
    before: Callable[[], Any],
    after: Callable[[], Any],
    note: str = "",
    *,
    same_output: bool = True,
    grad_before: bool = False,
    repeats: int | None = None,
) -> Gain:
    """Time the same work without (`before`) and with (`after`) one optimisation.

    same_output: whether both return the same tensor shape, so their difference is the
    optimisation's numerical error. grad_before: `before` runs with autograd on (the gain of
    inference_mode), so the two cannot share the inference_mode block and are not interleaved.
    """
    runs, warmup = repeats or ctx.reps(), ctx.settings.warmup
    diff = None
    if grad_before:
        with torch.inference_mode():
            t_after = measure(after, ctx.device, runs, warmup)
        t_before = measure(before, ctx.device, runs, warmup)
    else:
        with torch.inference_mode():
            timings = measure_interleaved({"b": before, "a": after}, ctx.device, runs, warmup)
            if same_output:
                diff = round_or_none(optimize.max_abs_difference(before, after, ()), 6)
        t_before, t_after = timings["b"], timings["a"]
    out = Gain(name, ctx.dev, t_before, t_after, diff, note)
    ctx.report.gains.append(out)
    return out


def torch_instance_norm(module: ModuleT) -> ModuleT:
    """A copy of `module` with each group-norm-kernel InstanceNorm made torch's InstanceNorm2d
    (same parameters): the "before" of the instance-norm rows."""
    target = copy_module(module)
    for parent in list(target.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, InstanceNorm):
                plain = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=True)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain.to(child.weight.device))
    return target


def section_optimizations(ctx: Context) -> None:
    """Each optimisation timed against the same work without it, with its numerical error."""
    device = ctx.device
    crop = cfg_crop(ctx)
    models = ctx.models_by_crop[crop]
    cfg = models.config
    x = crops_tensor(ctx.scene, crop, 1, device)
    cond = conditions(1, cfg.condition_dim, device)
    gen = models.loaded.generator
    assert gen is not None
    fast_gen = gen.to(device).eval()  # built with the group-norm instance norm
    gen = torch_instance_norm(fast_gen)  # the same networks with torch's own InstanceNorm2d
    eager = build_models(models.loaded, device, ("eager",)).variants["eager"]
    with torch.inference_mode():
        masks = eager.region_masks(x).masks
    first = next(iter(gen.local_generators))

    full = not ctx.settings.quick
    # 1. Autograd bookkeeping: what inference_mode saves on the generators.
    if full:
        record_gain(
            ctx,
            "inference_mode (hierarchy)",
            lambda: gen(x, masks, cond),
            lambda: gen(x, masks, cond),
            "before: autograd enabled, as a bare forward would run",
            grad_before=True,
        )
    # 2. InstanceNorm through the group-norm kernel (built into the generators, for training too):
    #    what it saves against torch's InstanceNorm2d.
    if full:
        record_gain(
            ctx,
            "fast instance norm (global generator)",
            lambda: gen.global_generator(x, cond),
            lambda: fast_gen.global_generator(x, cond),
        )
        record_gain(
            ctx,
            f"fast instance norm (local generator {first})",
            lambda: gen.local_generators[first](x, masks[:, :1], cond),
            lambda: fast_gen.local_generators[first](x, masks[:, :1], cond),
        )
    record_gain(
        ctx,
        "fast instance norm (hierarchy)",
        lambda: gen(x, masks, cond),
        lambda: fast_gen(x, masks, cond),
    )
    # 3. What does not pay or needs retraining (full runs only).
    if full:
        _secondary_generator_gains(ctx, fast_gen, x, masks, cond)
    # 4. Parser: BatchNorm folding, channels_last, a lower working resolution, aux heads.
    if models.loaded.parser is not None:
        _parser_gains(ctx, models.loaded.parser.to(device).eval(), cfg, x)
    # 5. Reduced precision: bfloat16 on CPU (AVX-512 BF16 where present), float16 on CUDA.
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    name = str(dtype).removeprefix("torch.")
    low = optimize.ReducedPrecision(fast_gen, dtype)
    record_gain(
        ctx,
        f"{name} weights (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        lambda: low(x, masks, cond),
        "max |diff| x 127.5 = grey levels",
    )
    # 6. Detection: a larger smallest face means fewer image-pyramid levels.
    big = FaceDetector(device="cuda" if device.type == "cuda" else "cpu", min_face_size=60)
    frame = ctx.scene.frame
    record_gain(
        ctx,
        f"MTCNN min_face_size {ctx.scene.detector.min_face_size} -> 60 (640x480)",
        lambda: ctx.scene.detector.detect(frame),
        lambda: big.detect(frame),
        "faces under 60 px are no longer found",
        same_output=False,
    )
    # 7. torch.compile with freezing: full runs only (it compiles for tens of seconds).
    if ctx.settings.compile:
        _compile_gain(ctx, fast_gen, x, masks, cond)


def _secondary_generator_gains(
    ctx: Context, fast_gen: nn.Module, x: Tensor, masks: Tensor, cond: Tensor
) -> None:
    """What does not pay (channels_last, autocast) or needs retraining (lighter locals)."""
    device, cfg = ctx.device, ctx.models_by_crop[cfg_crop(ctx)].config
    few = max(3, ctx.reps() // 3)  # for the cases expected to be slow
    # Generators in channels_last (measured to show that it does not pay).
    cl_gen = copy_module(fast_gen).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's Module.to stub omits memory_format
    x_cl = x.contiguous(memory_format=torch.channels_last)
    masks_cl = masks.contiguous(memory_format=torch.channels_last)
    record_gain(
        ctx,
        "channels_last (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        lambda: cl_gen(x_cl, masks_cl, cond),
        "no reliable gain in our runs: only the parsers use channels_last",
        repeats=few,
    )
    # Lighter local generators (a config change: a trained model would need retraining).
    light = HierarchicalGenerator(cfg.replace(local_generator=LIGHT_LOCALS)).to(device)
    record_gain(
        ctx,
        f"lighter locals ({LIGHT_LOCALS.base_channels} ch, {LIGHT_LOCALS.num_res_blocks} blocks)",
        lambda: fast_gen(x, masks, cond),
        lambda: light(x, masks, cond),
        "changes the architecture: needs retraining",
        same_output=False,
    )
    # Reduced precision through autocast, which converts the weights on every call.
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16

    def autocast() -> Any:
        with torch.autocast(device.type, dtype=dtype):
            return fast_gen(x, masks, cond)

    record_gain(
        ctx,
        f"{str(dtype).removeprefix('torch.')} autocast (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        autocast,
        repeats=few,
    )


def _parser_gains(ctx: Context, parser: nn.Module, cfg: ModelConfig, x: Tensor) -> None:
    res = cfg.parser.resolution
    p_in = resize(x, res)
    folded = optimize.optimize_parser(parser, ctx.device, channels_last=False)
    fast = optimize.optimize_parser(parser, ctx.device, channels_last=True)
    record_gain(ctx, f"fold BatchNorm (parser @{res})", lambda: parser(p_in), lambda: folded(p_in))
    record_gain(
        ctx,
        f"channels_last (folded parser @{res})",
        lambda: folded(p_in),
        lambda: fast(p_in),
    )
    low = res // 2
    if low >= 32 and low % 32 == 0:
        low_in = resize(x, low)
        record_gain(
            ctx,
            f"parser at {low} instead of {res} (optimised)",
            lambda: fast(p_in),
            lambda: fast(low_in),
            "coarser masks: check parse quality before adopting",
            same_output=False,
        )
    for variant in reduced_precision(ctx.device):
        low_precision = optimize.ReducedPrecision(fast, DTYPES[variant])
        record_gain(
            ctx,
            f"{variant} weights (optimised parser @{res})",
            lambda: fast(p_in),
            functools.partial(low_precision, p_in),
            "max |diff| is in logits",
        )
    with_aux = copy_with_aux_heads(parser)
    if with_aux is not None and not ctx.settings.quick:
        pair = p_in.repeat(2, 1, 1, 1)  # BiSeNet refuses single images in training mode
        record_gain(
            ctx,
            f"skip aux heads in eval (parser @{res}, batch 2)",
            lambda: with_aux(pair),
            lambda: parser(pair),
            "BiSeNet's eval forward already skips them: this is what that saves",
        )


def _compile_gain(
    ctx: Context, fast_gen: nn.Module, x: Tensor, masks: Tensor, cond: Tensor
) -> None:
    compiled = optimize.compile_frozen(copy_module(fast_gen))
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            compiled(x, masks, cond)
    except Exception as error:  # no C++ compiler, an unsupported op: report it and go on
        ctx.report.notes.append(
            f"torch.compile failed on {ctx.dev}: {type(error).__name__}: {error}"
        )
        return
    seconds = time.perf_counter() - started
    record_gain(
        ctx,
        "torch.compile freezing (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        lambda: compiled(x, masks, cond),
        f"the first call (compilation) took {seconds:.1f} s",
    )


def copy_module(module: ModuleT) -> ModuleT:
    return copy.deepcopy(module).eval()


def copy_with_aux_heads(parser: nn.Module) -> nn.Module | None:
    """A parser copy that computes its auxiliary heads (training-mode forward) with eval BN."""
    if not any(name.startswith("conv_out16") for name, _ in parser.named_children()):
        return None
    with_aux = copy_module(parser).train()
    for module in with_aux.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return with_aux
