"""A checkpoint's `expressions` table: read in the vocabulary's order, tolerant of a damaged or
hostile table (a row that is not well formed says nothing), and put in words."""

from __future__ import annotations

from faceedit.weights.expression_facts import ExpressionFacts, describe, read_facts, untrained

TABLE = {
    "fearful": {"trained": False, "read_as_target": None, "photos": 19},
    "happy": {"trained": True, "read_as_target": 0.62, "photos": 3954},
    "neutral": {"trained": True, "read_as_target": None, "photos": 4700},
}


def test_a_checkpoint_without_the_table_has_no_facts() -> None:
    assert read_facts({}) is None
    assert read_facts({"expressions": ["happy"]}) is None
    assert untrained(None) == []


def test_rows_are_read_in_the_vocabularys_order() -> None:
    facts = read_facts({"expressions": TABLE, "domain": "photos"})
    assert facts is not None
    assert list(facts) == ["neutral", "happy", "fearful"]
    assert facts["happy"] == ExpressionFacts(True, 0.62, 3954)
    assert facts["fearful"] == ExpressionFacts(False, None, 19)
    assert untrained(facts) == ["fearful"]
    assert {n: r.to_dict() for n, r in facts.items()} == {n: TABLE[n] for n in facts}


def test_rows_that_are_not_well_formed_are_left_out() -> None:
    table = {
        "happy": {"trained": "yes", "read_as_target": 0.5, "photos": 3},  # trained not a bool
        "sad": {"trained": True, "read_as_target": 1.5, "photos": 3},  # share outside [0, 1]
        "angry": {"trained": True, "read_as_target": 0.1, "photos": -1},  # negative count
        "disgusted": {"trained": True, "read_as_target": True, "photos": 3},  # a bool share
        "surprised": {"trained": True, "read_as_target": 0.4, "photos": True},  # a bool count
        "neutral": "trained",
        "smug": {"trained": True},  # not an expression faceedit knows
        "contemptuous": {"trained": False},  # the other fields may be missing
    }
    facts = read_facts({"expressions": table})
    assert facts == {"contemptuous": ExpressionFacts(False, None, None)}


def test_each_row_is_said_in_words() -> None:
    assert describe("fearful", ExpressionFacts(False, None, 19)).startswith(
        "not trained (only 19 training photos, too few to learn it from)"
    )
    assert "too few training photos" in describe("fearful", ExpressionFacts(False))
    said = describe("happy", ExpressionFacts(True, 0.62, 3954))
    assert "read as happy 62 % of the time" in said and "3,954 training photos" in said
    assert describe("sad", ExpressionFacts(True, None, None)) == "not measured on held-out photos"
