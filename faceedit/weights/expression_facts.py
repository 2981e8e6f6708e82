"""What a checkpoint says about each expression: whether it was trained, on how many photos,
and how often held-out edits towards it were read as it.

The table lives in a checkpoint's metadata under `expressions` (`faceedit-train bundle` writes
it): expression name -> {"trained": bool, "read_as_target": float or null, "photos": int or
null}. The app marks the untrained expressions and shows the measurements; a checkpoint without
the table behaves as before. No torch here: the window reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from faceedit.vocab.expressions import EXPRESSIONS

TABLE_KEY: Final[str] = "expressions"


@dataclass(frozen=True)
class ExpressionFacts:
    """One expression's row. read_as_target: the share of held-out edits towards it that an
    expression classifier read as it (None: not measured). photos: its training photos (None:
    not recorded)."""

    trained: bool
    read_as_target: float | None = None
    photos: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trained": self.trained,
            "read_as_target": self.read_as_target,
            "photos": self.photos,
        }


def read_facts(metadata: Mapping[str, Any]) -> dict[str, ExpressionFacts] | None:
    """The checkpoint's table, in EXPRESSIONS order; None when it has none.

    A checkpoint is untrusted input: rows for unknown expressions and rows that are not well
    formed are left out (that expression is then shown as if the table said nothing of it).
    """
    table = metadata.get(TABLE_KEY)
    if not isinstance(table, Mapping):
        return None
    facts = {}
    for name in EXPRESSIONS:
        row = _row(table.get(name))
        if row is not None:
            facts[name] = row
    return facts


def _row(raw: object) -> ExpressionFacts | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("trained"), bool):
        return None
    share, photos = raw.get("read_as_target"), raw.get("photos")
    if share is not None and not (
        isinstance(share, int | float) and not isinstance(share, bool) and 0.0 <= share <= 1.0
    ):
        return None
    if photos is not None and not (
        isinstance(photos, int) and not isinstance(photos, bool) and photos >= 0
    ):
        return None
    return ExpressionFacts(raw["trained"], None if share is None else float(share), photos)


def untrained(facts: Mapping[str, ExpressionFacts] | None) -> list[str]:
    """The expressions the table marks as not trained, in EXPRESSIONS order."""
    return [name for name, row in (facts or {}).items() if not row.trained]


def describe(name: str, row: ExpressionFacts) -> str:
    """What `row` says of expression `name`, as a phrase for a tooltip or the About dialog
    ("not trained (only 19 training photos)...")."""
    photos = "" if row.photos is None else f"{row.photos:,} training photos"
    if not row.trained:
        few = f"only {photos}" if photos else "too few training photos"
        return f"not trained ({few}, too few to learn it from): its edits are not meaningful"
    if row.read_as_target is None:
        measured = "not measured on held-out photos"
    else:
        measured = (
            f"held-out edits read as {name} {round(100 * row.read_as_target)} % of the time "
            "(by an expression classifier)"
        )
    return measured + (f"; trained on {photos}" if photos else "")
