"""The world scorer's figures as typed, frozen records: what the learning check's targets and
report and the comparisons' tables read. `to_dict` gives the names report.json has always used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EditScores:
    """Held-out edits, each source expression towards every other, judged and compared with
    the truth. L1 figures are mean |a - b| per image in [0, 1] units, averaged over the edits."""

    edits: int
    judge_accuracy: float  # share of edits the judge reads as their target
    mean_target_probability: float  # the judge's P(target)
    mean_l1_edit: float  # edit to the truth
    mean_l1_input: float  # input to the truth
    # mean_l1_edit split by the expression's footprint (where input and truth differ): inside,
    # the edit has to redraw the expression; outside, every change is one the truth lacks
    mean_l1_edit_in_footprint: float
    mean_l1_edit_off_footprint: float
    # the metric's sensitivity: the true change itself, misplaced by one pixel
    mean_l1_truth_moved: float
    per_target_accuracy: Mapping[str, float]
    # mean |edit - input| over pixels fixed for every model (scorer.identity_pixels): the face
    # outside every variant's edit regions, and the background; None where there are none
    identity_face: float | None
    identity_background: float | None
    face_pixels: int
    background_pixels: int

    @property
    def l1_ratio(self) -> float:
        """L1(edit, truth) over L1(input, truth): below 1, edits move towards the truth."""
        return self.mean_l1_edit / max(self.mean_l1_input, 1e-12)

    def footprint_ratios(self) -> tuple[float, float, float]:
        """Inside the footprint, outside it, and the true edit moved 1 px, each in units of
        L1(input, truth): where the L1 ratio comes from, beside the metric's sensitivity."""
        scale = max(self.mean_l1_input, 1e-12)
        return (
            self.mean_l1_edit_in_footprint / scale,
            self.mean_l1_edit_off_footprint / scale,
            self.mean_l1_truth_moved / scale,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "edits": self.edits,
            "judge_accuracy": self.judge_accuracy,
            "mean_target_probability": self.mean_target_probability,
            "mean_l1_edit_to_truth": self.mean_l1_edit,
            "mean_l1_input_to_truth": self.mean_l1_input,
            "mean_l1_edit_to_truth_in_footprint": self.mean_l1_edit_in_footprint,
            "mean_l1_edit_to_truth_off_footprint": self.mean_l1_edit_off_footprint,
            "mean_l1_truth_moved_1px": self.mean_l1_truth_moved,
            "per_target_accuracy": dict(self.per_target_accuracy),
            "identity_error_face": self.identity_face,
            "identity_error_background": self.identity_background,
            "identity_face_pixels": self.face_pixels,
            "identity_background_pixels": self.background_pixels,
        }


@dataclass(frozen=True)
class CriticNoiseScores:
    """The control: per-image noise aimed at the model's own critics (trainer/judges/controls.py),
    no expression drawn, scored as edits. `edits.judge_accuracy` is the share the judge reads
    as the target; the global critic's mean P(target) before and after shows the noise did
    fool the critic it was aimed at."""

    edits: EditScores
    critic_before: float
    critic_after: float
    levels: float
    steps: int

    @property
    def read_as_target(self) -> float:
        return self.edits.judge_accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            "read_as_target": self.read_as_target,
            "edits": self.edits.edits,
            "mean_target_probability": self.edits.mean_target_probability,
            "per_target_read_as_target": dict(self.edits.per_target_accuracy),
            "critic_target_probability_before": self.critic_before,
            "critic_target_probability_after": self.critic_after,
            "levels": self.levels,
            "steps": self.steps,
        }


@dataclass(frozen=True)
class LocalityScores:
    """How far edits reach, as the app shows them: with the region lock, and outside the face
    without it; the generator's own crops are counted alongside."""

    allowed: tuple[str, ...]
    band: int
    locked_pixels: int  # pixels outside the allowed regions (ground truth)
    locked_changed: int  # of those, pixels whose uint8 value changed at all
    locked_band_pixels: int  # the same, leaving out a band around the allowed regions
    locked_band_changed: int
    # Pixels outside the lock's footprint as the model parses them (soft union of the allowed
    # regions' masks below REGION_LEVEL): what the lock promises never to change.
    locked_parse_pixels: int
    locked_parse_changed: int
    locked_changed_raw: int  # locked_changed in the generator's own crops
    outside_pixels: int  # outside-the-face pixels (ground truth) in unlocked edits
    outside_mean_change: float  # mean |change| over channels, [0, 1] units
    outside_mean_change_raw: float  # the same in the generator's own crops

    @property
    def locked_exact_fraction(self) -> float:
        return 1.0 - self.locked_changed / max(self.locked_pixels, 1)

    @property
    def locked_band_exact_fraction(self) -> float:
        return 1.0 - self.locked_band_changed / max(self.locked_band_pixels, 1)

    @property
    def locked_parse_exact_fraction(self) -> float:
        return 1.0 - self.locked_parse_changed / max(self.locked_parse_pixels, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_regions": list(self.allowed),
            "measured_on": "what the app shows (paste-back onto the aligned crop)",
            "locked_pixels": self.locked_pixels,
            "locked_changed": self.locked_changed,
            "locked_exact_fraction": self.locked_exact_fraction,
            "band_px": self.band,
            "locked_beyond_band_pixels": self.locked_band_pixels,
            "locked_beyond_band_changed": self.locked_band_changed,
            "locked_beyond_band_exact_fraction": self.locked_band_exact_fraction,
            "locked_outside_parse_pixels": self.locked_parse_pixels,
            "locked_outside_parse_changed": self.locked_parse_changed,
            "locked_outside_parse_exact_fraction": self.locked_parse_exact_fraction,
            "locked_changed_generator_crop": self.locked_changed_raw,
            "outside_face_pixels": self.outside_pixels,
            "outside_face_mean_change": self.outside_mean_change,
            "outside_face_mean_change_x255": 255 * self.outside_mean_change,
            "outside_face_mean_change_x255_generator_crop": 255 * self.outside_mean_change_raw,
        }
