"""One slider per expression, for the whole face or for one region with its own target.

An expression the loaded model was not trained on (its checkpoint's `expressions` table,
faceedit.weights.expression_facts) is marked "(untrained)" and its slider is off, at 0, until
the user ticks "Try untrained expressions"; the trained ones say how well they were measured to
work in their tooltips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from PySide6.QtCore import QEvent, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from faceedit.ui.widgets.availability import set_own_tooltip
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import REGION_NAMES
from faceedit.weights.expression_facts import ExpressionFacts, describe, untrained

WHOLE_FACE: Final[str] = ""
SLIDER_STEPS: Final[int] = 100
MIXTURE_HELP: Final[str] = (
    "Each slider sets one expression's weight, 0-100 %. The weights are used exactly as given, "
    "not renormalised: happy 50 % asks for half-way to happy; happy 100 % + surprised 50 % asks "
    "for a full smile plus half a surprise. All sliders at 0 is the input's own look: the input "
    "is shown unchanged."
)
UNTRAINED_MARK: Final[str] = "(untrained)"
TRY_UNTRAINED_HELP: Final[str] = (
    "The loaded model was not trained on the expressions marked (untrained): too few training "
    "photos. Tick to move their sliders anyway; their edits are not meaningful."
)


class ExpressionPanel(QWidget):
    """Expression sliders; a region picked in 'Target' can get its own sliders (a happy mouth
    with surprised eyes). Emits `changed` on every move."""

    changed = Signal()
    # The Reset button: the window resets every edit (valence/arousal too), not only sliders.
    resetRequested = Signal()

    def __init__(
        self, regions: Sequence[str] = REGION_NAMES, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._whole: dict[str, float] = dict.fromkeys(EXPRESSIONS, 0.0)
        self._own: dict[str, dict[str, float]] = {}
        self._target = WHOLE_FACE
        self._gesture = 0  # counts slider presses and releases: one drag is one undo step
        # What the last `changed` was, so the undo history can merge a drag into one step.
        self.change_key: tuple[object, ...] = ()
        self.change_text = ""
        self._steering: tuple[float, float] | None = None  # valence/arousal, said in the summary
        self._facts: dict[str, ExpressionFacts] = {}
        self._untrained: frozenset[str] = frozenset()  # held at 0 unless untrained_box is ticked

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        target_row = QHBoxLayout()
        target_row.addWidget(QLabel("Target"))
        self.target = QComboBox()
        self.target.setToolTip(
            "Whole face: the sliders set every region's target. Pick a region to give it its "
            "own expression, e.g. a happy mouth with surprised eyes."
        )
        target_row.addWidget(self.target, 1)
        layout.addLayout(target_row)
        self.own_box = QCheckBox("Own expression for this region")
        self.own_box.setToolTip(
            "Checked: this region follows its own sliders. Unchecked: it follows the whole face."
        )
        layout.addWidget(self.own_box)

        grid = QGridLayout()
        grid.setVerticalSpacing(2)
        self.sliders: dict[str, QSlider] = {}
        self.value_labels: dict[str, QLabel] = {}
        self.labels: dict[str, QLabel] = {}
        for row, name in enumerate(EXPRESSIONS):
            label = QLabel(name.capitalize())
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, SLIDER_STEPS)
            slider.setPageStep(10)
            slider.setToolTip(_slider_tip(name, None))
            value = QLabel("0 %")
            value.setMinimumWidth(40)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            slider.valueChanged.connect(lambda v, n=name: self._on_slider(n, v))
            slider.sliderPressed.connect(self._next_gesture)
            slider.sliderReleased.connect(self._next_gesture)
            grid.addWidget(label, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(value, row, 2)
            self.sliders[name] = slider
            self.value_labels[name] = value
            self.labels[name] = label
        layout.addLayout(grid)
        self.untrained_box = QCheckBox("Try untrained expressions")
        self.untrained_box.setToolTip(TRY_UNTRAINED_HELP)
        self.untrained_box.hide()
        layout.addWidget(self.untrained_box)

        bottom = QHBoxLayout()
        self.reset_button = QPushButton("Reset to input")
        self.reset_button.setToolTip(
            "All sliders to 0 and no region targets: show the input's own look (R)"
        )
        self.reset_button.setAutoDefault(False)
        self.reset_button.clicked.connect(self.resetRequested)
        bottom.addStretch(1)
        bottom.addWidget(self.reset_button)
        layout.addLayout(bottom)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: palette(mid);")
        layout.addWidget(self.summary)

        self.target.currentIndexChanged.connect(self._on_target)
        self.own_box.toggled.connect(self._on_own)
        self.untrained_box.toggled.connect(self._on_try_untrained)
        self.set_regions(regions)

    # ---- public state ---------------------------------------------------------------------------

    def set_regions(self, regions: Sequence[str]) -> None:
        """The regions the loaded model edits; overrides of regions it lacks are dropped."""
        self._own = {r: w for r, w in self._own.items() if r in regions}
        with QSignalBlocker(self.target):
            self.target.clear()
            self.target.addItem("Whole face", WHOLE_FACE)
            for region in regions:
                self.target.addItem(region.capitalize(), region)
            index = self.target.findData(self._target)
            self.target.setCurrentIndex(max(index, 0))
        self._target = self.target.currentData()
        self._show_target()

    def set_facts(self, facts: Mapping[str, ExpressionFacts] | None) -> None:
        """What the loaded model says of each expression (None: nothing, as before the table
        existed). Untrained ones are marked and held at 0 until the user tries them; without
        a `changed` (a new model's controls are taken without an undo step)."""
        self._facts = dict(facts or {})
        self._untrained = frozenset(untrained(self._facts))
        with QSignalBlocker(self.untrained_box):
            self.untrained_box.setChecked(False)
        self.untrained_box.setVisible(bool(self._untrained))
        for name in EXPRESSIONS:
            # On a line of its own: "Contemptuous (untrained)" on one would narrow every slider.
            mark = f"\n{UNTRAINED_MARK}" if name in self._untrained else ""
            self.labels[name].setText(f"{name.capitalize()}{mark}")
            tip = _slider_tip(name, self._facts.get(name))
            for widget in (self.labels[name], self.sliders[name]):
                set_own_tooltip(widget, tip)
        self._hold_untrained()
        self._show_target()

    def untrained_locked(self) -> list[str]:
        """The untrained expressions whose sliders are off now, in EXPRESSIONS order."""
        if self.untrained_box.isChecked():
            return []
        return [n for n in EXPRESSIONS if n in self._untrained]

    def condition(self) -> dict[str, float]:
        """Whole-face weights in [0, 1], only the non-zero ones."""
        return {n: w for n, w in self._whole.items() if w > 0}

    def region_conditions(self) -> dict[str, dict[str, float]]:
        """Regions with their own target -> their non-zero weights (may be empty: 'neutral look')."""
        return {r: {n: w for n, w in weights.items() if w > 0} for r, weights in self._own.items()}

    def set_state(self, whole: Mapping[str, float], own: Mapping[str, Mapping[str, float]]) -> None:
        """Set every weight at once (undo and redo), without emitting `changed`."""
        self._whole = dict.fromkeys(EXPRESSIONS, 0.0) | {n: float(w) for n, w in whole.items()}
        self._own = {
            region: dict.fromkeys(EXPRESSIONS, 0.0) | {n: float(w) for n, w in weights.items()}
            for region, weights in own.items()
            if self.target.findData(region) >= 0
        }
        self._hold_untrained()
        self._show_target()

    def set_condition(self, weights: Mapping[str, float], region: str = WHOLE_FACE) -> None:
        """Set weights (0..1) for the whole face or give `region` its own; emits one change."""
        values = dict.fromkeys(EXPRESSIONS, 0.0)
        values.update({n: min(max(float(w), 0.0), 1.0) for n, w in weights.items()})
        if region == WHOLE_FACE:
            self._whole = values
        else:
            self._own[region] = values
        self._hold_untrained()
        self._show_target()
        self._announce(("set", region), f"Set {region or 'face'} expression")

    def reset(self) -> None:
        """Back to the input's own look: every weight 0, no region targets."""
        self._whole = dict.fromkeys(EXPRESSIONS, 0.0)
        self._own = {}
        self._show_target()
        self._announce(("reset",), "Reset to input")

    def select_target(self, region: str) -> None:
        self.target.setCurrentIndex(max(self.target.findData(region), 0))

    # ---- reactions --------------------------------------------------------------------------------

    def _current_weights(self) -> dict[str, float]:
        if self._target != WHOLE_FACE and self._target in self._own:
            return self._own[self._target]
        return self._whole

    def _announce(self, key: tuple[object, ...], text: str) -> None:
        self.change_key, self.change_text = key, text
        self.changed.emit()

    def _next_gesture(self) -> None:
        self._gesture += 1

    def _on_slider(self, name: str, value: int) -> None:
        self.value_labels[name].setText(f"{value} %")
        weights = self._current_weights()
        if self._target != WHOLE_FACE and self._target not in self._own:
            return  # a region that follows the whole face: sliders are disabled
        weights[name] = value / SLIDER_STEPS
        self._update_summary()
        where = f" ({self._target})" if self._target else ""
        self._announce(("slider", self._target, name, self._gesture), f"Change {name}{where}")

    def _hold_untrained(self) -> None:
        """Untrained expressions stay at 0 while their sliders are off."""
        for name in self.untrained_locked():
            self._whole[name] = 0.0
            for weights in self._own.values():
                weights[name] = 0.0

    def _on_try_untrained(self, on: bool) -> None:
        self._hold_untrained()
        self._show_target()
        verb = "Try" if on else "Stop trying"
        self._announce(("untrained",), f"{verb} untrained expressions")

    def _on_target(self) -> None:
        self._target = self.target.currentData()
        self._show_target()

    def _on_own(self, own: bool) -> None:
        if self._target == WHOLE_FACE:
            return
        if own:
            self._own[self._target] = dict(self._whole)
        else:
            self._own.pop(self._target, None)
        self._show_target()
        verb = "Own" if own else "Shared"
        self._announce(("own", self._target), f"{verb} expression for the {self._target}")

    def _show_target(self) -> None:
        region = self._target
        with QSignalBlocker(self.own_box):
            self.own_box.setVisible(region != WHOLE_FACE)
            self.own_box.setText(f"Own expression for the {region}" if region else "")
            self.own_box.setChecked(region in self._own)
        following = region != WHOLE_FACE and region not in self._own
        weights = self._current_weights()
        locked = self.untrained_locked()
        for name, slider in self.sliders.items():
            with QSignalBlocker(slider):
                slider.setValue(round(weights[name] * SLIDER_STEPS))
            self.value_labels[name].setText(f"{slider.value()} %")
            slider.setProperty("following", following)
            slider.setEnabled(self.isEnabled() and not following and name not in locked)
            self.labels[name].setEnabled(self.isEnabled() and name not in locked)
        self._update_summary()

    def set_steering(self, valence_arousal: tuple[float, float] | None) -> None:
        """Valence/arousal steering (another panel's) also edits: the summary says so."""
        self._steering = valence_arousal
        self._update_summary()

    def _update_summary(self) -> None:
        steering = self._steering
        whole = self.condition()
        if steering is not None and not whole:
            parts = ["Face: no expression weights"]
        else:
            parts = [_describe("Face", whole)]
        parts += [_describe(r.capitalize(), w) for r, w in self.region_conditions().items()]
        if steering is not None:
            parts.append(f"Valence {steering[0]:+.2f}, arousal {steering[1]:+.2f} (steered)")
        self.summary.setText("\n".join(parts))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.EnabledChange:
            self._show_target()


def _slider_tip(name: str, facts: ExpressionFacts | None) -> str:
    """A slider's tooltip: its weight, what the model says of it (if anything), the mixing rule."""
    sentence = "" if facts is None else describe(name, facts)
    said = f"\n{sentence[:1].upper()}{sentence[1:]}." if sentence else ""
    if facts is not None and not facts.trained:
        said += " Tick 'Try untrained expressions' to move it anyway."
    return f"{name}: weight in %.{said}\n\n{MIXTURE_HELP}"


def _describe(who: str, weights: Mapping[str, float]) -> str:
    if not weights:
        return f"{who}: input's own look"
    return f"{who}: " + ", ".join(f"{n} {round(w * 100)} %" for n, w in weights.items())
