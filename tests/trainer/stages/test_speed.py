"""CUDA training features, checked on the CPU where they can be: channels_last and fused,
capturable Adam give the plain results, compile wraps and unwraps, bf16's gradient penalty stays
close to float32's, and --backbone-weights loads torchvision's ResNet-18 into BiSeNet safely."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceedit.errors import CheckpointError, ConfigError
from faceedit.model.bisenet import ResNet18
from faceedit.model.config import ParserConfig, preset
from faceedit.model.parsing import build_parser
from tests.trainer.fixtures import write_celebamask_hq
from tests.trainer.stages.test_stages import one_thread  # noqa: F401 (an autouse fixture)
from trainer.commands.cli import main
from trainer.stages.distributed import unwrap
from trainer.stages.parser import load_backbone
from trainer.stages.speed import adam, compile_module, images_to, to_memory_format
from trainer.stages.throughput import penalty_precision


def bisenet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_parser(ParserConfig(kind="bisenet", resolution=64)).train()


def test_channels_last_gives_the_same_logits_and_gradients() -> None:
    plain, nhwc = bisenet(), to_memory_format(bisenet(), True)
    assert nhwc.cp.resnet.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64)
    a, b = plain(x).logits, nhwc(images_to(x, True)).logits
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)  # another summation order
    a.square().mean().backward()
    b.square().mean().backward()
    torch.testing.assert_close(
        plain.conv_out.conv_out.weight.grad,
        nhwc.conv_out.conv_out.weight.grad,
        rtol=1e-3,
        atol=1e-5,
    )


def adam_pair(device: torch.device) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(5, 3, device=device)) for _ in range(2)]
    return weights, [torch.nn.Parameter(w.detach().clone()) for w in weights]


def three_adam_steps(*runs: tuple[list[torch.nn.Parameter], torch.optim.Optimizer]) -> None:
    for _ in range(3):
        for params, optimiser in runs:
            optimiser.zero_grad()
            sum((p**3).sum() for p in params).backward()
            optimiser.step()


def test_cuda_adam_is_fused_and_capturable_and_matches_adam() -> None:
    weights, copies = adam_pair(torch.device("cpu"))
    plain = adam(weights, 1e-2, (0.5, 0.999), torch.device("cpu"))  # torch's default on the CPU
    # what a CUDA run builds: the fused kernel runs on the CPU too
    cuda_style = adam(copies, 1e-2, (0.5, 0.999), torch.device("cuda"))
    assert not plain.defaults["fused"] and not plain.defaults["capturable"]
    assert cuda_style.defaults["fused"] and cuda_style.defaults["capturable"]
    three_adam_steps((weights, plain), (copies, cuda_style))
    for w, c in zip(weights, copies, strict=True):
        torch.testing.assert_close(w, c)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fused CUDA Adam needs a GPU")
def test_fused_capturable_adam_on_the_gpu_matches_adam_on_the_cpu() -> None:
    weights, _ = adam_pair(torch.device("cpu"))
    on_gpu = [torch.nn.Parameter(w.detach().cuda()) for w in weights]
    plain = adam(weights, 1e-2, (0.5, 0.999), torch.device("cpu"))
    fused = adam(on_gpu, 1e-2, (0.5, 0.999), torch.device("cuda"))
    three_adam_steps((weights, plain), (on_gpu, fused))
    for w, g in zip(weights, on_gpu, strict=True):
        torch.testing.assert_close(w, g.cpu())


def test_compiled_module_runs_and_unwraps() -> None:
    net = torch.nn.Conv2d(3, 4, 3)
    compiled = compile_module(net, True, backend="eager")
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(compiled(x), net(x))
    assert unwrap(compiled) is net and compile_module(net, False) is net


def test_bf16_gradient_penalty_stays_close_to_float32() -> None:
    differences = penalty_precision(preset("tiny"), torch.device("cpu"), batch=2)
    print("bf16 vs float32 (tiny, CPU autocast):", differences)
    assert set(differences) == {"gradient norms", "penalty", "double-backward critic gradient"}
    assert 0 < differences["gradient norms"] < 0.05  # bf16 is in effect, and close
    assert 0 < differences["double-backward critic gradient"] < 0.2


def torchvision_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A file laid out as torchvision's resnet18().state_dict(): backbone keys plus fc."""
    torch.manual_seed(1)
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in ResNet18().state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)
    return path, state


def test_backbone_weights_load_into_bisenet(tmp_path: Path) -> None:
    path, state = torchvision_file(tmp_path)
    net = bisenet()
    head = net.conv_out.conv_out.weight.detach().clone()
    assert load_backbone(net, str(path)) == path.name
    assert torch.equal(net.cp.resnet.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert torch.equal(net.cp.resnet.bn1.running_var, state["bn1.running_var"])
    assert torch.equal(net.conv_out.conv_out.weight, head), "only the backbone is loaded"
    with pytest.raises(ConfigError, match="bisenet"):
        load_backbone(build_parser(ParserConfig(kind="unet", resolution=32)), str(path))
    del state["layer2.0.downsample.0.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError):
        load_backbone(bisenet(), str(path))


def test_backbone_flag_refuses_a_unet_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = torchvision_file(tmp_path)
    write_celebamask_hq(tmp_path / "celeb", range(6))
    argv = ["parser", "--celebamask-hq", str(tmp_path / "celeb"), "--preset", "tiny"]
    argv += ["--backbone-weights", str(path), "--out", str(tmp_path / "run")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "bisenet" in err and "Traceback" not in err
