from __future__ import annotations

import argparse
import json
import threading
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from faceedit.commands import bench
from faceedit.commands.bench import sections
from faceedit.commands.cli import main
from faceedit.inference import optimize
from faceedit.model.config import preset
from faceedit.model.generator import HierarchicalGenerator
from faceedit.model.parsing import build_parser
from faceedit.model.unified import UnifiedModel
from tests.factories import synthetic_faces

REQUIRED_KEYS = (
    "slider_to_frame_ms",
    "parse_256_ms",
    "hierarchy_vs_baseline",
    "pipeline_fps_tracking",
    "matmul_peak_gflops",
)


def tiny_quick_bench(out: Path, *extra: str) -> list[str]:
    """`faceedit bench` arguments for a seconds-long run on the tiny preset, JSON to `out`."""
    args = ["bench", "--quick", "--device", "cpu", "--preset", "tiny", "--crop-sizes", "32"]
    return [*args, "--repeats", "2", "--warmup", "0", "--threads", "1", "--json", str(out), *extra]


@pytest.mark.slow
def test_quick_bench_writes_json_and_prints_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    extra = ["--frames", "4", "--detect-every", "2", "--training-presets", "tiny"]
    assert main(tiny_quick_bench(out, *extra, "--train-batch", "2")) == 0
    data = json.loads(out.read_text())
    for key in REQUIRED_KEYS:
        assert data[key] is not None, key
    for key in ("slider_to_frame_ms", "parse_256_ms"):
        assert data[key]["p50"] > 0 and data[key]["p95"] >= data[key]["p50"]
    assert data["hierarchy_vs_baseline"] > 0 and data["pipeline_fps_tracking"] > 0
    assert data["matmul_peak_gflops"] > 0
    # The app's video defaults (skip small faces, parse on detection frames) are measured too.
    app_video = [p for p in data["pipeline"] if p["app_default"]]
    assert len(app_video) == 1 and app_video[0]["min_face_size"] == 60
    assert app_video[0]["reparse"] == "on_detection"
    app = data["targets_app_default"]
    assert set(app) == set(bench.TARGETS)
    assert app["pipeline_fps_tracking"]["value"] == round(app_video[0]["fps"], 3)
    assert app["pipeline_fps_tracking"]["measured_as"].endswith("_minface60_reparse_on_detection")
    assert app["hierarchy_vs_baseline"]["measured_as"] == "hierarchy_vs_baseline"
    assert data["machine"]["torch_version"] == torch.__version__
    assert data["machine"]["cpu_model"] and data["machine"]["torch_threads"] >= 1
    assert "random weights" in data["weights"]
    stage_names = {row["name"] for row in data["stages"]}
    assert {"align", "paste back", "fusion", "generator: global"} <= stage_names
    assert any(name.startswith("detect") for name in stage_names)
    assert all(row["ms"]["p50"] > 0 for row in data["stages"])
    steps = [t["step"] for t in data["training"]]
    assert steps == [
        "parser",
        "discriminator",
        "generator (parser frozen)",
        "GAN iteration (D + G, one edit)",
    ], "quick: no joint"
    assert all(t["images_per_s"] > 0 for t in data["training"])
    assert {o["name"] for o in data["optimizations"]} >= {"fast instance norm (hierarchy)"}
    assert set(data["targets"]) == set(bench.TARGETS)
    printed = capsys.readouterr().out
    assert "Stages (ms" in printed and "Targets" in printed
    assert printed.count("app default: ") == len(bench.TARGETS)
    assert printed.rstrip().splitlines()[-1].startswith("pipeline"), "the stage table is last"


@pytest.mark.slow
def test_sections_option_runs_only_what_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.json"
    assert main(tiny_quick_bench(out, "--stages", "baseline")) == 0
    data = json.loads(out.read_text())
    assert {row["section"] for row in data["stages"]} == {"baseline"}
    assert data["hierarchy_vs_baseline"] > 0 and data["slider_to_frame_ms"] is None
    names = {row["name"] for row in data["stages"]}
    assert "hierarchy, the locals as one grouped network" in names
    comparison = data["baseline_comparisons"][0]
    assert comparison["ratio_grouped"] > 0 and comparison["over_own_global_windows"] > 0
    # the windows cut the arithmetic, not only the time
    assert comparison["flop_over_own_global_windows"] < comparison["flop_over_own_global"]
    assert data["training"] == [] and data["pipeline"] == []


def test_bad_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--stages", "stages,warp"])
    assert "unknown section" in capsys.readouterr().err
    assert main(["bench", "--preset", "huge", "--stages", "parse"]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_timing_statistics_and_interleaving() -> None:
    timing = bench.Timing.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert timing.p50 == 3.0 and 4.0 < timing.p95 <= 100.0 and timing.n == 5
    order: list[str] = []
    result = bench.measure_interleaved(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")},
        torch.device("cpu"),
        repeats=3,
        warmup=1,
    )
    assert order == ["a", "b"] + ["a", "b"] * 3  # one warm-up each, then alternating
    assert result["a"].n == result["b"].n == 3


@pytest.mark.slow
def test_flop_count_and_peak_fraction() -> None:
    layer = nn.Linear(64, 32, bias=False)
    x = torch.randn(4, 64)
    assert bench.count_gflop(lambda: layer(x)) == pytest.approx(2 * 4 * 64 * 32 / 1e9)
    row = bench.Row("s", "n", "cpu", bench.Timing(10.0, 12.0, 5), gflop=2.0, peak_gflops=400.0)
    assert row.achieved_gflops == pytest.approx(200.0)
    assert row.peak_fraction == pytest.approx(0.5)
    assert row.to_dict()["floor_ms"] == pytest.approx(5.0)


def test_targets_report_met_and_margin() -> None:
    settings = bench.Settings.from_args(
        bench_args(["--quick", "--device", "cpu", "--preset", "tiny"])
    )
    report = bench.Report(settings, "w")
    report.set_headline("slider_to_frame_ms", {"p50": 80.0, "p95": 90.0})
    report.set_headline("slider_to_frame_ms", {"p50": 999.0, "p95": 999.0})  # first one wins
    report.set_headline("pipeline_fps_tracking", 4.0)
    targets = report.targets()
    assert targets["slider_to_frame_ms"]["met"] and targets["slider_to_frame_ms"]["margin"] == 1.25
    assert not targets["pipeline_fps_tracking"]["met"]
    assert targets["pipeline_fps_tracking"]["margin"] == 0.5
    assert "parse_256_ms" not in targets


def bench_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(argv)


# ---------------------------------------------------------------- plug-in sections
# The trainer's `training` section (tests/trainer/test_throughput.py checks the real one).


def plugged_section(ctx: bench.Context) -> None:
    """A fake plug-in: what an entry point `module:function` in the group points at."""
    ctx.report.notes.append("plugged in")


def entry_point(value: str, name: str = "training") -> metadata.EntryPoint:
    return metadata.EntryPoint(name, value, bench.PLUGIN_GROUP)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[metadata.EntryPoint]:
    """The installed entry points the bench sees (fill the list), as from a wheel: no source
    checkout's pyproject.toml beside the package."""
    found: list[metadata.EntryPoint] = []

    def entry_points(*, group: str) -> list[metadata.EntryPoint]:
        return [e for e in found if e.group == group]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.setattr(sections, "checkout_entry_points", lambda group, checkout=None: {})
    return found


def run_section(function: sections.SectionFunction) -> list[str]:
    """Run a section on a context that has only a report (enough for plug-in stand-ins)."""
    settings = bench.Settings.from_args(bench_args(["--quick", "--device", "cpu"]))
    report = bench.Report(settings, "w")
    function(SimpleNamespace(report=report))  # type: ignore[arg-type]  # a stand-in context: only the report is used
    return report.notes


def test_a_plugin_section_is_found_by_its_entry_point(
    installed: list[metadata.EntryPoint],
) -> None:
    installed.append(entry_point(f"{__name__}:plugged_section"))
    installed.append(entry_point("no.such.module:f", name="unrelated"))
    functions = bench.section_functions(["baseline", "training"])
    assert list(functions) == ["baseline", "training"]
    assert functions["training"] is plugged_section
    assert functions["baseline"] is sections.BUILTIN_SECTIONS["baseline"]


def test_a_missing_plugin_is_skipped_with_a_one_line_reason(
    installed: list[metadata.EntryPoint],
) -> None:
    notes = run_section(bench.section_functions(["training"])["training"])
    assert len(notes) == 1 and "\n" not in notes[0]
    assert notes[0].startswith("training: no plug-in") and notes[0].endswith("skipped")
    assert bench.PLUGIN_GROUP in notes[0]


def test_a_plugin_that_does_not_load_is_skipped_with_the_error(
    installed: list[metadata.EntryPoint],
) -> None:
    installed.append(entry_point("faceedit_no_such_plugin:section"))
    (note,) = run_section(bench.section_functions(["training"])["training"])
    assert "ModuleNotFoundError" in note and "faceedit_no_such_plugin" in note
    installed[0] = entry_point(f"{__name__}:no_such_function")
    (note,) = run_section(bench.section_functions(["training"])["training"])
    assert "AttributeError" in note and note.endswith("skipped")


def test_a_checkout_run_without_install_finds_its_own_plugins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PYTHONPATH=checkout with no `pip install -e .` (no metadata): the bench reads the
    checkout's pyproject.toml, and installed metadata, where present, wins."""
    monkeypatch.setattr(metadata, "entry_points", lambda *, group: [])
    found = sections.plugin_entry_points()
    assert found["training"].value == "trainer.stages.throughput:section_training"
    monkeypatch.setattr(
        metadata, "entry_points", lambda *, group: [entry_point(f"{__name__}:plugged_section")]
    )
    assert sections.plugin_entry_points()["training"].value.endswith(":plugged_section")
    other = tmp_path / "pyproject.toml"
    other.write_text(
        '[project]\nname = "other"\n[project.entry-points."faceedit.bench_sections"]\ntraining = "x:y"\n'
    )
    assert sections.checkout_entry_points(checkout=tmp_path) == {}
    other.write_text("not toml [")
    assert sections.checkout_entry_points(checkout=tmp_path) == {}


def test_the_sections_option_still_accepts_the_plugin_section() -> None:
    assert bench_args(["--sections", "baseline,training"]).sections == ("baseline", "training")
    assert sections.PLUGIN_SECTIONS == ("training",)
    assert set(sections.BUILTIN_SECTIONS) | {"training"} == set(bench.SECTIONS)


# ---------------------------------------------------------------- optimisations


def test_the_instance_norm_row_compares_with_torchs_own_instance_norm() -> None:
    from faceedit.commands.bench.optimizations import torch_instance_norm
    from faceedit.model.generator import InstanceNorm

    config = preset("tiny")
    generator = HierarchicalGenerator(config).eval()
    for module in generator.modules():  # non-trivial affine parameters
        if isinstance(module, InstanceNorm):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    plain = torch_instance_norm(generator)
    assert not any(isinstance(m, InstanceNorm) for m in plain.modules())
    assert any(type(m) is nn.InstanceNorm2d for m in plain.modules())
    assert any(isinstance(m, InstanceNorm) for m in generator.modules()), "the original stays"
    x = synthetic_faces(2, config.crop_size)
    masks = torch.rand(2, config.num_regions, config.crop_size, config.crop_size) / 4
    cond = torch.eye(config.condition_dim)[:2]
    assert optimize.max_abs_difference(generator, plain, (x, masks, cond)) < 1e-5


@pytest.mark.parametrize("kind", ["tiny", "paper-128"])
def test_optimized_parser_matches_and_returns_contiguous_logits(kind: str) -> None:
    config = preset(kind).parser
    parser = build_parser(config).eval()
    with torch.no_grad():  # move BatchNorm statistics away from identity
        for module in parser.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    fast = optimize.optimize_parser(parser, "cpu")
    size = 64 if kind == "paper-128" else config.resolution
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.inference_mode():
        ref, out = parser(x).logits, fast(x).logits
    assert out.is_contiguous(), "channels_last must not leak into the generators"
    assert (ref - out).abs().max() < 1e-3 * max(1.0, ref.abs().max().item())
    assert optimize.is_parser(fast) and fast.config == config


def test_optimize_checkpoint_gives_an_engine_the_same_edits(tiny_model: Path) -> None:
    from faceedit.inference.engine import EditEngine
    from faceedit.weights import checkpoint

    loaded = checkpoint.load(tiny_model)
    fast = optimize.optimize_checkpoint(loaded, "cpu")
    assert fast.parser is not loaded.parser and fast.generator is not loaded.generator
    crop = (synthetic_faces(1, 32)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype("uint8")
    plain = EditEngine(loaded, "cpu").edit(crop, {"happy": 1.0})
    quick = EditEngine(fast, "cpu").edit(crop, {"happy": 1.0})
    assert abs(plain.crop.astype(int) - quick.crop.astype(int)).max() <= 1


def test_optimize_for_inference_on_the_unified_model() -> None:
    config = preset("tiny")
    model = UnifiedModel(config).eval()
    fast = optimize.optimize_for_inference(model, "cpu")
    assert isinstance(fast.parser, optimize.ChannelsLastParser)
    x = synthetic_faces(1, config.crop_size)
    cond = torch.eye(config.condition_dim)[1:2]
    with torch.inference_mode():
        diff = (model(x, cond).image - fast(x, cond).image).abs().max()
    assert diff < 1e-4
    assert isinstance(model.parser, type(build_parser(config.parser))), "original untouched"


def test_background_compiler_swaps_in_when_ready_and_survives_failure() -> None:
    eager = nn.Linear(3, 3)
    gate = threading.Event()
    compiled_marker = nn.Identity()

    def slow_compile(module: nn.Module) -> nn.Module:
        gate.wait(5)
        return compiled_marker

    worker = optimize.BackgroundCompiler(eager, warmup=lambda fn: None, compile_fn=slow_compile)
    assert worker.current() is eager and not worker.ready
    gate.set()
    assert worker.wait(5) and worker.current() is compiled_marker

    def broken(module: nn.Module) -> nn.Module:
        raise RuntimeError("no compiler here")

    failed = optimize.BackgroundCompiler(eager, warmup=lambda fn: None, compile_fn=broken)
    assert not failed.wait(5) and failed.current() is eager
    assert "no compiler" in str(failed.error)


def test_reduced_precision_wrapper_returns_float32_close_to_the_original() -> None:
    config = preset("tiny")
    generator = HierarchicalGenerator(config)
    low = optimize.ReducedPrecision(generator, torch.bfloat16)
    assert low.regions == generator.regions and low.condition_dim == generator.condition_dim
    assert next(generator.parameters()).dtype == torch.float32, "the original is untouched"
    x = synthetic_faces(1, config.crop_size)
    masks = torch.rand(1, config.num_regions, config.crop_size, config.crop_size) / 4
    cond = torch.eye(config.condition_dim)[1:2]
    with torch.inference_mode():
        ref, out = generator(x, masks, cond), low(x, masks, cond)
    assert type(out) is type(ref) and out.image.dtype == torch.float32
    assert (out.image - ref.image).abs().max() < 0.05  # a few grey levels at most
    with pytest.raises(ValueError, match="bfloat16 or float16"):
        optimize.ReducedPrecision(generator, torch.float64)


def test_bfloat16_checkpoint_and_parser_resolution_keep_the_engine_working(
    tiny_model: Path,
) -> None:
    from faceedit.errors import ConfigError
    from faceedit.inference.engine import EditEngine
    from faceedit.weights import checkpoint

    loaded = checkpoint.load(tiny_model)
    crop = (synthetic_faces(1, 32)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype("uint8")
    plain = EditEngine(loaded, "cpu").edit(crop, {"happy": 1.0}).crop.astype(int)
    low = optimize.optimize_checkpoint(loaded, "cpu", precision="bfloat16")
    edited = EditEngine(low, "cpu").edit(crop, {"happy": 1.0}).crop.astype(int)
    assert abs(edited - plain).max() <= 8
    coarse = optimize.with_parser_resolution(loaded, 16)
    assert coarse.config.parser.resolution == 16 and loaded.config.parser.resolution == 32
    assert EditEngine(coarse, "cpu").parse(crop).labels.shape == (32, 32)
    with pytest.raises(ConfigError, match="multiple"):
        optimize.with_parser_resolution(loaded, 30)


def test_variant_names_map_to_headline_keys() -> None:
    assert bench.headline_suffix("optimized") == ""
    assert bench.headline_suffix("bfloat16+compile") == "_bfloat16_compile"
    settings = bench.Settings.from_args(bench_args(["--quick", "--device", "cpu"]))
    report = bench.Report(settings, "w")
    report.set_headline("slider_to_frame_ms", {"p50": 150.0, "p95": 160.0, "floor_ms": 130.0})
    report.set_headline("slider_to_frame_ms_bfloat16", {"p50": 90.0, "p95": 95.0})
    report.set_headline("pipeline_fps_tracking_bfloat16_minface60", 9.0)
    assert report.target_suffixes() == ["_bfloat16", "_bfloat16_minface60"]
    assert report.targets()["slider_to_frame_ms"]["floor"] == 130.0
    assert report.targets("_bfloat16")["slider_to_frame_ms"]["met"]
    assert report.to_dict()["targets_bfloat16_minface60"]["pipeline_fps_tracking"]["met"]


@pytest.mark.slow
def test_a_real_checkpoint_is_measured_and_an_incomplete_one_refused(
    tmp_path: Path, tiny_model: Path, tiny_parser: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model
    out = tmp_path / "b.json"
    args = ["bench", "--quick", "--device", "cpu", "--checkpoint", str(model), "--repeats", "2"]
    args += ["--warmup", "0", "--stages", "slider", "--threads", "1", "--json", str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["weights"] == f"checkpoint {model}" and data["slider_to_frame_ms"]["crop"] == 32
    parser_only = tiny_parser
    assert main(["bench", "--checkpoint", str(parser_only), "--stages", "slider"]) == 2
    assert "needs a parser and a generator" in capsys.readouterr().err
