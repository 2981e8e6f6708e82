"""face-parsing.PyTorch's `79999_iter.pth` as a faceedit checkpoint.

Many users already hold that CelebAMask-HQ parser. faceedit's BiSeNet has the same layout
(tests/data/face-parsing-bisenet-keys.tsv lists its 191 tensors), so the conversion reads the
file without unpickling code (faceedit.weights.torch_files), checks every tensor name and shape
against a freshly built BiSeNet, and writes a parser-only faceedit checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import torch
from torch import Tensor

from faceedit.errors import CheckpointError
from faceedit.fileio import check_output_file
from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import ModelConfig, ParserConfig
from faceedit.weights import checkpoint
from faceedit.weights.torch_files import fill_batch_counters, read_state_dict, refuse_misfit

SOURCE: Final[str] = "face-parsing.PyTorch"
EXPECTED_FILE: Final[str] = "face-parsing.PyTorch's BiSeNet weights (79999_iter.pth)"


@dataclass(frozen=True)
class Imported:
    """What `import_parser` wrote."""

    path: Path
    config: ModelConfig
    parameters: int


def read_face_parsing_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The community BiSeNet's tensors from `path`, checked key by key against faceedit's BiSeNet.

    Accepts a plain state dict or one nested under "state_dict"/"model", a `module.` prefix on
    every key, and old files without `num_batches_tracked` (filled with zeros). Raises
    CheckpointError naming the file and the first few missing, unexpected or misshapen keys.
    """
    file = Path(path)
    state = read_state_dict(file, EXPECTED_FILE)
    with torch.device("meta"):  # names and shapes only: no memory, no initialisation cost
        expected = BiSeNet(ParserConfig(kind="bisenet")).state_dict()
    state = fill_batch_counters(state, expected)
    refuse_misfit(file, state, expected, "the face-parsing.PyTorch BiSeNet")
    return state


def import_parser(
    src: str | os.PathLike[str], out: str | os.PathLike[str], resolution: int = 512
) -> Imported:
    """Convert `src` into a parser-only checkpoint at `out` that parses at `resolution`.

    Refuses to write over `src`; the checkpoint is written atomically (faceedit.weights.checkpoint).
    """
    source, target = Path(src), Path(out)
    if target.resolve() == source.resolve() or (
        target.exists() and source.exists() and target.samefile(source)
    ):
        raise CheckpointError(
            f"OUT {target} is the source file itself; choose another name, e.g. "
            f"{source.with_suffix('.safetensors')}"
        )
    check_output_file(target, "OUT")
    config = ModelConfig(parser=ParserConfig(kind="bisenet", resolution=resolution))
    state = read_face_parsing_state_dict(source)
    model = BiSeNet(config.parser)
    model.load_state_dict(state, strict=True)
    model.eval()
    written = checkpoint.save(
        target, config, parser=model, metadata={"source": SOURCE, "imported_from": str(source)}
    )
    return Imported(written, config, sum(p.numel() for p in model.parameters()))
