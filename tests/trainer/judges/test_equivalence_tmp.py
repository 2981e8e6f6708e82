"""TEMPORARY: the new world scorer gives the old functions' figures on a tiny world."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.inference.engine import EditEngine
from faceedit.model.config import preset
from faceedit.weights import checkpoint
from tests.factories import make_checkpoint
from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier
from trainer.world.world import WorldConfig, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eq-world") / "w"
    build_world(WorldConfig(count=10, size=64, seed=5), out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eq-models")
    tiny = preset("tiny")
    return {
        "masks": make_checkpoint(root / "m.safetensors", tiny, steps=1),
        "boxes": make_checkpoint(
            root / "b.safetensors", tiny.replace(region_source="boxes"), steps=1
        ),
        "global": make_checkpoint(root / "g.safetensors", tiny.replace(regions=()), steps=1),
    }


def judge() -> ExpressionClassifier:
    torch.manual_seed(0)
    return ExpressionClassifier(ClassifierConfig(base_channels=4, image_size=64)).eval()


def test_edit_scores_and_locality_match(world: Path, models: dict[str, Path]) -> None:
    from trainer.judges import world_scores as old
    from trainer.judges.world.editors import engine_editor
    from trainer.judges.world.held_out import load_held_out
    from trainer.judges.world.scorer import score_edits, score_locality

    j = judge()
    loaded = checkpoint.load(models["masks"])
    engine = EditEngine(loaded, device="cpu", precision="float32", optimize_networks=False)
    va = old.world_valence_arousal(world)
    table = old.held_out_identities(world, 1)
    held = load_held_out(world, 1)
    for shown in (True, False):
        for sources in (tuple(range(8)), (0,)):
            a, a_edits = old.score_edits(
                old.engine_editor(engine, va, shown), j, table, 64, sources
            )
            b, b_edits = score_edits(engine_editor(engine, va, shown), j, held, sources)
            da, db = a.to_dict(), b.to_dict()
            for key, value in da.items():
                assert db[key] == value, (key, value, db[key])
            assert set(a_edits) == set(b_edits)
            assert all(np.array_equal(a_edits[k], b_edits[k]) for k in a_edits)
    from trainer.data import CelebAMaskHQ
    from trainer.judges.evaluation import to_uint8_crops

    parsing = CelebAMaskHQ(world / "celebamask-hq", "test", size=64, augment=False)
    images, labels = zip(*(parsing[i] for i in range(len(parsing))), strict=True)
    crops = to_uint8_crops(torch.stack(images))
    labels = [lb.numpy() for lb in labels]
    la = old.score_locality(engine, crops, labels, ("mouth",), va).to_dict()
    lb = score_locality(engine, crops, labels, ("mouth",), va).to_dict()
    assert la == lb


def test_world_scorer_matches(world: Path, models: dict[str, Path], tmp_path: Path) -> None:
    from trainer.judges import world_compare as old
    from trainer.judges.comparisons import world_scorer as new

    j = judge()
    a = old.WorldScorer(world, j, identities=1, judge_accuracy=0.5, log=lambda _: None)
    b = new.WorldScorer(world, j, identities=1, judge_accuracy=0.5, log=lambda _: None)
    assert a.notes == b.notes
    for name, path in models.items():
        sa = a.score(path, tmp_path / "a" / name)
        sb = b.score(path, tmp_path / "b" / name)
        assert sa == sb, name
        assert list(sa) == list(sb)
    assert np.array_equal(a.grid(models), b.grid(models))


def test_critic_noise_matches_the_real_editor(tmp_path: Path) -> None:
    from faceedit.faces.align import align, paste_back
    from tests.trainer.fixtures import face_photo
    from tests.trainer.judges.real.conftest import fixed_face
    from trainer.judges.controls import critic_noise
    from trainer.judges.evaluation import from_uint8_crops, to_uint8_crops
    from trainer.judges.real.editors import CriticNoiseEditor

    path = make_checkpoint(tmp_path / "m.safetensors", preset("tiny"), steps=1)
    loaded = checkpoint.load(path, device="cpu")
    editor = CriticNoiseEditor(
        loaded.unified(), loaded.discriminator, loaded.config.crop_size, steps=10
    )
    photo = face_photo(0)
    face = fixed_face(photo)[0]
    old_out = editor(photo, face, "surprised").output
    alignment = align(photo, face, size=loaded.config.crop_size)
    noise = critic_noise(
        loaded.unified(),
        loaded.discriminator,
        from_uint8_crops([alignment.crop]),
        torch.tensor([3]),
        steps=10,
    )
    new_out = paste_back(photo, alignment, to_uint8_crops(noise.images)[0])
    assert np.array_equal(old_out, new_out)
    assert editor.last_critic_gain == pytest.approx((float(noise.before[0]), float(noise.after[0])))
