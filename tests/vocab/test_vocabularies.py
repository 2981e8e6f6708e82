from __future__ import annotations

import numpy as np
import pytest

from faceedit.vocab import expressions, labels


def test_classes_follow_face_parsing_order() -> None:
    assert labels.NUM_CLASSES == 19
    assert labels.CLASS_NAMES[0] == "background"
    assert labels.CLASS_NAMES[10] == "nose"
    assert labels.CLASS_NAMES[13] == "l_lip"
    assert labels.CLASS_NAMES[18] == "hat"
    assert len(labels.CLASS_COLORS) == 19
    assert len(set(labels.CLASS_COLORS)) == 19, "each class needs its own colour"


def test_region_groups_match_design() -> None:
    assert labels.REGION_GROUPS == {
        "brows": (2, 3),
        "eyes": (4, 5, 6),
        "nose": (10,),
        "mouth": (11, 12, 13),
    }
    with pytest.raises(ValueError, match="unknown region"):
        labels.region_classes(("chin",))


def test_flip_permutation_swaps_left_and_right() -> None:
    perm = labels.flip_permutation()
    assert perm[2] == 3 and perm[3] == 2 and perm[4] == 5 and perm[7] == 8
    assert perm[10] == 10
    np.testing.assert_array_equal(perm[perm], np.arange(19))


def test_expression_maps() -> None:
    assert expressions.EXPRESSIONS[:3] == ("neutral", "happy", "sad")
    assert [expressions.affectnet_to_index(c) for c in range(8)] == list(range(8))
    assert all(expressions.affectnet_to_index(c) is None for c in (8, 9, 10))
    with pytest.raises(ValueError):
        expressions.affectnet_to_index(11)
    assert expressions.rafd_to_index("contemptuous") == 7
    assert expressions.rafd_to_index("Surprised") == 3
    with pytest.raises(ValueError, match="unknown RaFD"):
        expressions.rafd_to_index("bored")


def test_condition_vector_and_spec() -> None:
    spec = expressions.parse_expression_spec("happy=0.8, surprised=0.2")
    vec = expressions.condition_vector(spec)
    assert vec.dtype == np.float32 and vec[1] == pytest.approx(0.8) and vec[3] == pytest.approx(0.2)
    assert expressions.condition_vector(spec, (2.0, -0.5)).tolist()[-2:] == [1.0, -0.5]
    assert expressions.parse_expression_spec("angry") == {"angry": 1.0}
    with pytest.raises(ValueError, match="unknown expression"):
        expressions.parse_expression_spec("joyful=1")
    with pytest.raises(ValueError, match=">= 0"):
        expressions.condition_vector({"happy": -1})
