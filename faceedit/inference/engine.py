"""EditEngine: the Qt-free inference API used by the app, the `edit` command and the benchmark.

It owns the networks and the device, takes uint8 RGB crops and returns numpy arrays. The parses
of the last few crops are cached, so moving a slider re-runs only the generators
(docs/architecture.md §3).

Networks are made fast at load (faceedit.inference.optimize: BatchNorm folded, fast instance norm, and
bfloat16 where the hardware runs it natively when precision is "auto"), and can be compiled in
the background once the first frame is on screen (`start_background_compile`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceedit.device import DeviceChoice, resolve_device
from faceedit.errors import FaceEditError, InputError
from faceedit.faces.align import template_landmarks
from faceedit.inference import compile_process, optimize
from faceedit.inference.optimize import CompiledWhenReady, Precision, PrecisionChoice
from faceedit.inference.outputs import (
    EditResult,
    Parsing,
    in_edit_area,
    parsing_arrays,
    paste_maps,
    to_uint8,
)
from faceedit.inference.request import Capabilities, CompileStatus
from faceedit.model.config import ModelConfig
from faceedit.model.unified import UnifiedModel, resize
from faceedit.vocab.expressions import EXPRESSIONS, condition_vector
from faceedit.vocab.labels import NUM_CLASSES, REGION_NAMES
from faceedit.weights import checkpoint as checkpoint_io

ConditionLike = Mapping[str, float] | Sequence[float] | np.ndarray

PARSE_CACHE_SIZE: Final[int] = 4
HOW_TO_GET_A_MODEL: Final[str] = (
    "train one with 'faceedit-train' (parser, gan, joint stages) or import the community "
    "face parser with 'faceedit import-parser 79999_iter.pth parser.safetensors'"
)


class EditEngine:
    """Parse and edit aligned face crops with a loaded checkpoint (or none: then it says so).

    precision: "float32" (exact; exports), "auto" (bfloat16 where the hardware runs it natively,
    else float32: previews) or an explicit "bfloat16"/"float16". optimize_networks=False runs the
    networks exactly as loaded (the benchmark's "eager" baseline); it allows float32 only.
    """

    def __init__(
        self,
        loaded: checkpoint_io.LoadedCheckpoint | None,
        device: DeviceChoice | str | torch.device = "auto",
        precision: PrecisionChoice = "float32",
        optimize_networks: bool = True,
    ) -> None:
        self.device = resolve_device(device)
        self.precision: Precision = optimize.resolve_precision(precision, self.device)
        if not optimize_networks and self.precision != "float32":
            raise ValueError("reduced precision needs optimize_networks=True")
        self.checkpoint = loaded
        self.config: ModelConfig | None = loaded.config if loaded else None
        running = loaded
        if loaded is not None and optimize_networks:
            running = optimize.optimize_checkpoint(loaded, self.device, self.precision)
        self._model: UnifiedModel | None = None
        self._parser = running.parser if running else None
        self._discriminator = running.discriminator if running else None
        if running is not None and running.generator is not None:
            try:
                self._model = running.unified()
            except FaceEditError:
                self._model = None
        self._compiling: tuple[CompiledWhenReady, ...] = ()
        self._child: compile_process.ChildCompile | None = None
        for module in (self._model, self._parser, self._discriminator):
            if module is not None:
                module.to(self.device).eval()
        # A few recent parses, newest last: the app parses the input crop and, to score it, the
        # edited one, and a slider move must still find the input's parse.
        self._parse_cache: OrderedDict[bytes, tuple[torch.Tensor, torch.Tensor, Parsing | None]] = (
            OrderedDict()
        )
        self.capabilities = self._capabilities()

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        device: DeviceChoice | str | torch.device = "auto",
        precision: PrecisionChoice = "float32",
    ) -> EditEngine:
        """Load a checkpoint file; CheckpointError explains what is wrong with a bad one."""
        return cls(checkpoint_io.load(path, device="cpu"), device, precision)

    @classmethod
    def empty(cls, device: DeviceChoice | str = "auto") -> EditEngine:
        """An engine without a model: detection and alignment still work around it."""
        return cls(None, device)

    # ---- background compilation ----------------------------------------------------------

    def compile_examples(self) -> list[tuple[str, nn.Module, tuple[Any, ...]]]:
        """What background compilation compiles: the generator for a plain slider edit of one
        face, then (mask-region models) the parser, each with the call it is compiled for.

        The compiling child (compile_process) builds the same list from the same file.
        """
        model = self._model
        if model is None or not self.capabilities.can_edit:
            return []
        size = self.crop_size
        with torch.inference_mode():
            x = self._to_tensor(np.zeros((size, size, 3), np.uint8))
            masks = self._parsed(np.zeros((size, size, 3), np.uint8))[1]
            condition = self._condition_tensor({}, None, None)
            examples: list[tuple[str, nn.Module, tuple[Any, ...]]] = [
                ("generator", model.generator, (x, masks, condition, None))
            ]
            if self.config is not None and self.config.region_source == "masks":
                examples.append(
                    ("parser", model.parser, (resize(x, self.config.parser.resolution),))
                )
        return examples

    def start_background_compile(
        self, compile_fn: Callable[[nn.Module], Callable[..., Any]] | None = None
    ) -> bool:
        """Compile the generator, then the parser, in the background (docs/architecture.md §3).

        By default a child process compiles them ahead of time (compile_process), so the
        compiler never holds this process's interpreter lock; compile_fn instead compiles in a
        thread of this process (tests, tools). Edits keep running eagerly meanwhile and switch
        to the compiled networks, one by one, when each is ready; only calls shaped like a
        plain slider edit of one face (no per-region targets, no region lock) use them, so
        nothing ever waits for a recompile. False when there is nothing to compile or it was
        started already.
        """
        model = self._model
        if model is None or self._compiling:
            return False
        examples = self.compile_examples()
        if not examples:
            return False
        if compile_fn is None and os.name != "posix":
            compile_fn = optimize.compile_frozen  # the child needs POSIX process groups
        child = None
        if compile_fn is None:
            loaded = self.checkpoint
            assert loaded is not None
            job = compile_process.new_job(
                loaded.path, loaded.header.get("tensor_sha256"), str(self.device), self.precision
            )
            if not _file_holds(loaded):
                # Networks made in memory, or a config changed after loading (the benchmark's
                # random weights, its other parser resolutions): the child reads a copy
                # written in the job's private folder.
                copy = checkpoint_io.save(
                    Path(job.folder) / "model.safetensors",
                    loaded.config,
                    parser=loaded.parser,
                    generator=loaded.generator,
                )
                job = dataclasses.replace(job, checkpoint=str(copy), tensor_sha256=None)
            child = compile_process.ChildCompile(job, [name for name, _, _ in examples])
            self._child = child
        # Reduced precision's own rounding differs between the eager and compiled schedules.
        tolerance = 1e-3 if self.precision == "float32" else 0.1
        wrappers: list[CompiledWhenReady] = []
        for name, module, args in examples:
            build = None
            if child is not None:
                last = name == examples[-1][0]
                build = functools.partial(
                    _load_compiled, child, name, str(self.device), module, args, tolerance, last
                )
            after = wrappers[-1].compiler if wrappers else None
            wrapper = CompiledWhenReady(
                module, args, compile_fn=compile_fn, after=after, build=build
            )
            setattr(model, name, wrapper)  # a stand-in with the network's call signature
            wrappers.append(wrapper)
        self._compiling = tuple(wrappers)
        return True

    def stop_background_compile(self) -> None:
        """End a compiling child process now (this engine is being replaced)."""
        if self._child is not None:
            self._child.cancel()

    @property
    def compile_status(self) -> CompileStatus:
        """off (never started), compiling, ready (all compiled networks in use) or failed."""
        if not self._compiling:
            return CompileStatus("off")
        compilers = [wrapper.compiler for wrapper in self._compiling]
        if not all(c.done for c in compilers):
            return CompileStatus("compiling", "Compiling the networks in the background…")
        failed = [c.error for c in compilers if c.error is not None]
        if failed:
            return CompileStatus(
                "failed", f"Compilation failed, the networks stay uncompiled: {failed[0]}"
            )
        seconds = sum(c.compile_seconds or 0.0 for c in compilers)
        return CompileStatus(
            "ready", f"Compiled networks in use (compiled in {seconds:.0f} s).", seconds
        )

    def wait_for_compile(self, timeout: float | None = None) -> CompileStatus:
        """Block until every background compile has finished (tools, tests; never the app)."""
        for wrapper in self._compiling:
            wrapper.compiler.wait(timeout)
        return self.compile_status

    # ---- what is available -------------------------------------------------------------

    @property
    def crop_size(self) -> int:
        return self.config.crop_size if self.config else 128

    @property
    def regions(self) -> tuple[str, ...]:
        return self.config.regions if self.config else REGION_NAMES

    @property
    def expressions(self) -> tuple[str, ...]:
        return EXPRESSIONS

    def _capabilities(self) -> Capabilities:
        cfg = self.config
        uses_boxes = cfg is not None and cfg.region_source == "boxes"
        can_parse = self._parser is not None
        can_edit = self._model is not None and (can_parse or uses_boxes)
        can_score = self._discriminator is not None
        missing = []
        if cfg is None:
            missing.append(
                f"No model is loaded, so faces are found and aligned but not parsed or edited: {HOW_TO_GET_A_MODEL}."
            )
        else:
            if not can_parse:
                missing.append(
                    f"This checkpoint holds no face parser (no segmentation overlay): {HOW_TO_GET_A_MODEL}."
                )
            if not can_edit:
                missing.append(
                    "This checkpoint holds no expression generator (editing is off): train one with "
                    "'faceedit-train gan' and 'faceedit-train joint'."
                )
        return Capabilities(
            can_parse, can_edit, can_score, bool(cfg and cfg.valence_arousal), tuple(missing)
        )

    def _require(self, what: Literal["parse", "edit", "score"]) -> None:
        caps = self.capabilities
        ok = {
            "parse": caps.can_parse,
            "edit": caps.can_edit,
            "score": caps.can_score,
        }[what]
        if not ok:
            raise FaceEditError(" ".join(caps.missing) or f"the loaded model cannot {what}")

    # ---- inference -----------------------------------------------------------------------

    @torch.inference_mode()
    def parse(self, crop: np.ndarray) -> Parsing:
        """Per-class probabilities, label map and region masks of one crop (cached by content)."""
        self._require("parse")
        parsing = self._parsed(crop)[2]
        assert parsing is not None  # can_parse means a parser is loaded
        return parsing

    @torch.inference_mode()
    def edit(
        self,
        crop: np.ndarray,
        condition: ConditionLike,
        region_conditions: Mapping[str, ConditionLike] | None = None,
        editable_regions: Iterable[str] | None = None,
        valence_arousal: tuple[float, float] | None = None,
        landmarks: np.ndarray | None = None,
        region_masks: np.ndarray | None = None,
    ) -> EditResult:
        """Edit one crop towards `condition` (expression name -> weight, or an 8-vector).

        `region_conditions` gives some regions their own target (a happy mouth with surprised
        eyes); `editable_regions` locks every other region to the input. `landmarks` (5, 2) in
        crop pixels are needed only by models trained with keypoint-box regions.
        `region_masks` (K, H, W) from an earlier parse of the same, tracked face skip the parse
        (video between detections).
        """
        self._require("edit")
        assert self._model is not None
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if region_masks is None:
            x, masks, _ = self._parsed(crop, landmarks, timings)
        else:
            x, masks = self._to_tensor(crop), self._masks_tensor(region_masks)
            timings["parse"] = 0.0
        cond = self._condition_tensor(condition, region_conditions, valence_arousal)
        editable = self._editable_tensor(editable_regions)
        started = time.perf_counter()
        out = self._model.generate(x, masks, cond, editable)
        image = out.image
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        timings["generate"] = (time.perf_counter() - started) * 1000
        weights, lock = in_edit_area(
            self.config, *paste_maps(out.attention, masks, editable, crop.shape[:2], self.regions)
        )
        result = EditResult(
            crop=to_uint8(image[0], crop.shape[:2]),
            region_masks=masks[0].float().cpu().numpy(),
            attention=out.attention[0, :, 0].float().cpu().numpy(),
            timings=timings,
            weight=weights[0],
            lock=None if lock is None else lock[0],
        )
        timings["total"] = (time.perf_counter() - start) * 1000
        return result

    @torch.inference_mode()
    def edit_batch(
        self,
        crops: Sequence[np.ndarray],
        condition: ConditionLike,
        region_conditions: Mapping[str, ConditionLike] | None = None,
        editable_regions: Iterable[str] | None = None,
        valence_arousal: tuple[float, float] | None = None,
        landmarks: Sequence[np.ndarray] | None = None,
    ) -> list[EditResult]:
        """Edit many crops in one forward pass (headless CLI, benchmark); no parse cache.

        `landmarks`, one (5, 2) array in crop pixels per crop, are read only by keypoint-box
        models; without them such a model gets the alignment template's points.
        """
        self._require("edit")
        assert self._model is not None
        if not crops:
            return []
        start = time.perf_counter()
        x = torch.cat([self._to_tensor(c) for c in crops])
        points = None
        if self.config is not None and self.config.region_source == "boxes":
            points = self._batch_landmarks(crops, landmarks)
        masks, _, _ = self._model.region_masks(x, points)
        parsed = time.perf_counter()
        cond = self._condition_tensor(condition, region_conditions, valence_arousal)
        cond = cond.expand(x.shape[0], *cond.shape[1:])
        editable = self._editable_tensor(editable_regions)
        out = self._model.generate(x, masks, cond, editable)
        done = time.perf_counter()
        timings = {
            "parse": (parsed - start) * 1000 / len(crops),
            "generate": (done - parsed) * 1000 / len(crops),
        }
        results = []
        for i, crop in enumerate(crops):
            maps = paste_maps(
                out.attention[i : i + 1], masks[i : i + 1], editable, crop.shape[:2], self.regions
            )
            weights, lock = in_edit_area(self.config, *maps)
            results.append(
                EditResult(
                    crop=to_uint8(out.image[i], crop.shape[:2]),
                    region_masks=masks[i].float().cpu().numpy(),
                    attention=out.attention[i, :, 0].float().cpu().numpy(),
                    timings=dict(timings),
                    weight=weights[0],
                    lock=None if lock is None else lock[0],
                )
            )
        return results

    @torch.inference_mode()
    def expression_scores(self, crop: np.ndarray) -> np.ndarray | None:
        """Softmax over the 8 expressions from the discriminator's classification head, or None."""
        if self._discriminator is None:
            return None
        x = self._to_tensor(crop)
        masks = (
            self._parsed(crop)[1]
            if self.capabilities.can_parse
            else torch.zeros(1, len(self.regions), *x.shape[-2:], device=self.device)
        )
        logits = self._discriminator(x, masks).global_.logits[0, : len(EXPRESSIONS)]
        return torch.softmax(logits.float(), dim=0).cpu().numpy()

    def clear_cache(self) -> None:
        """Forget the recent parses, so the next `parse` runs the parser again (a cold parse)."""
        self._parse_cache.clear()

    # ---- helpers -------------------------------------------------------------------------

    def _to_tensor(self, crop: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (1, 3, S, S) float in [-1, 1] on the device, at crop size S."""
        if (
            not isinstance(crop, np.ndarray)
            or crop.ndim != 3
            or crop.shape[2] != 3
            or crop.dtype != np.uint8
        ):
            shape = getattr(crop, "shape", None)
            raise InputError(
                f"a face crop must be an (H, W, 3) uint8 RGB array, got {shape} {getattr(crop, 'dtype', '')}"
            )
        # A caller's read-only array (a memory map, a frozen frame) is copied: torch shares the
        # buffer and warns that it cannot guard it.
        x = (
            torch.from_numpy(np.require(crop, requirements=["C_CONTIGUOUS", "WRITEABLE"]))
            .to(self.device)
            .permute(2, 0, 1)[None]
            .float()
        )
        # Contiguous (NCHW) like every other tensor the networks see: the compiled graphs are
        # specialised on strides, and the generators measured no gain from channels_last.
        x = (x / 127.5 - 1.0).contiguous()
        size = self.crop_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        return x

    def _batch_landmarks(
        self, crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray] | None
    ) -> torch.Tensor:
        """(B, 5, 2) keypoints at the model's crop size: the given ones, scaled from each crop's
        own size, or the template's."""
        size = self.crop_size
        if landmarks is None:
            points = [template_landmarks(size)] * len(crops)
        else:
            if len(landmarks) != len(crops):
                raise InputError(
                    f"give one (5, 2) landmark array per crop: {len(crops)} crops, "
                    f"{len(landmarks)} landmark arrays"
                )
            points = []
            for crop, marks in zip(crops, landmarks, strict=True):
                array = np.asarray(marks, dtype=np.float64)
                if array.shape != (5, 2) or not np.isfinite(array).all():
                    raise InputError(f"landmarks must be finite (5, 2) arrays, got {array.shape}")
                scale = size / crop.shape[1]  # pixel centres at integers, as align's
                points.append((array + 0.5) * scale - 0.5)
        return torch.as_tensor(np.stack(points), dtype=torch.float32, device=self.device)

    def _masks_tensor(self, region_masks: np.ndarray) -> torch.Tensor:
        """(K, H, W) soft masks from an earlier Parsing -> (1, K, S, S) on the device."""
        k = len(self.regions)
        if (
            not isinstance(region_masks, np.ndarray)
            or region_masks.ndim != 3
            or len(region_masks) != k
        ):
            raise InputError(
                f"region masks must be a ({k}, H, W) array, one per region {list(self.regions)}, "
                f"got {getattr(region_masks, 'shape', None)}"
            )
        masks = torch.from_numpy(np.ascontiguousarray(region_masks, np.float32)).to(self.device)
        return resize(masks[None], self.crop_size).contiguous()

    def _parsed(
        self,
        crop: np.ndarray,
        landmarks: np.ndarray | None = None,
        timings: dict[str, float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, Parsing | None]:
        """(input tensor, region masks, parsing or None without a parser), cached by content."""
        if landmarks is None and self.config is not None and self.config.region_source == "boxes":
            # Keypoint-box models need landmarks; in an aligned crop they sit on the template.
            landmarks = template_landmarks(self.crop_size)
        key = hashlib.blake2b(crop.tobytes(), digest_size=16).digest() + repr(crop.shape).encode()
        if landmarks is not None:
            key += np.asarray(landmarks, dtype=np.float32).tobytes()
        cached = self._parse_cache.get(key)
        if cached is not None:
            self._parse_cache.move_to_end(key)
            if timings is not None:
                timings["parse"] = 0.0
            return cached
        started = time.perf_counter()
        x = self._to_tensor(crop)
        lm = (
            None
            if landmarks is None
            else torch.as_tensor(landmarks, dtype=torch.float32, device=self.device)[None]
        )
        if self._model is not None:
            masks, logits, _ = self._model.region_masks(x, lm)
        else:
            assert self._parser is not None
            logits = self._parser_logits(x)
            from faceedit.model.regions import soft_region_masks

            masks = soft_region_masks(logits, self.regions)
        parsing = None if self._parser is None else parsing_arrays(logits, masks, crop.shape[:2])
        if timings is not None:
            timings["parse"] = (time.perf_counter() - started) * 1000
        self._parse_cache[key] = entry = (x, masks, parsing)
        while len(self._parse_cache) > PARSE_CACHE_SIZE:
            self._parse_cache.popitem(last=False)
        return entry

    def _parser_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at x's size from a parser-only checkpoint, run at its working resolution."""
        assert self._parser is not None and self.config is not None
        res = self.config.parser.resolution
        inp = (
            x
            if x.shape[-1] == res
            else F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)
        )
        logits: torch.Tensor = self._parser(inp).logits
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        assert logits.shape[1] == NUM_CLASSES
        return logits

    def _condition_tensor(
        self,
        condition: ConditionLike,
        region_conditions: Mapping[str, ConditionLike] | None,
        valence_arousal: tuple[float, float] | None,
    ) -> torch.Tensor:
        """(1, C) for one target, or (1, 1 + K, C) when some regions have their own."""
        va = valence_arousal if self.capabilities.valence_arousal else None
        if self.capabilities.valence_arousal and va is None:
            va = (0.0, 0.0)
        base = condition_vector(condition, va)
        if not region_conditions:
            return torch.from_numpy(base)[None].to(self.device)
        unknown = sorted(set(region_conditions) - set(self.regions))
        if unknown:
            raise FaceEditError(
                f"unknown region(s) {unknown}; this model edits {list(self.regions)}"
            )
        rows = [base] + [
            condition_vector(region_conditions[r], va) if r in region_conditions else base
            for r in self.regions
        ]
        return torch.from_numpy(np.stack(rows))[None].to(self.device)

    def _editable_tensor(self, editable_regions: Iterable[str] | None) -> torch.Tensor | None:
        if editable_regions is None:
            return None
        chosen = set(editable_regions)
        unknown = sorted(chosen - set(self.regions))
        if unknown:
            raise FaceEditError(
                f"unknown region(s) {unknown}; this model edits {list(self.regions)}"
            )
        return torch.tensor([float(r in chosen) for r in self.regions], device=self.device)


def _file_holds(loaded: checkpoint_io.LoadedCheckpoint) -> bool:
    """Whether the checkpoint's file, as loaded, holds exactly these networks and config."""
    if loaded.header.get("tensor_sha256") is None or not loaded.path.is_file():
        return False
    try:
        return ModelConfig.from_dict(loaded.header["config"]) == loaded.config
    except Exception:  # a header that no longer parses: write a copy instead
        return False


def _load_compiled(
    child: compile_process.ChildCompile,
    name: str,
    device: str,
    module: nn.Module,
    args: Sequence[Any],
    tolerance: float,
    last: bool,
) -> compile_process.CompiledNetwork:
    """The child's library for `name`, checked; the last network's turn ends the child."""
    try:
        return compile_process.load_compiled(child, name, device, module, args, tolerance)
    finally:
        if last:
            child.finish()
