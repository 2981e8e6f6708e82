"""The plain data the app and the inference side exchange: what is asked, what the model can do.

torch-free on purpose (docs/architecture.md §2): the UI builds requests and reads capabilities
on its own thread, and importing the engine there would load torch (1.6-1.8 s) before the
window shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

# When a stream's faces are parsed: on every frame, or only on frames where the detector ran
# (in between, the tracked face keeps its masks: the aligned crop holds it in place, so only
# its expression can move the parts, and for at most detect_every - 1 frames).
ReparsePolicy = Literal["every_frame", "on_detection"]
REPARSE_POLICIES: Final[tuple[ReparsePolicy, ...]] = get_args(ReparsePolicy)

CompileState = Literal["off", "compiling", "ready", "failed"]


@dataclass(frozen=True)
class EditRequest:
    """What the user asked for: a target expression mixture, per-region targets, a region lock."""

    condition: Mapping[str, float] = field(default_factory=dict)
    region_conditions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    editable_regions: tuple[str, ...] | None = None
    valence_arousal: tuple[float, float] | None = None
    face_index: int | None = None  # None: the largest face
    all_faces: bool = False

    @property
    def is_identity(self) -> bool:
        """True when no edit is asked for (all sliders at zero): the input is shown unchanged."""
        no_weights = not any(self.condition.values()) and not any(
            any(c.values()) for c in self.region_conditions.values()
        )
        return no_weights and self.valence_arousal is None


@dataclass(frozen=True)
class Capabilities:
    """What the loaded model can do, and for each missing part a sentence saying how to get it."""

    can_parse: bool
    can_edit: bool
    can_score: bool
    valence_arousal: bool
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompileStatus:
    """Where background compilation stands, with a sentence for the status bar."""

    state: CompileState
    message: str = ""
    seconds: float | None = None  # how long compiling took, once ready
