"""Several machines: two torchrun node groups (`--nnodes 2`, a c10d rendezvous) on one host train
the parser from prepared shards, keep identical weights and write one set of files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.fixtures import write_celebamask_hq
from trainer.commands.cli import main
from trainer.stages.loop import WEIGHTS_DIGEST_ENV
from trainer.stages.state import load_state

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_two_node_groups_with_a_c10d_rendezvous_train_as_one(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path / "celeb", range(20))
    shards = tmp_path / "shards"
    flags = ["--size", "32", "--workers", "0", "--splits", "train", "--shard-mb", "0.02"]
    assert (
        main(["prepare", "--celebamask-hq", str(tmp_path / "celeb"), "--out", str(shards), *flags])
        == 0
    )
    out, digests = tmp_path / "run", tmp_path / "digests"
    endpoint = f"127.0.0.1:{free_port()}"
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", "2", "--nproc_per_node", "1",
        "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--rdzv_id", "faceedit-test",
        "-m", "trainer.commands.cli", "parser",
        "--celebamask-hq", str(shards), "--preset", "tiny", "--device", "cpu",
        "--batch-size", "2", "--num-workers", "0", "--steps", "3", "--log-every", "1",
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", WEIGHTS_DIGEST_ENV: str(digests)}
    # Two "machines": each torchrun is one node group; the rendezvous assigns node ranks.
    nodes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [node.communicate(timeout=300)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(e[-3000:] for e in errors)

    assert (digests / "rank0.sha256").read_text() == (digests / "rank1.sha256").read_text()
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "parser.safetensors",
        "state.pt",
        "tensorboard",
    ]
    state = load_state(out / "state.pt")
    assert state["world_size"] == 2 and state["step"] == 3
    assert sum(e.count("done: step 3") for e in errors) == 1
