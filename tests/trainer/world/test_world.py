"""The synthetic world: formats the real loaders read, splits, pairs, determinism, consistency."""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import operator
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceedit.errors import ConfigError, DatasetError
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import CLASS_INDEX, REGION_GROUPS
from trainer.data.affectnet import AffectNet
from trainer.data.celebamask import CelebAMaskHQ
from trainer.world.actions import ACTION_UNITS, PROTOTYPES, action_units, valence_arousal
from trainer.world.render import IdentityRenderer
from trainer.world.world import WorldConfig, build_world, identity_of, render_identity

COUNT, SIZE = 12, 64


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    build_world(WorldConfig(count=COUNT, size=SIZE, seed=3), out)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_celebamask_loader_reads_the_world_with_identity_splits(world: Path) -> None:
    manifest = json.loads((world / "world.json").read_text())
    splits = manifest["splits"]
    assert sorted(functools.reduce(operator.iadd, splits.values(), [])) == list(range(COUNT))
    seen: dict[str, set[int]] = {}
    for split in ("train", "val", "test"):
        ds = CelebAMaskHQ(world / "celebamask-hq", split, size=SIZE)
        assert ds.skipped == {}
        identities = {i // 2 for i in ds.ids}
        assert identities == set(splits[split])
        assert len(ds) == 2 * len(splits[split])
        seen[split] = identities
        image, labels = ds[0]
        assert image.shape == (3, SIZE, SIZE) and labels.shape == (SIZE, SIZE)
        present = set(np.unique(labels.numpy()).tolist())
        for name in (
            "background",
            "skin",
            "l_eye",
            "r_eye",
            "l_brow",
            "r_brow",
            "nose",
            "u_lip",
            "l_lip",
        ):
            assert CLASS_INDEX[name] in present, name
    assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"])
    assert not (seen["val"] & seen["test"])


def test_celebamask_masks_rebuild_the_rendered_label_map(world: Path) -> None:
    config = WorldConfig(count=COUNT, size=SIZE, seed=3)
    item = render_identity(config, 0)
    ds = CelebAMaskHQ(world / "celebamask-hq", "train", size=SIZE)
    train = json.loads((world / "world.json").read_text())["splits"]["train"]
    index = ds.ids.index(train[0] * 2)
    item = render_identity(config, train[0])
    _, labels = ds[index]
    assert np.array_equal(labels.numpy(), item.celeba[0][2].labels)


def test_affectnet_loader_reads_the_world(world: Path) -> None:
    manifest = json.loads((world / "world.json").read_text())
    train = AffectNet(world / "affectnet", "train", size=SIZE, align="landmarks")
    assert train.skipped == {}
    assert len(train) == 8 * len(manifest["splits"]["train"])
    assert sorted(set(train.targets.tolist())) == list(range(8))
    held_out = AffectNet(world / "affectnet", "val", size=SIZE)
    assert len(held_out) == 8 * (len(manifest["splits"]["val"]) + len(manifest["splits"]["test"]))
    image, expression, va = train[1]
    assert image.shape == (3, SIZE, SIZE)
    name = EXPRESSIONS[int(expression)]
    assert np.allclose(va.numpy(), valence_arousal(name, 1.0), atol=1e-4)
    names = {p.parent.name + "/" + p.name for p in train._items[0:1] for p in [Path(p.path)]}
    held = {Path(r.path).name[:6] for r in held_out._items}
    assert not held & {Path(r.path).name[:6] for r in train._items}
    assert names


def test_landmarks_sit_on_the_aligned_crop_template(world: Path) -> None:
    from faceedit.faces.align import template_landmarks

    rows = _rows(world / "affectnet/Manually_Annotated_file_lists/training.csv")
    template = template_landmarks(SIZE)
    for row in rows:
        if int(row["expression"]) != 0:
            continue
        v = np.array(row["facial_landmarks"].split(";"), dtype=float).reshape(68, 2)
        points = np.array([v[36:42].mean(0), v[42:48].mean(0), v[30], v[48], v[54]])
        assert np.abs(points - template).max() < 0.09 * SIZE


def test_pairs_are_complete_and_pixel_aligned(world: Path) -> None:
    rows = _rows(world / "pairs.csv")
    assert list(rows[0])[:5] == ["identity", "split", "expression", "intensity", "image"]
    assert len(rows) == COUNT * 8
    manifest = json.loads((world / "world.json").read_text())
    by_identity: dict[int, set[str]] = {}
    config = WorldConfig(count=COUNT, size=SIZE, seed=3)
    for row in rows:
        assert (world / row["image"]).is_file()
        assert int(row["identity"]) in manifest["splits"][row["split"]]
        if int(row["identity"]) == 0:
            rendering = render_identity(config, 0).expressions[EXPRESSIONS.index(row["expression"])]
            labels = cv2.imread(str(world / row["labels"]), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(labels, rendering.labels)
            decoded = cv2.cvtColor(cv2.imread(str(world / row["image"])), cv2.COLOR_BGR2RGB)
            assert (
                np.abs(decoded.astype(int) - rendering.image).mean() < 6.0
            )  # JPEG q95 of a noisy image
        assert float(row["intensity"]) == 1.0
        by_identity.setdefault(int(row["identity"]), set()).add(row["expression"])
    assert all(found == set(EXPRESSIONS) for found in by_identity.values())
    assert len(by_identity) == COUNT


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    digests = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        build_world(WorldConfig(count=3, size=48, seed=seed), tmp_path / name)
        digests.append(_digest(tmp_path / name))
    assert digests[0] == digests[1] != digests[2]


def test_expressions_change_only_their_regions() -> None:
    config = WorldConfig(count=COUNT, size=96, seed=1)
    region = [c for group in REGION_GROUPS.values() for c in group]
    static = [CLASS_INDEX[n] for n in ("background", "hair", "cloth", "neck", "hat")]
    for index in range(6):
        item = render_identity(config, index)
        neutral, happy = item.expressions[0], item.expressions[1]
        mouth = CLASS_INDEX["mouth"]
        assert (happy.labels == mouth).sum() > 0
        assert not np.array_equal(happy.labels == mouth, neutral.labels == mouth)
        # Parts that change, and skin (cheeks shade), blurred over at most 3 px.
        near = np.zeros_like(neutral.labels, dtype=np.uint8)
        for r in item.expressions:
            near |= np.isin(r.labels, region).astype(np.uint8)
        near = cv2.dilate(near, np.ones((9, 9), np.uint8)).astype(bool)
        skin = (neutral.labels == CLASS_INDEX["skin"]).astype(np.uint8)
        near |= cv2.dilate(skin, np.ones((7, 7), np.uint8)).astype(bool)
        for r in item.expressions[1:]:
            keep = np.isin(neutral.labels, static) & np.isin(r.labels, static) & ~near
            assert keep.sum() > 0
            assert np.array_equal(neutral.image[keep], r.image[keep])
            assert np.array_equal(neutral.labels[keep], r.labels[keep])


@pytest.mark.parametrize("expression", [e for e in EXPRESSIONS if e != "neutral"])
def test_more_intensity_more_change(expression: str) -> None:
    renderer = IdentityRenderer(identity_of(0, 4), 96)
    neutral = renderer.render(action_units("neutral")).image.astype(np.float64)
    changes = [
        np.abs(renderer.render(action_units(expression, i)).image - neutral).sum()
        for i in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert changes[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(changes)), changes


def test_expressions_differ_from_each_other_and_valence_arousal_in_range() -> None:
    item = render_identity(WorldConfig(count=3, size=64, seed=2), 0)
    images = [r.image.astype(np.int32) for r in item.expressions]
    for i in range(8):
        for j in range(i + 1, 8):
            assert np.abs(images[i] - images[j]).sum() > 0, (EXPRESSIONS[i], EXPRESSIONS[j])
    for name in PROTOTYPES:
        for intensity in (0.0, 0.5, 1.0):
            v, a = valence_arousal(name, intensity)
            assert -1 <= v <= 1 and -1 <= a <= 1
    with pytest.raises(ConfigError):
        action_units("happy", 1.5)


def test_refuses_a_non_empty_out_and_bad_config(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("keep")
    with pytest.raises(DatasetError, match="not empty"):
        build_world(WorldConfig(count=3, size=32), tmp_path / "x")
    assert (tmp_path / "x" / "f").read_text() == "keep"
    with pytest.raises(ConfigError):
        WorldConfig(count=2)
    with pytest.raises(ConfigError):
        WorldConfig(size=8)


def test_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trainer.commands.cli import main

    assert main(["synth", "--out", str(tmp_path / "w"), "--count", "3", "--size", "32"]) == 0
    assert (tmp_path / "w" / "world.json").is_file()
    assert main(["synth", "--out", str(tmp_path / "w"), "--count", "3", "--size", "32"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_landmarks_agree_with_the_label_map() -> None:
    config = WorldConfig(count=COUNT, size=128, seed=2)
    for index in range(COUNT):
        for code, rendering in enumerate(render_identity(config, index).expressions):
            points, labels = rendering.landmarks, rendering.labels

            def label_at(point: np.ndarray, labels: np.ndarray = labels) -> int:
                x, y = np.round(point).astype(int)
                return int(labels[y, x])

            assert label_at(points[36:42].mean(0)) == CLASS_INDEX["l_eye"]
            assert label_at(points[42:48].mean(0)) == CLASS_INDEX["r_eye"]
            covers = [CLASS_INDEX[n] for n in ("hair", "eye_g", "hat")]  # what may hide a brow
            assert label_at(points[19]) in (CLASS_INDEX["l_brow"], *covers)
            assert label_at(points[24]) in (CLASS_INDEX["r_brow"], *covers)
            assert label_at(points[29]) == CLASS_INDEX["nose"]
            lips = [CLASS_INDEX[n] for n in ("u_lip", "l_lip", "mouth")]
            assert label_at((points[62] + points[66]) / 2) in lips
            if EXPRESSIONS[code] == "neutral":
                assert label_at((points[51] + points[62]) / 2) == CLASS_INDEX["u_lip"]
                assert label_at((points[57] + points[66]) / 2) == CLASS_INDEX["l_lip"]
            assert points[:, 0].min() >= 0 and points[:, 1].max() < 128


@pytest.mark.parametrize("unit", sorted(ACTION_UNITS))
def test_each_action_unit_changes_more_with_more_activation(unit: str) -> None:
    renderer = IdentityRenderer(identity_of(0, 5), 96)
    neutral = renderer.render({}).image.astype(np.float64)
    changes = [np.abs(renderer.render({unit: a}).image - neutral).sum() for a in (0.3, 0.6, 1.0)]
    assert 0 < changes[0] < changes[1] < changes[2], changes


def test_data_inside_a_world_is_known_as_procedural(tmp_path: Path) -> None:
    # The gan stage writes the checkpoint's "domain" from this; `faceedit edit` reads it.
    from trainer.world.world import MANIFEST_FILE, is_world_data

    world = tmp_path / "world"
    (world / "affectnet").mkdir(parents=True)
    (world / MANIFEST_FILE).write_text("{}\n", encoding="utf-8")
    assert is_world_data(world / "affectnet") and is_world_data(world)
    assert not is_world_data(tmp_path)
