"""`faceedit import-parser SRC OUT`: turn face-parsing.PyTorch's `79999_iter.pth` into a checkpoint.

Many users already hold that CelebAMask-HQ parser. faceedit's BiSeNet has the same layout, so the
import reads the file without unpickling any code (`weights_only=True`), checks every tensor
name and shape against a freshly built BiSeNet, and writes a parser-only faceedit checkpoint.
The same reader loads torchvision's ImageNet ResNet-18 file into the BiSeNet backbone, which is
how parser training starts from pretrained features.
"""

from __future__ import annotations

import argparse
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import torch
from torch import Tensor

from faceedit.errors import CheckpointError
from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import ModelConfig, ParserConfig
from faceedit.weights import checkpoint
from faceedit.weights.state_match import compare_state, listed

# Containers that training scripts commonly wrap a state dict in.
NESTING_KEYS: Final[tuple[str, ...]] = ("state_dict", "model")
# Added by nn.DataParallel / DistributedDataParallel when the wrapper itself was saved.
WRAPPER_PREFIX: Final[str] = "module."
# torchvision's ResNet-18 classifier, which the BiSeNet backbone does not have.
CLASSIFIER_PREFIX: Final[str] = "fc."


# --- reading .pth files safely ------------------------------------------------------------------


def read_face_parsing_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The community BiSeNet's tensors from `path`, checked key by key against faceedit's BiSeNet.

    Accepts a plain state dict or one nested under "state_dict"/"model", a `module.` prefix on
    every key, and old files without `num_batches_tracked` (filled with zeros). Raises
    CheckpointError naming the file and the first few missing, unexpected or misshapen keys.
    """
    file = Path(path)
    state = _read_state_dict(file)
    with torch.device("meta"):  # names and shapes only: no memory, no initialisation cost
        expected = BiSeNet(ParserConfig(kind="bisenet")).state_dict()
    state = _fill_batch_counters(state, expected)
    _refuse_misfit(file, state, expected, "the face-parsing.PyTorch BiSeNet")
    return state


def load_resnet18_backbone(model: BiSeNet, path: str | os.PathLike[str]) -> None:
    """Load torchvision's ImageNet ResNet-18 weights (`resnet18-*.pth`) into `model.cp.resnet`.

    The classifier (`fc.*`) is dropped; every other tensor must match the backbone exactly.
    """
    file = Path(path)
    state = {
        key: value
        for key, value in _read_state_dict(file).items()
        if not key.startswith(CLASSIFIER_PREFIX)
    }
    backbone = model.cp.resnet
    expected = backbone.state_dict()
    state = _fill_batch_counters(state, expected)
    _refuse_misfit(file, state, expected, "a torchvision ResNet-18")
    backbone.load_state_dict(state, strict=True)


def _read_state_dict(file: Path) -> dict[str, Tensor]:
    """A flat {name: tensor} dict from a torch file, unwrapped and without a `module.` prefix."""
    loaded = _torch_load(file)
    for key in NESTING_KEYS:
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
            break
    if not isinstance(loaded, Mapping) or not loaded:
        raise CheckpointError(
            f"{file} holds a {type(loaded).__name__}, not a state dict of named tensors; "
            "expected a file saved with torch.save(model.state_dict(), ...)"
        )
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{file}: entries {listed(not_tensors)} are not tensors; expected a plain state dict"
        )
    state: dict[str, Tensor] = {}
    for key, value in loaded.items():
        name = str(key).removeprefix(WRAPPER_PREFIX)
        if value.is_floating_point():
            value = value.float()  # half or double copies of the weights load like the original
            # one float64 sum is non-finite exactly when some element is (it cannot overflow)
            if not torch.isfinite(value.sum(dtype=torch.float64)):
                raise CheckpointError(f"{file}: tensor {name} holds NaN or infinite values")
        state[name] = value
    return state


def _torch_load(file: Path) -> Any:
    """torch.load restricted to tensors and plain containers; every failure as a CheckpointError."""
    if not file.is_file():
        reason = "does not exist" if not file.exists() else "is not a file"
        raise CheckpointError(f"{file} {reason}; give the path of the .pth weights file")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refuses pickles that would import or call anything besides tensors and
        # containers: such a file could run code, so faceedit never opens it the unsafe way.
        raise CheckpointError(
            f"{file} was refused: it is not a plain tensor file, or it contains pickled Python "
            f"objects that faceedit will not unpickle because they could run code "
            f"({_unpickler_reason(error)}). Re-save only the weights with "
            "torch.save(model.state_dict(), path) from a trusted environment"
        ) from None
    except Exception as error:
        # torch reports damaged files as RuntimeError, EOFError, KeyError, ValueError, ...
        detail = str(error).split(". ")[0] or type(error).__name__
        raise CheckpointError(
            f"{file} is not a readable PyTorch weights file ({detail}); "
            "it may be truncated, damaged, or another kind of file"
        ) from None


def _unpickler_reason(error: Exception) -> str:
    """The one informative line of torch's long weights_only message."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0].split(". ")[0] if lines else type(error).__name__


def _fill_batch_counters(
    state: dict[str, Tensor], expected: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Add the zero `num_batches_tracked` counters that files saved by PyTorch < 0.4.1 lack."""
    filled = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in filled:
            filled[key] = torch.zeros(value.shape, dtype=value.dtype)
    return filled


def _refuse_misfit(
    file: Path, state: Mapping[str, Tensor], expected: Mapping[str, Tensor], network: str
) -> None:
    mismatch = compare_state(expected, state)
    if mismatch:
        raise CheckpointError(
            f"{file} does not hold the weights of {network}: {mismatch.summary()}"
            f"{_hint(state, expected)}"
        )


def _hint(state: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> str:
    """Recognise the files people most often pass by mistake."""
    if any(k.startswith("parser.") for k in state):
        return ". It looks like a faceedit checkpoint already: use it directly"
    if "conv1.weight" in state and "conv1.weight" not in expected:
        return ". It looks like an ImageNet ResNet backbone, not a whole face parser"
    if "cp.resnet.conv1.weight" in state and "cp.resnet.conv1.weight" not in expected:
        return (
            ". It looks like a whole face-parsing BiSeNet: convert it with 'faceedit import-parser'"
        )
    return ""


# --- the command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src", type=Path, metavar="SRC", help="face-parsing.PyTorch weights, e.g. 79999_iter.pth"
    )
    parser.add_argument(
        "out", type=Path, metavar="OUT", help="faceedit checkpoint to write (.safetensors)"
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=512,
        help="size the engine resizes face crops to before parsing; the parser was trained at "
        "512 (default), 256 is about 4x faster and usually enough for 128-pixel edits",
    )


def run(args: argparse.Namespace) -> int:
    src, out = Path(args.src), Path(args.out)
    if out.resolve() == src.resolve() or (out.exists() and src.exists() and out.samefile(src)):
        raise CheckpointError(
            f"OUT {out} is the source file itself; choose another name, e.g. {src.with_suffix('.safetensors')}"
        )
    config = ModelConfig(parser=ParserConfig(kind="bisenet", resolution=args.resolution))
    state = read_face_parsing_state_dict(src)
    model = BiSeNet(config.parser)
    model.load_state_dict(state, strict=True)
    model.eval()
    written = checkpoint.save(
        out,
        config,
        parser=model,
        metadata={"source": "face-parsing.PyTorch", "imported_from": str(src)},
    )
    params = sum(p.numel() for p in model.parameters())
    print(
        f"imported {src} -> {written}: BiSeNet, {params / 1e6:.2f}M parameters, "
        f"{config.parser.num_classes} classes, resolution {config.parser.resolution}"
    )
    return 0
