"""Inference-speed transforms for loaded networks, each measured by `faceedit bench`.

Every function returns an eval-only copy (or wrapper) and leaves the trained module untouched,
so a checkpoint is always saved from the original. All but `ReducedPrecision` and
`with_parser_resolution` are exact up to float32 rounding: they change how the arithmetic is
scheduled, never what is computed. Measured gains are in docs/performance.md; in short, on a
2-core Zen 4 CPU at 128 px:
- (Instance norm through the group-norm kernel, -8 % on the hierarchical generator here, is no
  longer a load-time transform: the generators are built with it, so training gains it too;
  `faceedit.model.generator.InstanceNorm`.)
- `optimize_parser`: BatchNorm folded into the convolutions, plus channels_last memory, which
  oneDNN runs a little faster for the ResNet-style parsers: about -4 % on BiSeNet at 256, -8 %
  at 512. (The generators showed no reliable gain from channels_last, so the parser hands
  contiguous logits back: see ChannelsLastParser.)
- `ReducedPrecision`: bfloat16 weights and activations where the CPU has AVX-512 BF16 (twice the
  float32 matmul peak here), float16 on CUDA; -40 % on both networks, outputs within a few
  grey levels. Not exact, so a caller chooses it (previews, not exports).
- `compile_frozen`: torch.compile with inductor freezing, -7 % (float32) to -12 % (bfloat16)
  after a first call of 6-50 s: an app should compile in the background
  (`BackgroundCompiler`) and swap the compiled module in when it is ready. The app compiles
  in a child process instead (`compile_process`: the same inductor freezing, ahead of time),
  because the compiler held Python's lock in its thread for up to 0.37 s at a time.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from typing import Any, Final, Literal

import torch
from torch import Tensor, nn

from faceedit.model.parser_blocks import ParserOutput
from faceedit.model.parsing import PARSERS, fold_batchnorm
from faceedit.weights.checkpoint import LoadedCheckpoint

logger = logging.getLogger(__name__)

PARSER_TYPES: Final[tuple[type[nn.Module], ...]] = tuple(PARSERS.values())


# --- parsers -----------------------------------------------------------------------------------


class ChannelsLastParser(nn.Module):
    """Runs a parser in channels_last memory and hands back ordinary (contiguous) logits.

    Converting the logits back keeps the layout change local: channels_last would otherwise
    spread to every tensor computed from the logits, into the generators, where it measured no
    reliable gain (0.97-1.09x over four runs).
    """

    def __init__(self, parser: nn.Module) -> None:
        super().__init__()
        # Named `module` so checkpoint._unwrap sees through the wrapper.
        self.module = parser.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's Module.to stub omits memory_format
        self.config = getattr(parser, "config", None)

    def forward(self, x: Tensor) -> ParserOutput:
        out = self.module(x.contiguous(memory_format=torch.channels_last))
        return ParserOutput(out.logits.contiguous(), tuple(aux.contiguous() for aux in out.aux))


def optimize_parser(
    parser: nn.Module,
    device: torch.device | str = "cpu",
    channels_last: bool = True,
    fold: bool = True,
) -> nn.Module:
    """An eval-only parser with BatchNorm folded and (by default) channels_last memory.

    channels_last was measured a little faster on CPU (oneDNN); NHWC is also the layout
    cuDNN prefers, though that was not measured here.
    """
    device = torch.device(device)
    out = fold_batchnorm(parser) if fold else copy.deepcopy(parser).eval()
    out = out.to(device).requires_grad_(False)
    return ChannelsLastParser(out).eval() if channels_last else out


def is_parser(module: nn.Module) -> bool:
    """True for a faceedit parser (BiSeNet, UNet) or a wrapper around one."""
    return isinstance(module, (*PARSER_TYPES, ChannelsLastParser))


# --- reduced precision -------------------------------------------------------------------------

Precision = Literal["float32", "bfloat16", "float16"]
PrecisionChoice = Literal["auto", "float32", "bfloat16", "float16"]
PRECISION_CHOICES: Final[tuple[str, ...]] = ("auto", "float32", "bfloat16", "float16")
_DTYPES: Final[dict[str, torch.dtype]] = {
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


class ReducedPrecision(nn.Module):
    """Runs a network in bfloat16 or float16 and hands back float32, so callers see no change.

    On CPUs with AVX-512 BF16 (or AMX) oneDNN's bfloat16 convolutions do twice the work per
    cycle; on GPUs half precision uses the tensor cores. Weights are converted once here (not on
    every call, as autocast would). Normalisation layers accumulate in float32 internally.
    Plain attributes the callers read (`config`, `regions`, ...) are passed through.
    """

    PASSED_ATTRIBUTES: Final[tuple[str, ...]] = ("config", "regions", "condition_dim", "crop_size")

    def __init__(self, module: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        if dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"ReducedPrecision needs bfloat16 or float16, got {dtype}")
        self.dtype = dtype
        self.module = copy.deepcopy(module).to(dtype).eval()
        for name in self.PASSED_ATTRIBUTES:
            if hasattr(module, name) and not isinstance(getattr(module, name), nn.Module):
                setattr(self, name, getattr(module, name))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_cast(a, self.dtype) for a in args)
        kwargs = {k: _cast(v, self.dtype) for k, v in kwargs.items()}
        return _cast(self.module(*args, **kwargs), torch.float32)


def _cast(value: Any, dtype: torch.dtype) -> Any:
    """Floating tensors (also inside tuples, NamedTuples, lists and dicts) converted to dtype."""
    if isinstance(value, Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*(_cast(v, dtype) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_cast(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


def bf16_is_fast(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 arithmetic has hardware support on `device` (else it is slower).

    On CPU that means the AVX-512 BF16 or AMX instructions, read from /proc/cpuinfo (Linux);
    oneDNN runs bfloat16 on any AVX-512 CPU, but without them it only emulates it, slowly.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return False
    has_bf16 = {"avx512_bf16", "amx_bf16"} & set(flags.split())
    return bool(has_bf16) and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(choice: PrecisionChoice | str, device: torch.device | str) -> Precision:
    """The precision a network actually runs in on `device` for the user's `choice`.

    "auto" is bfloat16 where the hardware does it natively (about twice the float32 rate, within
    a few grey levels) and float32 elsewhere: emulated bfloat16 is slower than float32, and
    float16 on GPUs without bfloat16 risks overflow in untested checkpoints, so auto never
    picks it. An explicit choice is honoured as given.
    """
    if choice not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {choice!r}")
    if choice != "auto":
        return choice  # type: ignore[return-value]  # checked against PRECISION_CHOICES above
    return "bfloat16" if bf16_is_fast(device) else "float32"


# --- whole models ------------------------------------------------------------------------------


def optimize_for_inference(
    model: nn.Module,
    device: torch.device | str = "cpu",
    parser_channels_last: bool = True,
) -> nn.Module:
    """An eval-only copy of `model` (a parser, a generator or the unified model) made fast.

    Parsers found anywhere inside get `optimize_parser`. Generators keep the default memory
    layout (see ChannelsLastParser) and are already built with the fast instance norm.
    """
    device = torch.device(device)
    if is_parser(model):
        return optimize_parser(model, device, parser_channels_last)
    target = copy.deepcopy(model).eval().to(device)
    for parent in list(target.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, PARSER_TYPES):
                setattr(parent, name, optimize_parser(child, device, parser_channels_last))
    return target.requires_grad_(False)


def optimize_checkpoint(
    loaded: LoadedCheckpoint,
    device: torch.device | str = "cpu",
    precision: Precision = "float32",
) -> LoadedCheckpoint:
    """The same checkpoint with its parser and generator replaced by fast eval-only copies.

    This is the one call an engine needs: `EditEngine(optimize_checkpoint(loaded, device))`.
    precision "bfloat16"/"float16" also runs both networks in that type (outputs stay
    float32): about twice as fast where the hardware supports it, within a few grey levels of
    float32. The discriminator (only used for scores) is left as it is.
    """
    device = torch.device(device)
    parser: nn.Module | None = (
        None if loaded.parser is None else optimize_parser(loaded.parser, device)
    )
    generator: nn.Module | None = (
        None
        if loaded.generator is None
        else copy.deepcopy(loaded.generator).eval().to(device).requires_grad_(False)
    )
    if precision != "float32":
        dtype = _DTYPES[precision]
        parser = None if parser is None else ReducedPrecision(parser, dtype)
        generator = None if generator is None else ReducedPrecision(generator, dtype)
    # ReducedPrecision stands in for the generator: same call signature and attributes.
    return dataclasses.replace(loaded, parser=parser, generator=generator)  # type: ignore[arg-type]  # see above


def with_parser_resolution(loaded: LoadedCheckpoint, resolution: int) -> LoadedCheckpoint:
    """The checkpoint with its parser run at another working resolution (a speed/quality trade).

    The parser is fully convolutional, so it runs at any multiple of its size divisor; the
    masks get coarser below the resolution it was trained at. ConfigError for an invalid size.
    """
    parser_config = dataclasses.replace(loaded.config.parser, resolution=resolution)
    return dataclasses.replace(loaded, config=loaded.config.replace(parser=parser_config))


# --- torch.compile -----------------------------------------------------------------------------


def compile_frozen(module: nn.Module, dynamic: bool = False) -> Callable[..., Any]:
    """torch.compile with inductor freezing: parameters become constants folded into the graph.

    Freezing needs the module in eval mode and calls under torch.no_grad/inference_mode; the
    first call compiles (tens of seconds on a laptop CPU), later calls with the same shapes
    are fast. A new input shape recompiles, hence dynamic=False for the app's fixed sizes.
    """
    module.eval().requires_grad_(False)
    return torch.compile(module, dynamic=dynamic, options={"freezing": True})


class BackgroundCompiler:
    """Compiles a module in a daemon thread; `current()` is the eager module until it is ready.

    This lets an app open at once with eager networks and switch to compiled ones a few
    seconds later, without ever blocking a slider move on the compiler. `warmup` is called
    with the compiled callable to trigger compilation (e.g. one forward at the app's sizes).
    """

    def __init__(
        self,
        module: nn.Module,
        warmup: Callable[[Callable[..., Any]], Any],
        compile_fn: Callable[[nn.Module], Callable[..., Any]] | None = None,
        after: BackgroundCompiler | None = None,
        build: Callable[[], Callable[..., Any]] | None = None,
    ) -> None:
        """`after`: another compiler to wait for first, so two compiles never share the cores.
        `build`: makes the compiled callable some other way (compile_process: in a child
        process); called in the thread instead of compile_fn and warmup."""
        compile_fn = compile_fn or compile_frozen
        self._build = build
        self.eager = module
        self._compiled: Callable[..., Any] | None = None
        self.error: BaseException | None = None
        self.compile_seconds: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(warmup, compile_fn, after), name="faceedit-compile", daemon=True
        )
        self._thread.start()

    def _run(
        self,
        warmup: Callable[[Callable[..., Any]], Any],
        compile_fn: Callable[[nn.Module], Callable[..., Any]],
        after: BackgroundCompiler | None,
    ) -> None:
        if after is not None:
            after.wait()
        started = time.perf_counter()
        try:
            if self._build is not None:
                compiled = self._build()
            else:
                # A private copy: the caller keeps running the eager module meanwhile.
                compiled = compile_fn(copy.deepcopy(self.eager))
                with torch.inference_mode():
                    warmup(compiled)
            self._compiled = compiled
            self.compile_seconds = time.perf_counter() - started
        except CancelledError as error:  # the engine was replaced: nothing to tell the user
            logger.debug("background compilation cancelled")
            self.error = error
        except Exception as error:  # a failed compile leaves the eager module in use
            logger.warning("background compilation failed; staying eager: %s", error)
            self.error = error
        finally:
            self._done.set()

    @property
    def ready(self) -> bool:
        return self._compiled is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until compilation finished (or failed); True when the compiled module is in use."""
        self._done.wait(timeout)
        return self.ready

    @property
    def done(self) -> bool:
        """True once compilation finished, whether it succeeded or failed."""
        return self._done.is_set()

    def current(self) -> Callable[..., Any]:
        """The compiled module when ready, else the eager one."""
        return self._compiled if self._compiled is not None else self.eager


def call_signature(args: Sequence[Any]) -> tuple[Any, ...]:
    """What a dynamic=False compiled graph is specialised on: each tensor's shape, strides,
    dtype and device, and the plain values (None, flags) of the other arguments."""
    return tuple(
        (tuple(a.shape), a.stride(), a.dtype, a.device)
        if isinstance(a, Tensor)
        else (type(a), a if isinstance(a, (bool, int, float, str, type(None))) else id(a))
        for a in args
    )


class CompiledWhenReady(nn.Module):
    """A network that runs eagerly until its background compile is ready, then compiled.

    The compiled copy only serves calls shaped like the warm-up call: any other shape (a
    per-region condition, a region lock, another crop size) runs eagerly, because it would
    otherwise trigger a recompile of tens of seconds on the caller's thread, which is exactly
    the stall background compilation exists to avoid.
    """

    def __init__(
        self,
        module: nn.Module,
        example_args: Sequence[Any],
        compile_fn: Callable[[nn.Module], Callable[..., Any]] | None = None,
        after: BackgroundCompiler | None = None,
        build: Callable[[], Callable[..., Any]] | None = None,
    ) -> None:
        super().__init__()
        self.module = module  # named `module` like the other wrappers here
        self.signature = call_signature(example_args)
        example = tuple(example_args)
        self.compiler = BackgroundCompiler(
            module, warmup=lambda fn: fn(*example), compile_fn=compile_fn, after=after, build=build
        )
        self.compiled_calls = 0

    def forward(self, *args: Any) -> Any:
        if self.compiler.ready and call_signature(args) == self.signature:
            self.compiled_calls += 1
            return self.compiler.current()(*args)
        return self.module(*args)


# --- helpers used by the benchmark -------------------------------------------------------------


def max_abs_difference(
    reference: Callable[..., Any], candidate: Callable[..., Any], inputs: Sequence[Any]
) -> float:
    """Largest absolute difference between two callables' first tensor outputs on `inputs`."""
    with torch.inference_mode():
        a, b = _first_tensor(reference(*inputs)), _first_tensor(candidate(*inputs))
    return float((a.float() - b.float()).abs().max())


def _first_tensor(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value:
        return _first_tensor(value[0])
    raise TypeError(f"expected a tensor or a tuple starting with one, got {type(value).__name__}")
