"""The model: loading checkpoints, the device, precision and speed menus, and what the
controls and banners say about what the loaded model can do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PySide6.QtCore import Qt

from faceedit.device import DeviceChoice
from faceedit.errors import FaceEditError
from faceedit.inference.session import ModelInfo, SpeedOptions
from faceedit.media import bundled
from faceedit.ui import dialogs
from faceedit.ui.menus import check_speed_actions
from faceedit.ui.widgets.about_dialog import AboutDialog, about_rows
from faceedit.ui.widgets.availability import set_available
from faceedit.ui.window_parts import WindowParts
from faceedit.ui.worker import speed_from_preferences
from faceedit.weights.expression_facts import describe, read_facts, untrained

LOADING: Final[str] = "the model is still loading"
NO_VALENCE_AROUSAL: Final[str] = (
    "the loaded model was not trained with valence and arousal labels, so it cannot steer them"
)
NO_CUDA: Final[str] = "Unavailable: no usable CUDA GPU was found on this machine"
SPEED_PREFERENCES: Final[tuple[str, ...]] = (
    "precision",
    "compile_networks",
    "reparse_every_frame",
    "stream_min_face",
)


class ModelActions(WindowParts):
    """Load, unload and configure the model; enable the controls it can drive."""

    def load_checkpoint(self, path: str | Path | None, note: str | None = None) -> None:
        """Load a model in the worker (None: run without one; a bundled model's word, `real` or
        `demo`: that model); the controls follow its abilities. `note` is said in the model's
        banner once it has loaded (why this model, e.g. the remembered one is gone)."""
        self._model_note = note
        try:
            resolved = None if path is None else bundled.resolve_checkpoint(path)
        except FaceEditError as error:
            self.show_message("error", f"Checkpoint not loaded: {error}")
            if self.model_info is None and self._requested_model is None:
                self.worker.load_model(None)  # nothing loaded yet: still detect and align
            return
        self.statusBar().showMessage(
            f"Loading {resolved.name}…" if resolved else "Unloading the model…"
        )
        self.busy.begin("model", f"Loading {resolved.name}" if resolved else "Unloading the model")
        was_demo = self.demo_in_use
        self._requested_model = None if resolved is None else str(resolved)
        if was_demo and not self.demo_in_use:
            # The demo switched aligned input for its samples; the user's model gets their choice.
            self.set_aligned_input(self.prefs.aligned_input, remember=False)
        self._set_model_controls(None)
        self.worker.load_model(self._requested_model)

    def load_bundled(self, word: str) -> None:
        """Load bundled model `word` (Model menu) and, unless the picture open is made for it
        already, open its sample (the demo model: a procedural face; the real one: a photo)."""
        self.load_checkpoint(word)
        if bundled.bundled_word(self._requested_model) != word:
            return  # not installed: the message says so
        info = self.source_info
        procedural = (
            info is not None and not info.is_live and bundled.is_procedural_sample(info.path)
        )
        if info is None or procedural != (bundled.BUNDLED_MODELS[word].domain == "procedural"):
            self.open_sample()

    @property
    def demo_in_use(self) -> bool:
        """Whether the demo model is loaded, or the one being loaded."""
        return bundled.is_demo_checkpoint(self._requested_model)

    def set_aligned_input(self, on: bool, remember: bool = True) -> None:
        """Treat pictures as aligned face crops (no detection) or detect faces in them.

        remember: store the choice in the preferences (the menu toggle does; the demo's own
        switching does not, so a later session with the user's model is not affected).
        """
        if remember:
            self.prefs.aligned_input = on
        action = self.actions_.aligned_input
        if action.isChecked() != on:
            action.blockSignals(True)
            action.setChecked(on)
            action.blockSignals(False)
        self._center_split = True
        self.submit()

    def set_device(self, device: str) -> None:
        self._device_before = self.prefs.device
        self.prefs.device = device  # type: ignore[assignment]  # a device menu entry; Preferences checks it
        self.actions_.devices[device].setChecked(True)
        self.statusBar().showMessage(f"Switching to {device}…")
        self.busy.begin("model", f"Moving the model to {device}")
        self.worker.set_device(device)

    def _check_device(self, info: ModelInfo) -> None:
        """The CUDA entry is offered only where a GPU is usable; CUDA was chosen but the model
        runs on the CPU: tick what runs."""
        cuda = self.actions_.devices["cuda"]
        cuda.setEnabled(info.cuda_available)
        tip = "" if info.cuda_available else NO_CUDA
        cuda.setToolTip(tip or "Run the models on: cuda")
        cuda.setStatusTip(cuda.toolTip())
        if self.prefs.device != "cuda" or not info.device.startswith("cpu"):
            return
        before = self._device_before
        fallback: DeviceChoice = before if before != "cuda" else "auto"
        self.prefs.device = fallback
        self.actions_.devices[fallback].setChecked(True)

    def set_detect_every(self, frames: int) -> None:
        self.prefs.detect_every = frames
        self.actions_.detect_every[frames].setChecked(True)
        self.worker.set_detect_every(frames)

    def speed_options(self) -> SpeedOptions:
        """The worker's speed options, as the preferences hold them."""
        return speed_from_preferences(self.prefs)

    def set_speed(self, **changes: object) -> None:
        """Store speed preferences (precision, compile_networks, reparse_every_frame,
        stream_min_face) and hand them to the worker, which reloads the model for a new
        precision or when compilation is turned off."""
        unknown = set(changes) - set(SPEED_PREFERENCES)
        if unknown:
            raise ValueError(f"not speed preferences: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self.prefs, name, value)
        check_speed_actions(self.actions_, self.prefs)
        if "precision" in changes:
            self.statusBar().showMessage(f"Switching to {changes['precision']} precision…")
        self.worker.set_speed_options(self.speed_options())

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_info = info
        self.compile_state = "off"
        self.busy.end("model")
        self._check_device(info)
        name = Path(info.path).name if info.path else "no model"
        word = bundled.bundled_word(info.path)
        self.status_device.setText(self._model_label(info))
        self._show_bundled_badge(word)
        if info.path:
            self.prefs.add_recent_checkpoint(info.path)
            if word is None:  # a start without a model loads the bundled default anyway
                self.prefs.last_checkpoint = info.path
            self.statusBar().showMessage(f"Loaded {name} on {info.device}", 5000)
        else:
            self.prefs.last_checkpoint = None
        self._show_model_banner(info, word)
        self.expressions.set_regions(info.regions)
        self.expressions.set_facts(read_facts(info.metadata))
        self.regions.set_regions(info.regions)
        # Overrides of regions this model lacks went with the old one.
        self.document.rebase(self.edit_state())
        self._set_model_controls(info)
        self.document.settled_request_id = self.submit()
        self.modelReady.emit(info)

    def _show_bundled_badge(self, word: str | None) -> None:
        """The status bar names a bundled model and what it is for, for as long as it runs."""
        self.status_model_note.setVisible(word is not None)
        if word is not None:
            model = bundled.BUNDLED_MODELS[word]
            self.status_model_note.setText(model.badge)
            self.status_model_note.setToolTip(f"{model.note[0].upper()}{model.note[1:]}")

    def _show_model_banner(self, info: ModelInfo, word: str | None) -> None:
        """Above the picture: why this model (the note), what it lacks, what a bundled one is
        for, and which expressions it was not trained on."""
        note, self._model_note = self._model_note, None
        lines = ([note] if note else []) + list(info.capabilities.missing)
        if word is not None and not info.capabilities.missing:
            lines.append(f"Loaded the {bundled.BUNDLED_MODELS[word].note}.")
        skipped = untrained(read_facts(info.metadata))
        if skipped and info.capabilities.can_edit:
            lines.append(
                f"Not trained (too few training photos): {', '.join(skipped)}; their sliders "
                "are off and marked (untrained)."
            )
        if not lines:
            self.model_banner.clear()
        else:
            warn = bool(note or info.capabilities.missing)
            self.model_banner.show_message("warning" if warn else "info", "\n".join(lines))

    def _on_model_failed(self, text: str) -> None:
        """The worker kept the model it had (if any): give its controls back and explain."""
        self._requested_model = self.model_info.path if self.model_info else None
        self.busy.end("model")
        if self.model_info is not None:
            self._set_model_controls(self.model_info)
            self.status_device.setText(self._model_label(self.model_info))
        self.show_message("error", f"Checkpoint not loaded: {text}")

    def _on_compile_status(self, state: str, message: str) -> None:
        self.compile_state = state
        if self.model_info is not None:
            self.status_device.setText(self._model_label(self.model_info))
        if state == "failed":
            self.show_message("warning", message)
        else:
            self.statusBar().showMessage(message, 8000)

    def _model_label(self, info: ModelInfo) -> str:
        if not info.path:
            return f"no model · {info.device}"
        compiled = {"compiling": " · compiling…", "ready": " · compiled"}.get(
            self.compile_state, ""
        )
        return f"{model_name(info.path)} · {info.device} · {info.precision}{compiled}"

    def _set_model_controls(self, info: ModelInfo | None) -> None:
        """Enable what the loaded model can do; disabled controls say in their tooltip why."""
        edit_reason: str | None
        parse_reason: str | None
        if info is None:
            edit_reason = parse_reason = LOADING
        else:
            caps = info.capabilities
            missing = " ".join(caps.missing)
            edit_reason = None if caps.can_edit else missing
            parse_reason = None if caps.can_parse else missing
        set_available(self.expressions, edit_reason)
        set_available(self.regions, edit_reason)
        set_available(self.overlay, parse_reason)
        va_reason = edit_reason
        if va_reason is None and info is not None and not info.capabilities.valence_arousal:
            va_reason = NO_VALENCE_AROUSAL
        set_available(self.va, va_reason)
        self.actions_.reset.setEnabled(edit_reason is None)
        self.actions_.save_masks.setEnabled(parse_reason is None)
        self.docks["va"].setVisible(bool(info and info.capabilities.valence_arousal))
        self._update_scores_wanted()
        if self.latest is None:
            self._show_scores(None)

    def _ask_checkpoint(self) -> None:
        recent = self.prefs.existing_recent_checkpoints()
        folder = str(Path(recent[0]).parent) if recent else str(Path.home())
        path = dialogs.ask_open(self, "Load checkpoint", folder, dialogs.CHECKPOINT_FILTER)
        if path:
            self.load_checkpoint(path)

    def about_rows(self) -> list[tuple[str, str]]:
        info = self.model_info
        versions = info.versions if info else {}
        model = None
        if info and info.path:
            steps = info.metadata.get("trained_steps") or info.metadata.get("step")
            named = model_name(info.path)
            model = f"{info.path} (crop {info.crop_size}, regions {', '.join(info.regions)}" + (
                f", {steps} training steps)" if steps else ")"
            )
            if named != Path(info.path).name:
                model = f"{named}: {model}"
        rows = about_rows(versions, info.device if info else None, model)
        word = bundled.bundled_word(info.path if info else None)
        if word is not None:
            rows.append(("Note", f"This is the {bundled.BUNDLED_MODELS[word].note}."))
        facts = read_facts(info.metadata) if info else None
        if facts:
            said = [f"{name}: {describe(name, row)}" for name, row in facts.items()]
            rows.append(("Expressions", "\n".join(said)))
        return rows

    def show_about(self) -> AboutDialog:
        dialog = AboutDialog(self.about_rows(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog


def model_name(path: str | None) -> str:
    """How the status bar and the About dialog name a model: a bundled one by its label
    ("real-face model", "demo model"), another by its file name."""
    if not path:
        return "no model"
    word = bundled.bundled_word(path)
    return bundled.BUNDLED_MODELS[word].label if word else Path(path).name
