"""What a run shows while it trains: TensorBoard scalars and image grids, and a progress bar
(faceedit.progress, the one `faceedit edit` draws too).

Only rank 0 creates a `RunLogger`; the others get `NullLogger`, so call sites never branch.
Image grids are built here (torchvision is not a dependency): rows are samples, columns are
the input, its soft masks coloured with the faceedit.vocab.labels palette, attention maps and edits.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

import torch
from torch import Tensor

from faceedit.progress import ProgressBar
from faceedit.vocab.labels import CLASS_COLORS, REGION_GROUPS


def format_losses(values: Mapping[str, float]) -> str:
    """Each phase's total (`d 1.2 g 3.4 parser 0.8`): the terms go to TensorBoard by name."""
    totals: dict[str, float] = {}
    for key, value in values.items():
        phase = key.split("/", 1)[0]
        totals[phase] = totals.get(phase, 0.0) + value
    return " ".join(f"{phase} {total:.4g}" for phase, total in totals.items())


# ---------------------------------------------------------------------------- image grids


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] images to [0, 1] (clamped), float32 on the CPU."""
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)


def colour_probabilities(probabilities: Tensor) -> Tensor:
    """(B, 19, H, W) class probabilities -> (B, 3, H, W) in [0, 1]: palette colours mixed by
    probability, so uncertain pixels show as blends."""
    table = torch.tensor(CLASS_COLORS, dtype=torch.float32) / 255.0  # (19, 3)
    probs = probabilities.detach().float().cpu()
    return torch.einsum("bchw,cd->bdhw", probs, table).clamp(0, 1)


def colour_labels(labels: Tensor) -> Tensor:
    """(B, H, W) class indices -> (B, 3, H, W) palette colours in [0, 1]; any other value (255,
    unlabelled, in label maps drawn from landmarks) shows as mid grey."""
    table = torch.tensor([*CLASS_COLORS, (128, 128, 128)], dtype=torch.float32) / 255.0
    index = labels.detach().long().cpu()
    index = torch.where((index >= 0) & (index < len(CLASS_COLORS)), index, len(CLASS_COLORS))
    return table[index].permute(0, 3, 1, 2)


def colour_regions(masks: Tensor, regions: Sequence[str]) -> Tensor:
    """(B, K, H, W) soft region masks -> (B, 3, H, W): each region in the colour of its first
    class (brows in l_brow's, mouth in mouth's), weighted by the mask."""
    table = torch.tensor(
        [CLASS_COLORS[REGION_GROUPS[name][0]] for name in regions], dtype=torch.float32
    ).reshape(len(regions), 3)  # (K, 3), also for no regions (the global-only baseline)
    return (torch.einsum("bkhw,kd->bdhw", masks.detach().float().cpu(), table / 255.0)).clamp(0, 1)


def grey(maps: Tensor) -> Tensor:
    """(B, 1, H, W) maps in [0, 1] -> (B, 3, H, W)."""
    return maps.detach().float().cpu().clamp(0, 1).expand(-1, 3, -1, -1)


def grid(columns: Sequence[Tensor], pad: int = 2) -> Tensor:
    """Columns of (B, 3, H, W) images in [0, 1] -> one (3, B*(H+pad)+pad, C*(W+pad)+pad) image."""
    if not columns:
        raise ValueError("grid needs at least one column")
    batch, _, height, width = columns[0].shape
    out = torch.ones(3, batch * (height + pad) + pad, len(columns) * (width + pad) + pad)
    for c, column in enumerate(columns):
        if column.shape != (batch, 3, height, width):
            raise ValueError(
                f"grid column {c} has shape {tuple(column.shape)}, expected {(batch, 3, height, width)}"
            )
        for b in range(batch):
            y, x = pad + b * (height + pad), pad + c * (width + pad)
            out[:, y : y + height, x : x + width] = column[b]
    return out


# ---------------------------------------------------------------------------- loggers


class NullLogger:
    """What ranks other than 0 get: every call does nothing."""

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        pass

    def image(self, tag: str, image: Tensor, step: int) -> None:
        pass

    def progress(self, step: int, values: Mapping[str, float]) -> None:
        pass

    def tick(self, step: int) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class RunLogger(NullLogger):
    """TensorBoard events under `<out>/tensorboard` plus the progress bar and messages on stderr."""

    def __init__(
        self, folder: Path, total_steps: int, start_step: int, stream: TextIO | None = None
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=start_step or None)
        # A log file gets a line per log step (with the losses), not one per tenth of the run.
        self.bar = ProgressBar(
            total_steps, "step", start=start_step, unit=" it/s", stream=stream, plain="every_update"
        )
        self.stream = stream if stream is not None else sys.stderr
        self._last = ""

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def image(self, tag: str, image: Tensor, step: int) -> None:
        self.writer.add_image(tag, image.clamp(0, 1), step, dataformats="CHW")
        self.writer.flush()

    def progress(self, step: int, values: Mapping[str, float]) -> None:
        self._last = format_losses(values)
        self.bar.goto(step, self._last)

    def tick(self, step: int) -> None:
        """Redraw the bar between log steps, on a terminal only (log files get a line per log)."""
        if self.bar.interactive:
            self.bar.goto(step, self._last)

    def message(self, text: str) -> None:
        self.bar.close()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.bar.close()
        self.writer.close()
