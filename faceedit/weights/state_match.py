"""How a state dict differs from the one a network expects: missing, unexpected and misshapen keys.

Checkpoints, the community-parser importer, the judge classifier and the FID network all refuse
weights that do not fit their network; finding the misfits and wording them lives here once, so
every refusal lists the same three kinds in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from torch import Tensor

SHOWN: Final[int] = 3  # how many keys of each kind a summary lists


@dataclass(frozen=True)
class StateMismatch:
    """The keys of a state dict that do not fit a network, each kind sorted."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    misshapen: tuple[str, ...] = ()  # 'key (shape in the state) != (shape in the network)'

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.misshapen)

    def summary(self, shown: int = SHOWN) -> str:
        """'2 missing (a, b); 1 misshapen (w (3,) != (4,))', listing at most `shown` of each."""
        parts = []
        for label, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("misshapen", self.misshapen),
        ):
            if keys:
                parts.append(f"{len(keys)} {label} ({listed(keys, shown)})")
        return "; ".join(parts)


def listed(keys: Sequence[str], shown: int = SHOWN) -> str:
    """'a, b, c, ... 4 more': the first `shown` keys and how many were left out."""
    more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def compare_state(
    expected: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    optional: Callable[[str], bool] | None = None,
) -> StateMismatch:
    """How `state` differs from a network's own `expected` state dict; keys for which
    `optional` is true may be missing (they must still have the right shape when present)."""
    return StateMismatch(
        missing=tuple(
            sorted(k for k in expected if k not in state and not (optional and optional(k)))
        ),
        unexpected=tuple(sorted(set(state) - set(expected))),
        misshapen=tuple(
            sorted(
                f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
                for k, v in expected.items()
                if k in state and state[k].shape != v.shape
            )
        ),
    )
