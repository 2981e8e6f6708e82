"""EditEngine: the Qt-free inference API used by the app, the `edit` command and the benchmark.

It owns the networks and the device, takes uint8 RGB crops and returns numpy arrays. The parse
of the last crop is cached, so moving a slider re-runs only the generators (DESIGN.md section 5).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
import torch
import torch.nn.functional as F

from faceedit import checkpoint as checkpoint_io
from faceedit.errors import FaceEditError, InputError
from faceedit.expressions import EXPRESSIONS, condition_vector
from faceedit.face import template_landmarks
from faceedit.labels import NUM_CLASSES, REGION_NAMES
from faceedit.model.config import ModelConfig
from faceedit.model.unified import UnifiedModel

DeviceChoice = Literal["auto", "cpu", "cuda"]
ConditionLike = Mapping[str, float] | Sequence[float] | np.ndarray

PARSE_CACHE_SIZE: Final[int] = 4
HOW_TO_GET_A_MODEL: Final[str] = (
    "train one with 'faceedit-train' (parser, gan, joint stages) or import the community "
    "face parser with 'faceedit import-parser 79999_iter.pth parser.safetensors'"
)


def resolve_device(device: DeviceChoice | str | torch.device = "auto") -> torch.device:
    """'auto' means CUDA when a GPU is usable, else CPU; asking for an absent GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise FaceEditError("CUDA was requested but no usable GPU was found; use --device cpu")
    return torch.device(device)


@dataclass(frozen=True)
class Capabilities:
    """What the loaded model can do, and for each missing part a sentence saying how to get it."""

    can_parse: bool
    can_edit: bool
    can_score: bool
    valence_arousal: bool
    missing: tuple[str, ...] = ()


@dataclass
class Parsing:
    """Parser output for one crop, at the crop's size."""

    probabilities: np.ndarray  # (19, H, W) float32, sums to 1 over classes
    labels: np.ndarray  # (H, W) uint8 class indices
    region_masks: np.ndarray  # (K, H, W) float32 soft masks of the expression regions


@dataclass
class EditResult:
    """One edited crop with what explains it: region masks, attention maps, timings."""

    crop: np.ndarray  # (S, S, 3) uint8 RGB
    region_masks: np.ndarray  # (K, S, S) float32
    attention: np.ndarray  # (1 + K, S, S) float32; 1 keeps the input pixel
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage


class EditEngine:
    """Parse and edit aligned face crops with a loaded checkpoint (or none: then it says so)."""

    def __init__(
        self,
        loaded: checkpoint_io.LoadedCheckpoint | None,
        device: DeviceChoice | str | torch.device = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.checkpoint = loaded
        self.config: ModelConfig | None = loaded.config if loaded else None
        self._model: UnifiedModel | None = None
        self._parser = loaded.parser if loaded else None
        self._discriminator = loaded.discriminator if loaded else None
        if loaded is not None and loaded.generator is not None:
            try:
                self._model = loaded.unified()
            except FaceEditError:
                self._model = None
        for module in (self._model, self._parser, self._discriminator):
            if module is not None:
                module.to(self.device).eval()
        # A few recent parses, newest last: the app parses the input crop and, to score it, the
        # edited one, and a slider move must still find the input's parse.
        self._parse_cache: OrderedDict[bytes, tuple[torch.Tensor, torch.Tensor, Parsing]] = (
            OrderedDict()
        )
        self.capabilities = self._capabilities()

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, device: DeviceChoice | str = "auto") -> EditEngine:
        """Load a checkpoint file; CheckpointError explains what is wrong with a bad one."""
        return cls(checkpoint_io.load(path, device="cpu"), device)

    @classmethod
    def empty(cls, device: DeviceChoice | str = "auto") -> EditEngine:
        """An engine without a model: detection and alignment still work around it."""
        return cls(None, device)

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
    ) -> EditResult:
        """Edit one crop towards `condition` (expression name -> weight, or an 8-vector).

        `region_conditions` gives some regions their own target (a happy mouth with surprised
        eyes); `editable_regions` locks every other region to the input. `landmarks` (5, 2) in
        crop pixels are needed only by models trained with keypoint-box regions.
        """
        self._require("edit")
        assert self._model is not None
        timings: dict[str, float] = {}
        start = time.perf_counter()
        x, masks, _ = self._parsed(crop, landmarks, timings)
        cond = self._condition_tensor(condition, region_conditions, valence_arousal)
        editable = self._editable_tensor(editable_regions)
        started = time.perf_counter()
        out = self._model.generate(x, masks, cond, editable)
        image = out.image
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        timings["generate"] = (time.perf_counter() - started) * 1000
        result = EditResult(
            crop=_to_uint8(image[0], crop.shape[:2]),
            region_masks=masks[0].float().cpu().numpy(),
            attention=out.attention[0, :, 0].float().cpu().numpy(),
            timings=timings,
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
    ) -> list[EditResult]:
        """Edit many crops in one forward pass (headless CLI, benchmark); no parse cache."""
        self._require("edit")
        assert self._model is not None
        if not crops:
            return []
        start = time.perf_counter()
        x = torch.cat([self._to_tensor(c) for c in crops])
        masks, _, _ = self._model.region_masks(x)
        parsed = time.perf_counter()
        cond = self._condition_tensor(condition, region_conditions, valence_arousal)
        cond = cond.expand(x.shape[0], *cond.shape[1:])
        out = self._model.generate(x, masks, cond, self._editable_tensor(editable_regions))
        done = time.perf_counter()
        timings = {
            "parse": (parsed - start) * 1000 / len(crops),
            "generate": (done - parsed) * 1000 / len(crops),
        }
        return [
            EditResult(
                crop=_to_uint8(out.image[i], crops[i].shape[:2]),
                region_masks=masks[i].float().cpu().numpy(),
                attention=out.attention[i, :, 0].float().cpu().numpy(),
                timings=dict(timings),
            )
            for i in range(len(crops))
        ]

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
        """Forget the cached parses (e.g. after switching device)."""
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
        x = (
            torch.from_numpy(np.ascontiguousarray(crop))
            .to(self.device)
            .permute(2, 0, 1)[None]
            .float()
        )
        x = x / 127.5 - 1.0
        size = self.crop_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        return x

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
        parsing = None if self._parser is None else _parsing(logits, masks, crop.shape[:2])
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
        logits = self._parser(inp).logits
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


def _parsing(logits: torch.Tensor, masks: torch.Tensor, size: tuple[int, int]) -> Parsing:
    """Numpy parsing of the first item, with probabilities at the caller's crop size."""
    probabilities = torch.softmax(logits.float(), dim=1)
    if tuple(probabilities.shape[-2:]) != tuple(size):
        probabilities = F.interpolate(
            probabilities, size=size, mode="bilinear", align_corners=False
        )
    return Parsing(
        probabilities=probabilities[0].cpu().numpy(),
        labels=probabilities[0].argmax(0).to(torch.uint8).cpu().numpy(),
        region_masks=masks[0].float().cpu().numpy(),
    )


def _to_uint8(image: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(3, S, S) in [-1, 1] -> (H, W, 3) uint8 RGB at the caller's crop size."""
    image = image.float()[None]
    if tuple(image.shape[-2:]) != tuple(size):
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    pixels = ((image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).cpu().numpy()
