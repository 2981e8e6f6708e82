"""Prepared shards: `prepare` reproduces the raw loaders' samples, resumes, counts bad rows, and
the EndlessLoader reads them rank by rank and resumes at the exact sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.errors import ConfigError, DatasetError
from tests.trainer.fixtures import AffectNetRow, write_affectnet, write_celebamask_hq
from trainer.commands.cli import main
from trainer.data import (
    AffectNet,
    CelebAMaskHQ,
    ShardExpressions,
    ShardParsing,
    build_expression_dataset,
    class_balanced_weights,
    open_parsing_dataset,
)
from trainer.data.celebamask import augment_pair
from trainer.data.common import AugmentConfig, item_rng
from trainer.data.prepare import PrepareOptions, prepare
from trainer.stages.distributed import DistInfo
from trainer.stages.loop import EndlessLoader

SIZE = 32
# Small shards, so a dozen faces make several of them.
SHARD_BYTES = 4 * SIZE * SIZE * 4


def celeb(tmp_path: Path, count: int = 20) -> Path:
    root = tmp_path / "celeb"
    write_celebamask_hq(root, range(count))
    return root


def options(root: Path, **kw: object) -> PrepareOptions:
    return PrepareOptions("celebamask-hq", str(root), SIZE, shard_bytes=SHARD_BYTES, **kw)  # type: ignore[arg-type]


def info(rank: int = 0, world: int = 1) -> DistInfo:
    return DistInfo(rank=rank, world_size=world, local_rank=rank, device=torch.device("cpu"))


def test_shards_hold_the_raw_loaders_samples_and_augment_them_alike(tmp_path: Path) -> None:
    root = celeb(tmp_path)
    manifest = prepare(options(root), tmp_path / "out")
    assert manifest is not None and manifest.kind == "celebamask-hq"
    assert len(manifest.splits["train"]) > 1, "several shards"
    raw = CelebAMaskHQ(root, "train", size=SIZE)
    shards = ShardParsing(tmp_path / "out", "train", size=SIZE)
    source = np.load(tmp_path / "out" / "train" / "source_index.npy")
    assert len(shards) == len(raw) and sorted(source.tolist()) == list(range(len(raw)))
    assert source.tolist() != list(range(len(raw))), "stored in a shuffled order"
    for i in range(len(shards)):
        image, labels = shards[i]
        raw_image, raw_labels = raw[int(source[i])]
        assert torch.equal(image, raw_image) and torch.equal(labels, raw_labels)
    # Augmented: the raw loader's augmentation with this sample's draws.
    augmented = ShardParsing(tmp_path / "out", "train", size=SIZE, augment=True, seed=3)
    image8, labels8 = augmented.load_uint8(epoch=2, index=5)
    plain = raw.prepared_arrays(int(source[5]))
    want_image, want_labels = augment_pair(*plain, item_rng(3, 2, 5), AugmentConfig())
    assert torch.equal(image8, torch.from_numpy(want_image.transpose(2, 0, 1).copy()))
    assert torch.equal(labels8, torch.from_numpy(want_labels))
    # The stages' entry point picks the shards for a prepared folder.
    assert isinstance(open_parsing_dataset(tmp_path / "out", "val", SIZE), ShardParsing)


def test_an_interrupted_prepare_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    root = celeb(tmp_path)
    straight = prepare(options(root), tmp_path / "straight")
    assert prepare(options(root), tmp_path / "resumed", stop_after_shards=2) is None
    with pytest.raises(DatasetError, match="resume"):
        ShardParsing(tmp_path / "resumed", "train", SIZE)  # not finished: a clear message
    with pytest.raises(ConfigError, match="seed"):
        prepare(options(root, seed=1), tmp_path / "resumed")  # other options: refused
    resumed = prepare(options(root), tmp_path / "resumed")
    assert resumed == straight
    files = sorted(
        p.relative_to(tmp_path / "straight") for p in (tmp_path / "straight").rglob("*.npy")
    )
    assert files
    for name in files:
        assert (tmp_path / "straight" / name).read_bytes() == (
            tmp_path / "resumed" / name
        ).read_bytes()


def test_bad_files_are_skipped_and_counted(tmp_path: Path) -> None:
    root = celeb(tmp_path)
    (root / "CelebA-HQ-img" / "3.jpg").write_bytes(b"not a jpeg")
    manifest = prepare(options(root, splits=("train", "val", "test")), tmp_path / "out")
    assert manifest is not None
    assert sum(sum(s) for s in manifest.splits.values()) == 19
    assert sum(r.get("unreadable file", 0) for r in manifest.skipped.values()) == 1


def test_prepare_command_then_expression_shards(tmp_path: Path) -> None:
    rows = [AffectNetRow(path=f"a/f{i}.jpg", expression=i % 4) for i in range(12)]
    write_affectnet(tmp_path / "affectnet", rows)
    write_affectnet(tmp_path / "affectnet", rows[:4], split="val")
    out = tmp_path / "prepared"
    flags = ["prepare", "--affectnet", str(tmp_path / "affectnet"), "--out", str(out)]
    assert main([*flags, "--size", "32", "--workers", "0", "--splits", "train,val"]) == 0
    data = build_expression_dataset("affectnet", out, "train", 32, seed=0)
    assert isinstance(data, ShardExpressions)
    raw = AffectNet(tmp_path / "affectnet", "train", size=32)
    source = np.load(out / "train" / "source_index.npy")
    np.testing.assert_array_equal(data.targets, raw.targets[source])
    image, expression, va = data[0]
    raw_image, raw_expression, raw_va = raw[int(source[0])]
    assert torch.equal(image, raw_image) and expression == raw_expression
    assert torch.equal(va.isnan(), raw_va.isnan())
    assert class_balanced_weights(data).shape == (12,)
    with pytest.raises(ConfigError, match="align"):
        build_expression_dataset("affectnet", out, "train", 32, align="landmarks")
    with pytest.raises(DatasetError, match="celebamask-hq"):
        open_parsing_dataset(out, "train", 32)
    # Running it again on a finished folder does nothing.
    assert main([*flags, "--size", "32", "--workers", "0", "--splits", "train,val"]) == 0
    assert json.loads((out / "faceedit-shards.json").read_text())["splits"]["val"] == [4]


def test_each_rank_reads_its_own_shards_and_all_ranks_cover_the_epoch(tmp_path: Path) -> None:
    prepare(options(celeb(tmp_path, 40)), tmp_path / "out")
    data = ShardParsing(tmp_path / "out", "train", SIZE)
    starts = data.starts
    orders = [EndlessLoader(data, 2, seed=1, info=info(r, 2)).epoch_order(3) for r in (0, 1)]
    assert len(orders[0]) == len(orders[1])
    assert not set(orders[0]) & set(orders[1])
    assert len(set(orders[0]) | set(orders[1])) >= len(data) - 1  # padding repeats at most one
    shards_read = [{int(np.searchsorted(starts, i, side="right")) - 1 for i in o} for o in orders]
    assert all(len(s) <= -(-len(data.shard_sizes) // 2) + 1 for s in shards_read)
    assert orders[0] != EndlessLoader(data, 2, seed=1, info=info(0, 2)).epoch_order(4)


@pytest.mark.parametrize("workers", [0, 1])
def test_the_loader_resumes_at_the_exact_sample(tmp_path: Path, workers: int) -> None:
    prepare(options(celeb(tmp_path)), tmp_path / "out")
    data = ShardParsing(tmp_path / "out", "train", SIZE, augment=True)
    straight = EndlessLoader(data, 3, seed=5, info=info(), num_workers=workers)
    expected = [next(straight) for _ in range(9)]  # crosses an epoch (5 batches each)
    first = EndlessLoader(data, 3, seed=5, info=info(), num_workers=workers)
    for _ in range(4):
        next(first)
    resumed = EndlessLoader(data, 3, seed=5, info=info(), num_workers=workers)
    resumed.load_state_dict(first.state_dict())
    for want in expected[4:]:
        got = next(resumed)
        assert got[0].dtype == torch.float32 and got[1].dtype == torch.int64
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
