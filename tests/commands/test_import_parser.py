"""`faceedit import-parser`: the command converts, refuses and reports (the reading itself:
tests/weights/test_community_parser.py)."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from faceedit.commands.cli import main
from faceedit.errors import CheckpointError
from faceedit.model.bisenet import BiSeNet
from faceedit.weights import checkpoint
from faceedit.weights.community_parser import read_face_parsing_state_dict
from tests.weights.community_files import (
    CreatesAFile,
    community_bisenet,
    face_parsing_layout,
    nested,
    with_module_prefix,
    without_batch_counters,
)


@pytest.fixture
def community() -> BiSeNet:
    return community_bisenet()


VARIANTS: dict[str, tuple[Callable[[OrderedDict[str, Tensor]], object], dict[str, bool]]] = {
    "plain": (lambda s: s, {}),
    "module-prefix": (with_module_prefix, {}),
    "no-num_batches_tracked": (without_batch_counters, {}),
    "nested-under-state_dict": (nested, {}),
    "legacy-serialisation": (lambda s: s, {"_use_new_zipfile_serialization": False}),
}


def logits(model: nn.Module, x: Tensor) -> Tensor:
    with torch.inference_mode():
        return model.eval()(x).logits


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_imported_parser_gives_the_original_logits(
    variant: str, community: BiSeNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transform, save_options = VARIANTS[variant]
    src = tmp_path / "79999_iter.pth"
    torch.save(transform(face_parsing_layout(community)), src, **save_options)
    out = tmp_path / "parser.safetensors"

    assert main(["import-parser", str(src), str(out)]) == 0

    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert "13.30M parameters" in summary[0] and "19 classes" in summary[0]
    assert "resolution 512" in summary[0]
    loaded = checkpoint.load(out)
    assert isinstance(loaded.parser, BiSeNet)
    assert loaded.generator is None and loaded.discriminator is None
    assert loaded.config.parser.kind == "bisenet" and loaded.config.parser.resolution == 512
    assert loaded.metadata == {"source": "face-parsing.PyTorch", "imported_from": str(src)}
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    expected, got = logits(community, x), logits(loaded.parser, x)
    assert ((got - expected).abs().max() / expected.abs().max()) < 1e-5


def test_resolution_option_is_stored_in_the_config(community: BiSeNet, tmp_path: Path) -> None:
    src, out = tmp_path / "fp.pth", tmp_path / "fp256.safetensors"
    torch.save(face_parsing_layout(community), src)
    assert main(["import-parser", str(src), str(out), "--resolution", "256"]) == 0
    assert checkpoint.load(out).config.parser.resolution == 256


def test_resolution_that_bisenet_cannot_divide_is_refused(
    community: BiSeNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "fp.pth", tmp_path / "bad.safetensors"
    torch.save(face_parsing_layout(community), src)
    assert main(["import-parser", str(src), str(out), "--resolution", "300"]) == 2
    assert "300 is not a multiple of 32" in capsys.readouterr().err
    assert not out.exists()


def test_refuses_to_overwrite_the_source(
    community: BiSeNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "79999_iter.pth"
    torch.save(face_parsing_layout(community), src)
    before = src.read_bytes()
    assert main(["import-parser", str(src), str(tmp_path / "." / src.name)]) == 2
    assert "source file itself" in capsys.readouterr().err
    assert src.read_bytes() == before


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickles_that_run_code_are_refused_without_running_it(
    writer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "created-by-unpickling.txt"
    src = tmp_path / "evil.pth"
    payload = {"state_dict": {"cp.resnet.conv1.weight": CreatesAFile(victim)}}
    if writer == "torch.save":
        torch.save(payload, src)
    else:
        with open(src, "wb") as handle:
            pickle.dump(payload, handle)

    with pytest.raises(
        CheckpointError, match=r"evil\.pth (was refused|could not be read).*could run code"
    ):
        read_face_parsing_state_dict(src)
    assert main(["import-parser", str(src), str(tmp_path / "out.safetensors")]) == 2
    assert "could run code" in capsys.readouterr().err
    assert not victim.exists()
    assert not (tmp_path / "out.safetensors").exists()
