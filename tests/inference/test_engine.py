from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.errors import FaceEditError, InputError
from faceedit.inference.edit_weights import EDIT_FLOOR, edit_share
from faceedit.inference.engine import EditEngine
from tests.factories import make_checkpoint, synthetic_faces


def crop_of(size: int, seed: int = 0) -> np.ndarray:
    x = synthetic_faces(1, size, seed)[0]
    return ((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> EditEngine:
    return EditEngine.load(tiny_model, device="cpu")


def test_empty_engine_says_what_is_missing() -> None:
    empty = EditEngine.empty(device="cpu")
    caps = empty.capabilities
    assert not (caps.can_parse or caps.can_edit or caps.can_score)
    assert "faceedit-train" in caps.missing[0] and "import-parser" in caps.missing[0]
    with pytest.raises(FaceEditError, match="No model is loaded"):
        empty.edit(crop_of(32), {"happy": 1})


def test_parser_only_checkpoint_parses_but_does_not_edit(tiny_parser: Path) -> None:
    engine = EditEngine.load(tiny_parser, device="cpu")
    assert engine.capabilities.can_parse and not engine.capabilities.can_edit
    assert any("gan" in m for m in engine.capabilities.missing)
    parsing = engine.parse(crop_of(32))
    assert parsing.probabilities.shape == (19, 32, 32) and parsing.region_masks.shape == (4, 32, 32)
    with pytest.raises(FaceEditError, match="no expression generator"):
        engine.edit(crop_of(32), {"happy": 1})


def test_parse_shapes_and_probabilities(engine: EditEngine) -> None:
    parsing = engine.parse(crop_of(32))
    assert parsing.labels.shape == (32, 32) and parsing.labels.dtype == np.uint8
    np.testing.assert_allclose(parsing.probabilities.sum(0), 1.0, atol=1e-4)
    assert parsing.region_masks.min() >= 0 and parsing.region_masks.max() <= 1


def test_edit_uses_the_cached_parse(engine: EditEngine) -> None:
    crop = crop_of(32, seed=3)
    engine.clear_cache()
    first = engine.edit(crop, {"happy": 1.0})
    second = engine.edit(crop, {"surprised": 1.0})
    assert first.timings["parse"] > 0 and second.timings["parse"] == 0.0
    assert first.crop.shape == (32, 32, 3) and first.crop.dtype == np.uint8
    assert first.attention.shape == (5, 32, 32)
    assert not np.array_equal(first.crop, second.crop), (
        "different targets must give different edits"
    )


def test_region_conditions_and_lock(engine: EditEngine) -> None:
    crop = crop_of(32, seed=4)
    plain = engine.edit(crop, {"happy": 1.0})
    per_region = engine.edit(crop, {"happy": 1.0}, region_conditions={"eyes": {"surprised": 1.0}})
    assert not np.array_equal(plain.crop, per_region.crop)
    locked = engine.edit(crop, {"happy": 1.0}, editable_regions=["mouth"])
    # The lock blends towards the input by the editable soft union: locked - x = U * (free - x).
    union = locked.region_masks[engine.regions.index("mouth")][..., None]
    x, free, kept = (a.astype(np.float64) for a in (crop, plain.crop, locked.crop))
    assert np.abs((kept - x) - union * (free - x)).max() <= 1.0 + 1e-6
    assert np.abs(kept - x).sum() < np.abs(free - x).sum()
    with pytest.raises(FaceEditError, match="unknown region"):
        engine.edit(crop, {"happy": 1.0}, editable_regions=["chin"])


def test_other_crop_sizes_are_resized(engine: EditEngine) -> None:
    result = engine.edit(crop_of(48), {"sad": 0.5})
    assert result.crop.shape == (48, 48, 3)
    assert result.weight is not None and result.weight.shape == (48, 48)


def test_edit_returns_where_it_edits_for_paste_back(engine: EditEngine) -> None:
    crop = crop_of(32, seed=5)
    free = engine.edit(crop, {"happy": 1.0})
    assert free.lock is None and free.weight is not None
    assert free.weight.shape == (32, 32) and free.weight.dtype == np.float32
    assert free.weight.min() >= 0 and free.weight.max() <= 1
    # The weight follows the attention: composed through the hierarchy, it is the share of each
    # pixel the editors take from their colour images, gated (edit_weights.edit_weight).
    share = edit_share(
        torch.from_numpy(free.attention)[None, :, None], torch.from_numpy(free.region_masks)[None]
    )[0].numpy()
    assert np.array_equal(free.weight > 0, share > EDIT_FLOOR)
    locked = engine.edit(crop, {"happy": 1.0}, editable_regions=["mouth", "eyes"])
    masks = locked.region_masks
    union = np.clip(
        masks[engine.regions.index("mouth")] + masks[engine.regions.index("eyes")], 0, 1
    )
    assert locked.lock is not None and np.allclose(locked.lock, union, atol=1e-6)
    batch = engine.edit_batch([crop], {"happy": 1.0}, editable_regions=["mouth"])[0]
    assert batch.weight is not None and batch.lock is not None and batch.lock.shape == (32, 32)


def test_batch_matches_single(engine: EditEngine) -> None:
    crops = [crop_of(32, seed=s) for s in range(3)]
    batch = engine.edit_batch(crops, {"angry": 1.0})
    for crop, result in zip(crops, batch, strict=True):
        single = engine.edit(crop, {"angry": 1.0})
        assert np.abs(single.crop.astype(int) - result.crop.astype(int)).max() <= 1


def test_expression_scores(engine: EditEngine) -> None:
    scores = engine.expression_scores(crop_of(32))
    assert scores is not None and scores.shape == (8,)
    assert scores.sum() == pytest.approx(1.0, abs=1e-5)


def test_bad_crops_and_conditions(engine: EditEngine) -> None:
    with pytest.raises(InputError, match="uint8"):
        engine.edit(np.zeros((32, 32), np.uint8), {"happy": 1})
    with pytest.raises(InputError):
        engine.edit(np.zeros((32, 32, 3), np.float32), {"happy": 1})
    with pytest.raises(ValueError, match="unknown expression"):
        engine.edit(crop_of(32), {"gleeful": 1})


def test_cuda_request_without_gpu_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FaceEditError, match="no usable GPU"):
        EditEngine.empty(device="cuda")
    assert EditEngine.empty(device="auto").device.type == "cpu"


def test_keypoint_box_model_without_parser_edits_but_does_not_pretend_to_parse(
    tmp_path: Path,
) -> None:
    from faceedit.model.config import preset

    config = preset("tiny").replace(region_source="boxes")
    path = make_checkpoint(
        tmp_path / "boxes.safetensors", config=config, parts=("generator",), steps=1
    )
    engine = EditEngine.load(path, device="cpu")
    assert engine.capabilities.can_edit and not engine.capabilities.can_parse
    result = engine.edit(crop_of(32), {"happy": 1.0})
    assert set(np.unique(result.region_masks)) <= {0.0, 1.0}, "box regions are hard masks"
    with pytest.raises(FaceEditError, match="no face parser"):
        engine.parse(crop_of(32))


def test_batch_edits_of_a_keypoint_box_model_use_each_crops_landmarks(tmp_path: Path) -> None:
    """edit_batch used to run region_masks without landmarks, which a box model refuses; now
    each crop may bring its own points (scaled from the crop's size), else the template's."""
    from faceedit.faces.align import template_landmarks
    from faceedit.model.config import preset

    config = preset("tiny").replace(region_source="boxes")
    path = make_checkpoint(
        tmp_path / "boxes.safetensors", config=config, parts=("generator",), steps=1
    )
    engine = EditEngine.load(path, device="cpu")
    crops = [crop_of(64), crop_of(64)]
    template = engine.edit_batch(crops, {"happy": 1.0})
    single = engine.edit(crops[0], {"happy": 1.0})
    np.testing.assert_array_equal(template[0].region_masks, single.region_masks)
    moved = template_landmarks(64) + np.array([8.0, 0.0])  # the face 8 px to the right
    own = engine.edit_batch(crops, {"happy": 1.0}, landmarks=[template_landmarks(64), moved])
    np.testing.assert_array_equal(own[0].region_masks, template[0].region_masks)
    assert not np.array_equal(own[1].region_masks, template[1].region_masks)
    with pytest.raises(InputError, match="one \\(5, 2\\) landmark array per crop"):
        engine.edit_batch(crops, {"happy": 1.0}, landmarks=[moved])
