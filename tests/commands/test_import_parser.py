from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from faceedit.commands.cli import main
from faceedit.commands.import_parser import load_resnet18_backbone, read_face_parsing_state_dict
from faceedit.errors import CheckpointError
from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import ParserConfig
from faceedit.weights import checkpoint


def randomised_bisenet(seed: int) -> BiSeNet:
    """A BiSeNet whose every tensor, BN statistics included, differs from a fresh one."""
    torch.manual_seed(seed)
    model = BiSeNet(ParserConfig(kind="bisenet"))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.num_batches_tracked.fill_(80000)
    return model.eval()


@pytest.fixture(scope="module")
def community() -> BiSeNet:
    """Stands in for the network behind 79999_iter.pth (keys as in the community file)."""
    return randomised_bisenet(seed=7)


def face_parsing_layout(model: BiSeNet) -> OrderedDict[str, Tensor]:
    return OrderedDict((k, v.clone()) for k, v in model.state_dict().items())


def with_module_prefix(state: OrderedDict[str, Tensor]) -> object:
    return OrderedDict((f"module.{k}", v) for k, v in state.items())


def without_batch_counters(state: OrderedDict[str, Tensor]) -> object:
    return OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))


def with_nan(state: OrderedDict[str, Tensor]) -> OrderedDict[str, Tensor]:
    damaged = OrderedDict(state)
    damaged["ffm.conv1.weight"] = damaged["ffm.conv1.weight"].clone()
    damaged["ffm.conv1.weight"][3, 5] = float("nan")
    return damaged


def nested(state: OrderedDict[str, Tensor]) -> object:
    return {"state_dict": state, "epoch": 12}


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


class CreatesAFile:
    """A pickle payload: unpickling it calls open(path, "w"), i.e. runs code that creates a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


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

    with pytest.raises(CheckpointError, match=r"evil\.pth was refused.*could run code"):
        read_face_parsing_state_dict(src)
    assert main(["import-parser", str(src), str(tmp_path / "out.safetensors")]) == 2
    assert "refused" in capsys.readouterr().err
    assert not victim.exists()
    assert not (tmp_path / "out.safetensors").exists()


def _truncated(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "truncated.pth"
    torch.save(face_parsing_layout(community), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    return path


def _empty(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "empty.pth"
    path.touch()
    return path


def _a_list(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    return path


def _missing(tmp_path: Path, community: BiSeNet) -> Path:
    return tmp_path / "nowhere.pth"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_truncated, "not a readable PyTorch weights file"),
        (_text, "not a readable PyTorch weights file|refused"),
        (_empty, "not a readable PyTorch weights file"),
        (_a_list, "holds a list, not a state dict"),
        (_missing, "does not exist"),
    ],
    ids=["truncated", "text", "empty", "list", "missing"],
)
def test_unreadable_files_get_a_clear_error(
    make: Callable[[Path, BiSeNet], Path], message: str, community: BiSeNet, tmp_path: Path
) -> None:
    path = make(tmp_path, community)
    with pytest.raises(CheckpointError, match=message) as info:
        read_face_parsing_state_dict(path)
    assert str(path) in str(info.value)


def test_mismatched_keys_are_named(community: BiSeNet, tmp_path: Path) -> None:
    state = face_parsing_layout(community)
    del state["ffm.conv2.weight"]
    state["conv_out.conv_out.weight"] = torch.zeros(11, 256, 1, 1)  # an 11-class model
    state["head.extra"] = torch.zeros(3)
    src = tmp_path / "other.pth"
    torch.save(state, src)
    with pytest.raises(CheckpointError) as info:
        read_face_parsing_state_dict(src)
    message = str(info.value)
    assert str(src) in message
    assert "1 missing (ffm.conv2.weight)" in message
    assert "1 unexpected (head.extra)" in message
    assert "conv_out.conv_out.weight (11, 256, 1, 1) != (19, 256, 1, 1)" in message


def test_non_finite_weights_are_refused(community: BiSeNet, tmp_path: Path) -> None:
    src = tmp_path / "nan.pth"
    torch.save(with_nan(face_parsing_layout(community)), src)
    with pytest.raises(CheckpointError, match=r"nan\.pth: tensor ffm\.conv1\.weight holds NaN"):
        read_face_parsing_state_dict(src)


def test_many_missing_keys_are_listed_briefly(tmp_path: Path) -> None:
    src = tmp_path / "half.pth"
    torch.save({"cp.resnet.conv1.weight": torch.zeros(64, 3, 7, 7)}, src)
    with pytest.raises(CheckpointError, match=r"\d+ missing \([^)]*, \.\.\. \d+ more\)"):
        read_face_parsing_state_dict(src)


def test_reader_returns_tensors_ready_for_strict_loading(
    community: BiSeNet, tmp_path: Path
) -> None:
    src = tmp_path / "old.pth"
    torch.save(without_batch_counters(face_parsing_layout(community)), src)
    state = read_face_parsing_state_dict(src)
    assert len(state) == 191
    assert state["cp.resnet.bn1.num_batches_tracked"].dtype == torch.long
    assert int(state["cp.resnet.bn1.num_batches_tracked"]) == 0
    BiSeNet(ParserConfig()).load_state_dict(state, strict=True)


def torchvision_resnet18_layout(model: BiSeNet) -> OrderedDict[str, Tensor]:
    state = OrderedDict((k, v.clone()) for k, v in model.cp.resnet.state_dict().items())
    state["fc.weight"] = torch.randn(1000, 512)
    state["fc.bias"] = torch.randn(1000)
    return state


def test_imagenet_resnet18_loads_into_the_backbone(community: BiSeNet, tmp_path: Path) -> None:
    src = tmp_path / "resnet18-f37072fd.pth"
    torch.save(torchvision_resnet18_layout(community), src)
    fresh = BiSeNet(ParserConfig())
    head_before = fresh.conv_out.conv_out.weight.clone()
    load_resnet18_backbone(fresh, src)
    for key, value in community.cp.resnet.state_dict().items():
        assert torch.equal(fresh.cp.resnet.state_dict()[key], value), key
    assert torch.equal(fresh.conv_out.conv_out.weight, head_before)  # only the backbone changes


def test_a_non_resnet18_backbone_is_refused(community: BiSeNet, tmp_path: Path) -> None:
    state = torchvision_resnet18_layout(community)
    state["layer1.2.conv1.weight"] = torch.zeros(64, 64, 3, 3)  # ResNet-34 has a third block
    src = tmp_path / "resnet34.pth"
    torch.save(state, src)
    with pytest.raises(
        CheckpointError, match=r"resnet34\.pth.*ResNet-18.*layer1\.2\.conv1\.weight"
    ):
        load_resnet18_backbone(BiSeNet(ParserConfig()), src)


def test_wrong_kind_of_file_gets_a_hint(community: BiSeNet, tmp_path: Path) -> None:
    backbone, whole = tmp_path / "resnet18.pth", tmp_path / "79999_iter.pth"
    torch.save(torchvision_resnet18_layout(community), backbone)
    torch.save(face_parsing_layout(community), whole)
    with pytest.raises(CheckpointError, match="looks like an ImageNet ResNet backbone"):
        read_face_parsing_state_dict(backbone)
    with pytest.raises(CheckpointError, match="looks like a whole face-parsing BiSeNet"):
        load_resnet18_backbone(BiSeNet(ParserConfig()), whole)
