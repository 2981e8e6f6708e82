"""AffectNet loader (CSV filtering, malformed rows, crops, alignment) and class-balanced sampling."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from faceedit.errors import DatasetError
from faceedit.vocab.expressions import EXPRESSION_INDEX
from tests.trainer.fixtures import BACKGROUND, BOX_COLOUR, AffectNetRow, write_affectnet
from trainer.data import AffectNet, DistributedWeightedSampler, class_balanced_weights


def colour(image: torch.Tensor, y: int, x: int) -> np.ndarray:
    return ((image[:, y, x].numpy() + 1) * 127.5).round()


def test_rows_are_filtered_and_malformed_ones_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trainer.data")
    good = AffectNetRow("10/a.jpg", expression=1).fields()
    rows = [
        AffectNetRow("10/a.jpg", expression=1),
        AffectNetRow("10/b.jpg", expression=7),
        AffectNetRow("11/c.jpg", expression=0),
        AffectNetRow("11/d.jpg", expression=8),
        AffectNetRow("11/e.jpg", expression=9),
        AffectNetRow("11/f.jpg", expression=10),
        AffectNetRow("12/g.jpg", box=(4, 4, 0, 20)),
        AffectNetRow("12/h.jpg", box=(4, 4, -1, 20)),
        AffectNetRow("12/i.jpg", write_image=False),
        "12/j.jpg,1,2,3",  # wrong column count
        [*good[:1], "abc", *good[2:]],  # non-numeric face_x
        [*good[:5], ";".join(["1.0"] * 135), *good[6:]],  # 135 landmark numbers
        [*good[:6], "11", *good[7:]],  # expression outside 0..10
        [*good[:7], "oops", *good[8:]],  # non-numeric valence
    ]
    write_affectnet(tmp_path, rows)
    ds = AffectNet(tmp_path, "train", size=32)
    assert [r.path.name for r in ds._items] == ["a.jpg", "b.jpg", "c.jpg"]
    assert ds.targets.tolist() == [EXPRESSION_INDEX["happy"], 7, EXPRESSION_INDEX["neutral"]]
    assert ds.skipped == {
        "expression 8-10 (none, uncertain, no face)": 3,
        "no face box (face_width or face_height <= 0)": 2,
        "missing image": 1,
        "wrong column count": 1,
        "non-numeric field": 2,
        "wrong number of landmarks": 1,
        "unknown expression code": 1,
    }
    examples = {e.reason: e for e in ds.skipped_examples}
    assert examples["wrong column count"].item == "training.csv:11"
    assert "135 numbers" in examples["wrong number of landmarks"].detail
    assert "i.jpg" in examples["missing image"].item
    assert "wrong number of landmarks" in caplog.text and "training.csv:13" in caplog.text


def test_missing_valence_arousal_become_nan(tmp_path: Path) -> None:
    rows = [
        AffectNetRow("1/a.jpg", valence=0.5, arousal=-0.25),
        AffectNetRow("1/b.jpg", valence=-2, arousal=0.3),
        AffectNetRow("1/c.jpg", valence=-2, arousal=-2),
        AffectNetRow("1/d.jpg", valence=1.5),  # out of range: a bad row
    ]
    write_affectnet(tmp_path, rows)
    ds = AffectNet(tmp_path, "train", size=32)
    assert len(ds) == 3 and ds.skipped == {"valence/arousal out of range": 1}
    image, expression, va = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert expression.dtype == torch.int64 and expression.item() == EXPRESSION_INDEX["happy"]
    assert va.dtype == torch.float32 and va.tolist() == [0.5, -0.25]
    assert math.isnan(ds[1][2][0]) and ds[1][2][1].item() == pytest.approx(0.3)
    assert torch.isnan(ds[2][2]).all()
    assert ds.has_valence_arousal.tolist() == [True, False, False]


def test_box_crop_with_margin_and_at_the_border(tmp_path: Path) -> None:
    rows = [
        AffectNetRow("1/a.jpg", box=(16, 12, 32, 32)),
        AffectNetRow("1/b.jpg", box=(48, 40, 24, 24)),  # past the 64 x 56 image's corner
    ]
    write_affectnet(tmp_path, rows)
    tight = AffectNet(tmp_path, "train", size=32, margin=0.0)[0][0]
    assert np.abs(((tight + 1) * 127.5).reshape(3, -1).mean(1).numpy() - BOX_COLOUR).max() < 6
    loose = AffectNet(tmp_path, "train", size=48, margin=0.25)  # 32 px box -> 48 px square
    image = loose[0][0]
    assert np.abs(colour(image, 24, 24) - BOX_COLOUR).max() < 6
    assert np.abs(colour(image, 3, 3) - BACKGROUND).max() < 6  # the margin shows background
    assert np.abs(colour(image, 9, 24) - BOX_COLOUR).max() < 6  # the box starts at 8 px
    assert np.abs(colour(image, 6, 24) - BACKGROUND).max() < 6
    corner = AffectNet(tmp_path, "train", size=24, margin=0.0)[1][0]
    assert np.abs(colour(corner, 8, 8) - BOX_COLOUR).max() < 6
    assert colour(corner, 23, 23).max() == 0  # beyond the image: black padding


def test_landmark_alignment_gives_the_requested_size(tmp_path: Path) -> None:
    write_affectnet(tmp_path, [AffectNetRow("1/a.jpg", box=(16, 12, 32, 32))])
    ds = AffectNet(tmp_path, "train", size=48, align="landmarks")
    assert ds._items[0].points.shape == (5, 2)
    np.testing.assert_allclose(ds._items[0].points[2], (32, 31.2), atol=0.01)  # nose tip
    image, _, _ = ds[0]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert np.abs(colour(image, 24, 24) - BOX_COLOUR).max() < 6  # the face stays centred


def test_already_aligned_images_are_resized_whole(tmp_path: Path) -> None:
    """align="aligned" (the world's renderings) ignores the face box and the landmarks: the
    image's centred square is the crop, with no expression-dependent warp (landmark alignment
    fits the mouth corners, which an expression moves)."""
    box = (16.0, 12.0, 32.0, 32.0)
    write_affectnet(tmp_path, [AffectNetRow("1/a.jpg", box=box)], image_size=(64, 56))
    ds = AffectNet(tmp_path, "train", size=28, align="aligned")
    image, _, _ = ds[0]
    assert image.shape == (3, 28, 28)
    # the 56 x 56 centred square (x from 4) at half size: the box's 16 px edge lands at 6
    assert np.abs(colour(image, 14, 14) - BOX_COLOUR).max() < 6
    assert np.abs(colour(image, 14, 3) - BACKGROUND).max() < 6
    assert np.abs(colour(image, 14, 7) - BOX_COLOUR).max() < 6
    ds.return_points = True  # as with align="box", the points are not parsed
    assert torch.isnan(ds[0][3]).all()


def test_non_numeric_landmarks_are_caught_when_aligning(tmp_path: Path) -> None:
    good = AffectNetRow("1/a.jpg").fields()
    marks = good[5].split(";")
    marks[2 * 48] = "x"  # x of the left mouth corner, used by the alignment
    write_affectnet(tmp_path, [AffectNetRow("1/a.jpg"), [*good[:5], ";".join(marks), *good[6:]]])
    assert AffectNet(tmp_path, "train", align="landmarks").skipped == {"non-numeric field": 1}


def test_test_split_reads_the_validation_list(tmp_path: Path) -> None:
    write_affectnet(tmp_path, [AffectNetRow("1/a.jpg")], split="train")
    write_affectnet(tmp_path, [AffectNetRow("2/v.jpg"), AffectNetRow("2/w.jpg")], split="val")
    assert len(AffectNet(tmp_path, "train")) == 1
    assert len(AffectNet(tmp_path, "val")) == 2
    assert [r.path.name for r in AffectNet(tmp_path, "test")._items] == ["v.jpg", "w.jpg"]


def test_missing_list_and_wrong_header_are_explained(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"Manually_Annotated_file_lists/training\.csv"):
        AffectNet(tmp_path, "train")
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    (lists / "validation.csv").write_text("image,label\n1/a.jpg,1\n")
    with pytest.raises(DatasetError, match="has header"):
        AffectNet(tmp_path, "val")


def test_unreadable_image_is_replaced_at_load_time(tmp_path: Path) -> None:
    paths = write_affectnet(tmp_path, [AffectNetRow("1/a.jpg"), AffectNetRow("1/b.jpg")])
    paths[0].write_bytes(b"\xff\xd8 truncated")
    ds = AffectNet(tmp_path, "train", size=16)
    assert torch.equal(ds[0][0], ds[1][0])
    assert ds.skipped == {"unreadable file": 1}


# ------------------------------------------------------------------------------- sampling


class Labelled:
    def __init__(self, targets: list[int]) -> None:
        self.targets = np.asarray(targets)

    def __len__(self) -> int:
        return len(self.targets)


def test_class_balanced_weights_are_inverse_to_class_frequency() -> None:
    targets = [1] * 6 + [2] * 2 + [6]
    weights = class_balanced_weights(Labelled(targets))
    assert weights.dtype == torch.float64 and weights.shape == (9,)
    assert weights[0] / weights[6] == pytest.approx(2 / 6)
    assert weights[8] / weights[0] == pytest.approx(6.0)
    per_class = [float(weights[torch.tensor(targets) == c].sum()) for c in (1, 2, 6)]
    assert per_class == pytest.approx([3.0, 3.0, 3.0])
    subset = class_balanced_weights(Subset(Labelled(targets), [0, 1, 8]))
    assert subset.tolist() == pytest.approx([0.75, 0.75, 1.5])


def test_classes_below_the_minimum_are_never_drawn() -> None:
    targets = [1] * 6 + [2] * 2 + [6]
    weights = class_balanced_weights(Labelled(targets), min_count=2)
    assert weights[8] == 0.0  # the one image of class 6
    per_class = [float(weights[torch.tensor(targets) == c].sum()) for c in (1, 2)]
    assert per_class == pytest.approx([4.0, 4.0])  # the 8 drawn samples average weight 1
    with pytest.raises(ValueError, match="at least 7 samples"):
        class_balanced_weights(Labelled(targets), min_count=7)


def test_class_balanced_weights_from_a_real_loader(tmp_path: Path) -> None:
    write_affectnet(tmp_path, [AffectNetRow(f"1/{k}.jpg", expression=k % 3 // 2) for k in range(6)])
    ds = AffectNet(tmp_path, "train")
    assert ds.targets.tolist() == [0, 0, 1, 0, 0, 1]
    assert class_balanced_weights(ds).tolist() == pytest.approx([0.75, 0.75, 1.5, 0.75, 0.75, 1.5])


def test_distributed_sampler_ranks_are_disjoint_and_deterministic() -> None:
    weights = torch.tensor([1.0, 0.0, 2.0, 3.0, 1.0, 1.0, 4.0, 0.5, 2.0, 1.0, 1.0, 0.0])
    shares = [
        list(DistributedWeightedSampler(weights, num_replicas=3, rank=r, replacement=False, seed=5))
        for r in range(3)
    ]
    assert [len(s) for s in shares] == [3, 3, 3]  # 10 positive weights // 3 ranks
    flat = [i for share in shares for i in share]
    assert len(set(flat)) == 9 and not {1, 11} & set(flat)  # disjoint; zero weights never drawn
    again = DistributedWeightedSampler(weights, num_replicas=3, rank=1, replacement=False, seed=5)
    assert list(again) == shares[1]
    epochs = set()
    for epoch in range(4):
        again.set_epoch(epoch)
        epochs.add(tuple(again))
    assert len(epochs) > 1
    # With replacement the ranks take interleaved slices of the one draw a single process makes.
    single = list(DistributedWeightedSampler(weights, num_samples=12, num_replicas=1, rank=0))
    ranks = [list(DistributedWeightedSampler(weights, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4]
    assert [ranks[k % 3][k // 3] for k in range(12)] == single


def test_distributed_sampler_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError, match="rank"):
        DistributedWeightedSampler(torch.ones(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="without replacement"):
        DistributedWeightedSampler(
            torch.ones(4), num_samples=3, num_replicas=2, rank=0, replacement=False
        )
    with pytest.raises(ValueError, match="positive"):
        DistributedWeightedSampler(torch.zeros(4), num_replicas=1, rank=0)


def test_batches_through_a_dataloader_with_balanced_sampling(tmp_path: Path) -> None:
    import pickle

    from torch.utils.data import DataLoader, WeightedRandomSampler

    rows = [AffectNetRow(f"1/{k}.jpg", expression=0 if k < 6 else 3, valence=-2) for k in range(8)]
    write_affectnet(tmp_path, rows)
    ds = AffectNet(tmp_path, "train", size=16)
    assert len(pickle.loads(pickle.dumps(ds))) == 8  # spawn-started workers get a copy
    weights = class_balanced_weights(ds)
    sampler = WeightedRandomSampler(weights, 200, generator=torch.Generator().manual_seed(0))
    drawn = ds.targets[list(sampler)]
    assert 0.35 < np.mean(drawn == 3) < 0.65  # 2 of 8 rows, drawn about half the time
    images, expressions, va = next(iter(DataLoader(ds, batch_size=4, sampler=sampler)))
    assert images.shape == (4, 3, 16, 16) and expressions.shape == (4,) and va.shape == (4, 2)
    assert torch.isnan(va[:, 0]).all()


def test_each_face_brings_its_own_keypoints_in_crop_pixels(tmp_path: Path) -> None:
    """With return_points the loader gives each face's 5 points moved by the crop's own
    transform (align="landmarks"): two faces of different shape get different points, both
    where the similarity puts them, not the template's."""
    from faceedit.faces.align import estimate_similarity, template_landmarks
    from tests.trainer.fixtures import synthetic_landmarks
    from trainer.data.affectnet import five_points

    wide = synthetic_landmarks((16, 12, 32, 32))
    wide[48], wide[54] = wide[48] - (4, 0), wide[54] + (4, 0)  # a wider mouth
    rows = [AffectNetRow("1/a.jpg"), AffectNetRow("1/b.jpg", landmarks=wide)]
    write_affectnet(tmp_path, rows)
    ds = AffectNet(tmp_path, "train", size=48, align="landmarks")
    assert len(ds[0]) == 3  # off by default: the usual triple
    ds.return_points = True
    points = [ds[i][3].numpy() for i in range(2)]
    for record, got in zip(ds._items, points, strict=True):
        matrix = estimate_similarity(record.points, template_landmarks(48))
        expected = record.points @ matrix[:, :2].T + matrix[:, 2]
        np.testing.assert_allclose(got, expected, atol=1e-3)
    mouth = [np.linalg.norm(p[4] - p[3]) for p in points]
    assert mouth[1] > mouth[0] + 1.0  # each face's own mouth, not one template for all
    assert five_points(wide).shape == (5, 2)


def test_box_crops_move_points_with_the_pixels_and_say_when_there_are_none(
    tmp_path: Path,
) -> None:
    from trainer.data.common import box_crop_points

    box = (16.0, 12.0, 32.0, 32.0)
    same = box_crop_points(np.array([[20.0, 15.0]]), box, 0.0, 32)  # scale 1: a shift
    np.testing.assert_allclose(same, [[4.0, 3.0]])
    double = box_crop_points(np.array([[20.0, 15.0]]), box, 0.0, 64)  # pixel centres scale
    np.testing.assert_allclose(double, [[8.5, 6.5]])
    write_affectnet(tmp_path, [AffectNetRow("1/a.jpg", box=box)])
    ds = AffectNet(tmp_path, "train", size=32, align="box")  # points are not parsed here
    ds.return_points = True
    assert torch.isnan(ds[0][3]).all()
