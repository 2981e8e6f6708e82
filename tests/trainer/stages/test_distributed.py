"""Multi-process training: a real `torchrun --nproc_per_node 2` run with gloo on CPU keeps both
ranks' weights identical and writes one set of files; the data shards do not overlap."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from faceedit.errors import TrainingError
from faceedit.inference.engine import EditEngine
from tests.trainer.fixtures import torchrun_joint_command
from tests.trainer.stages.test_stages import one_thread  # noqa: F401 (an autouse fixture)
from trainer.stages.distributed import DistInfo, any_rank, mean_over_ranks, resolve_device, setup
from trainer.stages.loop import WEIGHTS_DIGEST_ENV, EndlessLoader
from trainer.stages.state import load_state

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_torchrun_with_two_processes_keeps_the_ranks_identical(
    tmp_path: Path, tiny_model: Path
) -> None:
    out, digests = tmp_path / "run", tmp_path / "digests"
    command = torchrun_joint_command(
        tmp_path, tiny_model, 2, "cpu", 3, extra=("--set", "gan_optim.n_critic=2")
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", WEIGHTS_DIGEST_ENV: str(digests)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]

    # Both ranks trained on different shards, yet DDP kept every weight identical.
    rank0 = (digests / "rank0.sha256").read_text()
    rank1 = (digests / "rank1.sha256").read_text()
    assert rank0 == rank1
    assert {line.split()[0] for line in rank0.splitlines()} >= {
        "parser",
        "generator",
        "discriminator",
    }

    # Only rank 0 wrote files and logged.
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "model.safetensors",
        "state.pt",
        "tensorboard",
    ]
    assert len(list((out / "tensorboard").iterdir())) == 1
    assert result.stderr.count("done: step 3") == 1
    state = load_state(out / "state.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    engine = EditEngine.load(out / "model.safetensors", device="cpu")
    assert engine.capabilities.can_edit


def _info(rank: int, world: int) -> DistInfo:
    return DistInfo(rank, world, rank, torch.device("cpu"))


class _Indices(torch.utils.data.Dataset):
    def __init__(self, size: int) -> None:
        self.size = size
        self.targets = torch.arange(size).remainder(3).numpy()  # for class balancing

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> int:
        return i


def test_each_rank_takes_its_own_share_of_every_epoch() -> None:
    dataset = _Indices(11)
    orders = [
        EndlessLoader(dataset, 2, seed=3, info=_info(r, 2)).epoch_order(epoch=4) for r in (0, 1)
    ]
    assert len(orders[0]) == len(orders[1]) == 6  # 11 padded to 12, half each
    assert set(orders[0]) | set(orders[1]) == set(range(11))
    single = EndlessLoader(dataset, 2, seed=3, info=_info(0, 1)).epoch_order(epoch=4)
    assert orders[0] == single[0::2][:6] and orders[1] == (single + single[:1])[1::2]


def test_class_balanced_shares_are_slices_of_one_draw() -> None:
    dataset = _Indices(12)
    weights = torch.ones(12, dtype=torch.float64)
    loaders = [EndlessLoader(dataset, 2, seed=1, info=_info(r, 2), weights=weights) for r in (0, 1)]
    first, second = (loader.epoch_order(0) for loader in loaders)
    assert len(first) == len(second) == 6
    assert first != second and loaders[0].epoch_order(1) != first


def test_too_small_a_dataset_for_the_batch_is_refused() -> None:
    from faceedit.errors import DatasetError

    with pytest.raises(DatasetError, match="--batch-size"):
        EndlessLoader(_Indices(3), 4, seed=0, info=_info(0, 1))


def test_one_process_needs_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = setup("cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    assert mean_over_ranks({"a": 1.5}, info) == {"a": 1.5}
    assert any_rank(True, info) and not any_rank(False, info)


def test_a_missing_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainingError, match="--device cpu"):
        resolve_device("cuda")
