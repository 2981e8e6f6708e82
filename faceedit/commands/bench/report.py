"""Results of a run (Row, Gain, Report), the machine they came from, and the printed tables.

`Report.to_dict` is what --json writes and `format_report` what the command prints; both are
read by people comparing runs, so their keys and layout are the stable part of the bench.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import torch

from faceedit.commands.bench.settings import Settings
from faceedit.timing import Timing

# Targets for the paper-128 preset on a 2-core laptop CPU (docs/performance.md).
TARGETS: Final[dict[str, tuple[str, float]]] = {
    "slider_to_frame_ms": ("<=", 100.0),
    "parse_256_ms": ("<=", 30.0),
    "hierarchy_vs_baseline": ("<=", 1.5),
    "pipeline_fps_tracking": (">=", 8.0),
}


@dataclass
class Row:
    """One measured case: a stage at a crop size, batch size, device and model variant."""

    section: str
    name: str
    device: str
    timing: Timing
    crop: int | None = None
    batch: int | None = None
    variant: str = ""
    gflop: float | None = None
    note: str = ""
    peak_gflops: float | None = None

    @property
    def achieved_gflops(self) -> float | None:
        if not self.gflop or self.timing.p50 <= 0:
            return None
        return self.gflop / (self.timing.p50 / 1000)

    @property
    def peak_fraction(self) -> float | None:
        achieved = self.achieved_gflops
        return achieved / self.peak_gflops if achieved and self.peak_gflops else None

    def to_dict(self) -> dict[str, Any]:
        floor = self.gflop / self.peak_gflops * 1000 if self.gflop and self.peak_gflops else None
        return {
            "section": self.section,
            "name": self.name,
            "device": self.device,
            "crop": self.crop,
            "batch": self.batch,
            "variant": self.variant,
            "ms": self.timing.to_dict(),
            "gflop": round_or_none(self.gflop),
            "achieved_gflops": round_or_none(self.achieved_gflops),
            "floor_ms": round_or_none(floor),
            "fraction_of_matmul_peak": round_or_none(self.peak_fraction),
            "note": self.note,
        }


@dataclass
class Gain:
    """One optimisation: the same work timed without and with it."""

    name: str
    device: str
    before: Timing
    after: Timing
    max_abs_difference: float | None = None
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.before.p50 / self.after.p50 if self.after.p50 > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "before_ms": self.before.to_dict(),
            "after_ms": self.after.to_dict(),
            "speedup": round_or_none(self.speedup),
            "time_saved_percent": round_or_none(100 * (1 - self.after.p50 / self.before.p50)),
            "max_abs_difference": self.max_abs_difference,
            "note": self.note,
        }


@dataclass
class Report:
    """Everything one run measured; `to_dict` is what --json writes."""

    settings: Settings
    weights: str
    rows: list[Row] = field(default_factory=list)
    gains: list[Gain] = field(default_factory=list)
    training: list[dict[str, Any]] = field(default_factory=list)
    # The trainer's data rows (samples per worker core) and model consumption rows.
    training_data: list[dict[str, Any]] = field(default_factory=list)
    training_consumption: list[dict[str, Any]] = field(default_factory=list)
    pipeline: list[dict[str, Any]] = field(default_factory=list)
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    # target -> the headline key measured with the app's default settings on the first device
    # (precision "auto", background compile, the video options); the bare keys stay float32.
    app_default: dict[str, str] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        """Record a row; its floor is the peak of its own precision (bf16 rows: the bf16 peak)."""
        peaks = self.peaks.get(row.device, {})
        precision = row.variant.partition("+")[0]
        row.peak_gflops = peaks.get(f"gflops_{precision}", peaks.get("gflops"))
        self.rows.append(row)
        return row

    def set_headline(self, key: str, value: Any) -> None:
        """Top-level results come from the first device measured (the CPU unless asked)."""
        self.headline.setdefault(key, value)

    def set_app_default(self, target: str, key: str) -> None:
        """Mark headline `key` as what the app, as shipped, gets for `target`."""
        if target not in TARGETS or not key.startswith(target):
            raise ValueError(f"{key!r} is not a measurement of the target {target!r}")
        self.app_default.setdefault(target, key)

    def app_default_targets(self) -> dict[str, dict[str, Any]]:
        """Each target met or not with the app's default settings, naming the key measured."""
        out: dict[str, dict[str, Any]] = {}
        for target in TARGETS:
            key = self.app_default.get(target)
            if key is None:
                continue
            found = self.targets(key[len(target) :]).get(target)
            if found is not None:
                out[target] = {**found, "measured_as": key}
        return out

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        data: dict[str, Any] = {
            "faceedit_bench": 1,
            "machine": self.machine,
            "weights": self.weights,
            "preset": s.preset,
            "settings": {
                "devices": [str(d) for d in s.devices],
                "repeats": s.repeats,
                "warmup": s.warmup,
                "quick": s.quick,
                "crop_sizes": list(s.crop_sizes),
                "batches": list(s.batches),
                "sections": list(s.sections),
                "frames": s.frames,
                "detect_every": s.detect_every,
                "training_presets": list(s.training_presets),
                "train_batch": s.train_batch,
                "compile": s.compile,
            },
        }
        for key in (
            "slider_to_frame_ms",
            "parse_256_ms",
            "hierarchy_vs_baseline",
            "pipeline_fps_tracking",
            "matmul_peak_gflops",
        ):
            data[key] = self.headline.get(key)
        data.update({k: v for k, v in self.headline.items() if k not in data})
        data["targets"] = self.targets()
        data["targets_app_default"] = self.app_default_targets()
        for suffix in self.target_suffixes():
            data["targets" + suffix] = self.targets(suffix)
        data["matmul_peaks"] = self.peaks
        data["stages"] = [row.to_dict() for row in self.rows]
        data["optimizations"] = [gain.to_dict() for gain in self.gains]
        data["pipeline"] = self.pipeline
        data["training"] = self.training
        data["training_data"] = self.training_data
        data["training_consumption"] = self.training_consumption
        data["notes"] = self.notes
        return data

    def target_suffixes(self) -> list[str]:
        """Key suffixes of the non-default variants that have target values (e.g. '_bfloat16')."""
        found = {
            key[len(base) :]
            for key in self.headline
            for base in TARGETS
            if key.startswith(base + "_")
        }
        return sorted(found)

    def targets(self, suffix: str = "") -> dict[str, dict[str, Any]]:
        """Each target met or not, from the headline values with this key suffix.

        suffix "" is the float32 optimised path; "_bfloat16" / "_float16" the reduced-precision
        one (hierarchy_vs_baseline has no such variant and is left out there).
        """
        out: dict[str, dict[str, Any]] = {}
        for key, (op, limit) in TARGETS.items():
            value = self.headline.get(key + suffix)
            number = value.get("p50") if isinstance(value, dict) else value
            if number is None:
                continue
            met = number <= limit if op == "<=" else number >= limit
            margin = limit / number if op == "<=" else number / limit
            floor = value.get("floor_ms") if isinstance(value, dict) else None
            if key == "hierarchy_vs_baseline":
                floor = next(
                    (
                        d["flop_ratio"]
                        for d in self.headline.get("baseline_comparisons", [])
                        if d["variant"] == "optimized"
                    ),
                    None,
                )
            out[key] = {
                "floor": floor,  # the best this machine could do (FLOPs at the matmul peak)
                "value": round(float(number), 3),
                "target": f"{op} {limit:g}",
                "met": bool(met),
                "margin": round(margin, 3),  # > 1 means met with room to spare
                "preset": self.settings.preset,
            }
        return out


def round_or_none(value: float | None, digits: int = 3) -> float | None:
    """Rounded for JSON; None for missing or non-finite values (JSON has no NaN)."""
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def machine_description(devices: Sequence[torch.device]) -> dict[str, Any]:
    """CPU model, thread counts, versions and GPU names: what a reader needs to compare runs."""
    cpu_model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    data: dict[str, Any] = {
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "devices": [str(d) for d in devices],
    }
    if any(d.type == "cuda" for d in devices):
        data["cuda_device"] = torch.cuda.get_device_name(0)
        data["cuda_version"] = torch.version.cuda
    return data


# ---------------------------------------------------------------- printing


def format_report(report: Report) -> str:
    """Plain-text tables: stages, optimisations, pipeline, training, then targets (last)."""
    lines = [f"faceedit bench — {report.weights}"]
    machine = report.machine
    lines.append(
        f"{machine['cpu_model']}, {machine['torch_threads']} torch threads, torch "
        f"{machine['torch_version']}; matmul peak "
        + ", ".join(
            f"{d}: {p['gflops']:.0f} GFLOP/s (end {p.get('gflops_at_end', float('nan')):.0f})"
            for d, p in report.peaks.items()
        )
    )
    for section in (
        _gain_lines,
        _training_lines,
        _training_data_lines,
        _consumption_lines,
        _note_lines,
        _target_lines,
        _stage_lines,
    ):
        lines += section(report)
    return "\n".join(lines)


def _gain_lines(report: Report) -> list[str]:
    """Optimisations: the same work without and with each."""
    lines: list[str] = []
    if report.gains:
        lines += ["", "Optimisations (same work without -> with)"]
        lines += _table(
            ["optimisation", "device", "before p50", "after p50", "speedup", "max |diff|", "note"],
            [
                [
                    g.name,
                    g.device,
                    f"{g.before.p50:.1f}",
                    f"{g.after.p50:.1f}",
                    f"{g.speedup:.2f}x",
                    "-" if g.max_abs_difference is None else f"{g.max_abs_difference:.1e}",
                    g.note,
                ]
                for g in report.gains
            ],
        )
    return lines


def _training_lines(report: Report) -> list[str]:
    """Training throughput per preset and step."""
    lines: list[str] = []
    if report.training:
        lines += ["", "Training throughput"]
        lines += _table(
            [
                "preset",
                "device",
                "step",
                "batch",
                "ms/step p50",
                "steps/s",
                "images/s",
                "ATen ops",
                "how",
            ],
            [
                [
                    t["preset"],
                    t["device"],
                    t["step"],
                    str(t["batch"]),
                    f"{t['ms']['p50']:.1f}",
                    f"{t['steps_per_s']:.2f}",
                    f"{t['images_per_s']:.1f}",
                    "" if t.get("aten_ops") is None else str(t["aten_ops"]),
                    t["source"],
                ]
                for t in report.training
            ],
        )
    return lines


def _training_data_lines(report: Report) -> list[str]:
    """What one data worker delivers."""
    lines: list[str] = []
    if report.training_data:
        lines += [
            "",
            "Training data (samples per CPU-second of one worker: read, augment, collate; "
            "'1 worker' adds the transfer to the trainer)",
        ]
        lines += _table(
            ["data", "source", "px", "augment", "per core", "1 worker", "trainer", "target", "met"],
            [
                [
                    t["data"],
                    t["source"],
                    str(t["px"]),
                    t["augment"],
                    f"{t['samples_per_core_s']:.0f}",
                    "-" if not t["one_worker"] else f"{t['one_worker']['worker']:.0f}",
                    "-" if not t["one_worker"] else f"{t['one_worker']['main']:.0f}",
                    "-" if t["target"] is None else f">= {t['target']:.0f}",
                    "-" if t["met"] is None else "yes" if t["met"] else "NO",
                ]
                for t in report.training_data
            ],
        )
    return lines


def _consumption_lines(report: Report) -> list[str]:
    """What the models consume, measured and estimated."""
    lines: list[str] = []
    if report.training_consumption:
        lines += ["", "What the models consume (samples/s; H100 from the FLOP count)"]
        lines += _table(
            ["model", "device", "GFLOP/sample", "measured", "H100 estimate", "assumption"],
            [
                [
                    c["model"],
                    c["device"],
                    f"{c['gflop_per_sample']:.2f}",
                    "-"
                    if c["measured_samples_per_s"] is None
                    else f"{c['measured_samples_per_s']:.1f}",
                    f"{c['h100_samples_per_s']:.0f}",
                    c["h100_assumption"],
                ]
                for c in report.training_consumption
            ],
        )
    return lines


def _note_lines(report: Report) -> list[str]:
    """The run's notes."""
    lines: list[str] = []
    if report.notes:
        lines += ["", *(f"note: {n}" for n in report.notes)]
    return lines


def _target_lines(report: Report) -> list[str]:
    """Targets, last but for the stages: met or not, by how much."""
    lines: list[str] = []
    app_rows = [
        _target_row(k, f"app default: {t['measured_as'][len(k) + 1 :] or 'float32'}", t)
        for k, t in report.app_default_targets().items()
    ]
    target_rows = app_rows + [
        _target_row(k, precision, t)
        for suffix, precision in (("", "float32"), *((x, x[1:]) for x in report.target_suffixes()))
        for k, t in report.targets(suffix).items()
    ]
    if target_rows:
        lines += ["", f"Targets ({report.settings.preset}, first device; margin > 1 means met)"]
        lines += _table(
            ["target", "variant", "floor", "value", "goal", "met", "margin"], target_rows
        )
    return lines


def _stage_lines(report: Report) -> list[str]:
    """Every stage's time and its share of the matmul peak."""
    lines: list[str] = []
    lines += [
        "",
        "Stages (ms; GFLOP/s achieved and its fraction of the matmul peak of the row's precision;",
        "over 100 % means the convolutions ran faster than a 2048x2048 matrix product)",
    ]
    lines += _table(
        [
            "section",
            "stage",
            "device",
            "crop",
            "batch",
            "variant",
            "p50",
            "p95",
            "GFLOP",
            "GFLOP/s",
            "% peak",
            "note",
        ],
        [
            [
                r.section,
                r.name,
                r.device,
                "-" if r.crop is None else str(r.crop),
                "-" if r.batch is None else str(r.batch),
                r.variant,
                f"{r.timing.p50:.2f}",
                f"{r.timing.p95:.2f}",
                "-" if not r.gflop else f"{r.gflop:.2f}",
                "-" if r.achieved_gflops is None else f"{r.achieved_gflops:.0f}",
                "-" if r.peak_fraction is None else f"{100 * r.peak_fraction:.0f}%",
                r.note,
            ]
            for r in report.rows
        ],
    )
    return lines


def _target_row(target: str, variant: str, t: dict[str, Any]) -> list[str]:
    return [
        target,
        variant,
        "-" if t["floor"] is None else f"{t['floor']:.2f}",
        f"{t['value']:.2f}",
        t["target"],
        "yes" if t["met"] else "NO",
        f"{t['margin']:.2f}x",
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
