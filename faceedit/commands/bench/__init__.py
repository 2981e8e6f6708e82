"""`faceedit bench`: every stage's latency against its floor, the hierarchy's cost, end-to-end fps.

Numbers are medians and 95th percentiles in milliseconds after warm-up. Each stage's FLOPs
(torch.utils.flop_counter) divided by its time gives the GFLOP/s it achieves; dividing that by a
2048x2048 matmul in the same precision, measured in the same run, gives how far the stage is
from the machine's floor. Comparisons that matter (baseline against hierarchy, each
optimisation against no optimisation) are timed interleaved, so a machine whose load changes
during the run skews both sides alike. docs/performance.md records a run and what it means.

Without --checkpoint the networks are randomly initialised networks of the preset: the
benchmark measures speed, not quality, and says so. The app never runs random weights.

Modules: settings (command line), report (results, JSON and tables), fixtures (models, scene,
inputs), context (what a section receives), one module per section (stages, parse, baseline,
slider, optimizations, video for `pipeline`), sections (the registry and the
`faceedit.bench_sections` plug-in seam through which the trainer provides `training`), runner
(the command). The measurement primitives live outside the command line, in faceedit/timing.py,
and what a plug-in section receives is declared in faceedit/bench_plugins.py, so a plug-in
imports neither this package nor anything under faceedit/commands. This module re-exports what
the CLI and tests use.
"""

from __future__ import annotations

from faceedit.commands.bench.context import Context
from faceedit.commands.bench.fixtures import headline_suffix
from faceedit.commands.bench.report import (
    TARGETS,
    Gain,
    Report,
    Row,
    format_report,
    machine_description,
)
from faceedit.commands.bench.runner import run, run_benchmark
from faceedit.commands.bench.sections import PLUGIN_GROUP, section_functions
from faceedit.commands.bench.settings import SECTIONS, Settings, add_arguments
from faceedit.timing import (
    Timing,
    count_gflop,
    matmul_peak_gflops,
    measure,
    measure_interleaved,
    synchronize,
)

__all__ = [
    "PLUGIN_GROUP",
    "SECTIONS",
    "TARGETS",
    "Context",
    "Gain",
    "Report",
    "Row",
    "Settings",
    "Timing",
    "add_arguments",
    "count_gflop",
    "format_report",
    "headline_suffix",
    "machine_description",
    "matmul_peak_gflops",
    "measure",
    "measure_interleaved",
    "run",
    "run_benchmark",
    "section_functions",
    "synchronize",
]
