"""Showing what the worker computed: the frames, the crop, the plots and scores, the status
line; only results of the source now open are shown.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal

from faceedit.inference.session import FrameUpdate, source_serial
from faceedit.state.document import scores_note
from faceedit.ui.overlay import OverlaySettings, render_overlay
from faceedit.ui.window_parts import WindowParts


class Results(WindowParts):
    """The worker's answers, shown."""

    updateShown: Signal

    def _on_failed(self, request_id: int, text: str) -> None:
        if request_id >= self.document.request_id:
            self.busy.end("compute")
        self.show_message("error", text)

    def shows_current_source(self, update: FrameUpdate) -> bool:
        """Whether `update` was computed on the source now open (never one opened before)."""
        return self.document.shows(source_serial(update.frame_key))

    def _on_result(self, update: FrameUpdate) -> None:
        if not self.shows_current_source(update):
            return  # computed on an earlier source, or while a new one is being opened
        if update.request_id >= self.document.request_id:
            self.busy.end("compute")
        if self._first_result_pending:
            self._first_result_pending = False
            self._first_result_s = time.monotonic() - self._opened_at
        else:
            self._first_result_s = None
        self.latest = update
        self._show_frames(update)
        if self._center_split and update.boxes:
            # A new picture: put the split line through the chosen face, so both halves show it.
            box = update.boxes[update.chosen[0] if update.chosen else 0]
            self.compare.after_view.set_split_position(
                float(box[0] + box[2]) / 2 / update.input.shape[1]
            )
            self._center_split = False
        self.crop.set_data(update.crop, update.edited_crop, update.attention, update.labels)
        self.plots.add_timings(update.timings)
        self._show_scores(update)
        if update.frame_index is not None:
            self.video.set_position(update.frame_index)
        self._report(update)
        self.updateShown.emit(update)

    def _report(self, update: FrameUpdate) -> None:
        fps = self.plots.frames_per_second()
        self.status_fps.setText(f"{fps:.0f} fps" if self.video.isVisible() else "")
        if not update.boxes:
            key = (
                update.frame_key
                if self.source_info is None or not self.video.isVisible()
                else self.source_info.path
            )
            text = f"No face found in {self._source_label or 'this frame'}: try a larger, well-lit, frontal face (about 40 pixels or more)."
            if key != self._warned_no_face:
                self._warned_no_face = key
                self.show_message("warning", text)
            else:
                self.statusBar().showMessage(text)
            return
        if self.messages.kind == "warning" and self._warned_no_face is not None:
            self.messages.clear()
            self._warned_no_face = None
        faces = len(update.boxes)
        self.statusBar().showMessage(
            f"{faces} face{'s' if faces > 1 else ''} · {self._stage_times(update)}"
        )

    def _stage_times(self, update: FrameUpdate) -> str:
        """Each stage's time as it was spent: a reused detection is named with its own time."""
        t = update.timings
        if update.detected:
            self._detect_ms[update.frame_key] = t.get("detect", 0.0)
            detect = f"detect {t.get('detect', 0):.0f} ms"
        elif update.frame_key in self._detect_ms:
            detect = f"faces from the detection ({self._detect_ms[update.frame_key]:.0f} ms)"
        else:
            detect = "faces tracked" if self.video.isVisible() else "aligned crop"
        stages = [detect] + [f"{s} {t.get(s, 0):.0f} ms" for s in ("parse", "generate", "paste")]
        first = self._first_result_s
        if first is not None:
            stages.append(f"shown {first:.1f} s after opening")
        return " · ".join(stages)

    def _on_playback_stopped(self, reason: str) -> None:
        self.video.set_playing(False)
        self.actions_.play.setChecked(False)
        if reason:
            self.show_message("error", reason)

    def _show_frames(self, update: FrameUpdate) -> None:
        """The input and edited frames; the edited one under the parse when that is asked for
        (computed by the worker with the result, in the photo's own pixels)."""
        after = update.output
        parsed = update.frame_parse() if self.actions_.overlay_on_photo.isChecked() else None
        if parsed is not None:
            after = render_overlay(after, parsed[0], self.overlay.settings())
        self.compare.set_frames(update.input, after, update.boxes, update.chosen)

    def _on_overlay_on_photo(self, shown: bool) -> None:
        self.worker.set_frame_parse_wanted(shown)
        if self.latest is not None and not shown:
            self._show_frames(self.latest)

    def _on_overlay(self, settings: OverlaySettings) -> None:
        self.crop.set_overlay(settings)
        if self.latest is not None and self.actions_.overlay_on_photo.isChecked():
            self._show_frames(self.latest)
        self.actions_.show_overlay.setChecked(settings.enabled)
        self.prefs.overlay_opacity = settings.opacity
        self.prefs.overlay_mode = settings.mode

    def _show_scores(self, update: FrameUpdate | None) -> None:
        """The score chart, or the true reason it is empty (faceedit.state.document.scores_note)."""
        if update is not None and update.input_scores is not None:
            self.plots.set_scores(update.input_scores, update.edited_scores)
            return
        info = self.model_info
        note = scores_note(
            None if info is None else info.capabilities.can_score,
            self.source_info is not None,
            None if update is None else bool(update.boxes),
        )
        self.plots.set_scores(None, None, note or "")

    def _update_scores_wanted(self) -> None:
        info = self.model_info
        wanted = bool(info and info.capabilities.can_score) and self.docks["plots"].isVisible()
        self.worker.set_scores_wanted(wanted or not self.isVisible())
        latest = self.latest
        if wanted and latest is not None and latest.input_scores is None and latest.boxes:
            self.submit()  # the chart was hidden when this picture was computed: score it now
