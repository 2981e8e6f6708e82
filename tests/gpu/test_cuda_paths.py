"""Every CUDA path of the product, run where a GPU exists (the `gpu` marker skips them elsewhere):
the app's engine and session in float32 and bfloat16 against the CPU, a training step under bf16
autocast, torchrun on CUDA (NCCL where the machine has several GPUs), and the bench's GPU figures.

On a machine without the app's Qt (a GPU server), these run alone: `pytest tests/gpu`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.inference.engine import EditEngine
from faceedit.media.bundled import bundled_path, procedural_samples
from faceedit.media.sources import read_image

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
HAPPY = {"happy": 1.0}


def _demo_crop() -> np.ndarray:
    """A bundled procedural face: an aligned crop, as the demo model was trained on."""
    return read_image(procedural_samples()[0])


def _grey_levels(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_the_engine_on_cuda_edits_as_on_the_cpu() -> None:
    crop = _demo_crop()
    on_cpu = EditEngine.load(bundled_path("demo"), device="cpu").edit(crop, HAPPY)
    on_cuda = EditEngine.load(bundled_path("demo"), device="cuda", precision="float32")
    assert on_cuda.device.type == "cuda"
    result = on_cuda.edit(crop, HAPPY)
    # TF32 convolutions and other kernels: a fraction of a grey level, never a different edit
    assert _grey_levels(result.crop, on_cpu.crop) < 0.5
    assert _grey_levels(result.crop, crop) > 1.0  # it did edit
    np.testing.assert_allclose(result.region_masks, on_cpu.region_masks, atol=0.02)


def test_bfloat16_on_cuda_stays_within_a_few_grey_levels() -> None:
    crop = _demo_crop()
    exact = EditEngine.load(bundled_path("demo"), device="cuda", precision="float32")
    fast = EditEngine.load(bundled_path("demo"), device="cuda", precision="auto")
    assert fast.precision == "bfloat16"  # every CUDA GPU faceedit supports runs bf16 natively
    difference = _grey_levels(fast.edit(crop, HAPPY).crop, exact.edit(crop, HAPPY).crop)
    assert difference < 3.0


def test_the_apps_session_computes_on_cuda() -> None:
    from faceedit.inference.request import EditRequest
    from faceedit.inference.session import EditSession
    from faceedit.media.bundled import astronaut_image_path

    session = EditSession(detect_every=1)
    report = session.load(str(bundled_path("demo")), "cuda", "auto")
    assert (
        report.error is None and report.info is not None and report.info.device.startswith("cuda")
    )
    session.open(str(astronaut_image_path()))
    update = session.compute(EditRequest(condition=HAPPY))
    assert update.edited and update.output.shape == update.input.shape
    assert not np.array_equal(update.output, update.input)


def test_bf16_autocast_is_what_training_runs_under_on_cuda() -> None:
    from trainer.stages.distributed import DistInfo, autocast

    info = DistInfo(0, 1, 0, torch.device("cuda"))
    conv = torch.nn.Conv2d(3, 8, 3).cuda()
    with autocast(info):
        out = conv(torch.randn(2, 3, 16, 16, device="cuda"))
    assert out.dtype == torch.bfloat16


def test_a_joint_training_run_on_cuda_under_torchrun(tmp_path: Path, tiny_model: Path) -> None:
    """Every GPU of the machine as one rank (NCCL needs one GPU per process, and joins a process
    group only with two or more): the run trains under bf16 autocast, writes a checkpoint the
    CPU can load, and resumes."""
    from tests.trainer.fixtures import torchrun_joint_command
    from trainer.stages.state import load_state

    processes = torch.cuda.device_count()
    command = torchrun_joint_command(tmp_path, tiny_model, processes, "cuda", 4)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "done: step 4" in result.stderr
    state = load_state(tmp_path / "run" / "state.pt")
    assert state["world_size"] == processes
    engine = EditEngine.load(tmp_path / "run" / "model.safetensors", device="cpu")
    assert engine.capabilities.can_edit  # and loading refuses NaN or inf weights
    resumed = [*command[:-2], "--resume", "--steps", "6", "--out", command[-1]]
    result = subprocess.run(resumed, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "done: step 6" in result.stderr


def test_the_bench_reports_cuda_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "faceedit.commands.cli", "bench", "--device", "cuda", "--quick",
        "--sections", "stages", "--json", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    text = json.dumps(json.loads(out.read_text()))
    assert "cuda" in text
