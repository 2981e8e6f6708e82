"""A corpus of hostile and unlucky inputs, generated at test time, run through the public
commands (`faceedit`, `faceedit edit`, `faceedit import-parser`, `faceedit-train ...`).

Every case asserts the exit status, a clear message naming the problem, no traceback, and
that the folder it ran in is exactly as before: inputs untouched, no output, no temporary file
left behind. (Training states: tests/trainer/stages/test_hostile_state.py.)
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from faceedit.commands import cli
from faceedit.media.bundled import astronaut_image_path
from faceedit.weights import checkpoint
from trainer.commands.cli import main as train_main

ROOT = Path(__file__).resolve().parents[2]
HAS_CUDA = torch.cuda.is_available()


class Payload:
    """Unpickling this would import and run code: it must never happen."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.victim,))


@dataclass
class World:
    """The folder a case runs in, and the files it may start from."""

    root: Path
    model: Path

    @property
    def face(self) -> Path:
        path = self.root / "in" / "face.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(astronaut_image_path(), path)
        return path

    def file(self, name: str, data: bytes = b"a regular file\n") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def victim(self) -> Path:
        """Created only if a pickle payload ran."""
        return self.root.parent / f"{self.root.name}-payload-ran"

    def edit(self, *args: object, out: object = None, checkpoint: object = None) -> list[str]:
        target = out if out is not None else self.root / "out" / "edited.png"
        chosen = checkpoint if checkpoint is not None else self.model
        return [
            "edit",
            str(self.face),
            str(target),
            "--checkpoint",
            str(chosen),
            "--no-progress",
            *map(str, args),
        ]

    def tampered(self, change: Callable[[dict[str, Any]], None], name: str = "bad") -> Path:
        """The tiny model with its JSON header changed; the tensor checksum stays valid."""
        with safe_open(str(self.model), framework="pt") as handle:
            header = json.loads(handle.metadata()[checkpoint.HEADER_KEY])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        change(header)
        path = self.root / f"{name}.safetensors"
        return checkpoint.write_with_header(path, tensors, header, what="test")

    def poisoned(self, part: str, value: float) -> Path:
        """The tiny model with every float tensor of `part` set to `value` (checksum updated)."""
        loaded = checkpoint.load(self.model)
        module = getattr(loaded, part)
        with torch.no_grad():
            for tensor in module.state_dict().values():
                if tensor.is_floating_point():
                    tensor.fill_(value)
        parts = {p: getattr(loaded, p) for p in checkpoint.PARTS}
        return checkpoint.save(self.root / f"{part}-{value}.safetensors", loaded.config, **parts)

    def pickle_with_code(self, name: str) -> Path:
        path = self.root / name
        torch.save({"weight": torch.zeros(1), "extra": Payload(self.victim)}, path)
        return path


Build = Callable[[World], tuple[str, list[str]]]


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    build: Build
    message: str
    code: int = 2


def fe(builder: Callable[[World], list[str]]) -> Build:
    return lambda w: ("faceedit", builder(w))


def tr(builder: Callable[[World], list[str]]) -> Build:
    return lambda w: ("faceedit-train", builder(w))


def config_change(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(header: dict[str, Any]) -> None:
        node = header["config"]
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def write_video_stub(w: World) -> Path:
    return w.file("in/clip.mp4", b"\x00\x00\x00\x18ftypmp42 not really a video")


def dangling(w: World) -> Path:
    link = w.root / "link.pth"
    link.symlink_to(w.root / "gone.pth")
    return link


def train_parser(w: World, *extra: object, out: object = None) -> list[str]:
    data = w.folder("celeba")
    target = out if out is not None else w.root / "run"
    return [
        "parser",
        "--celebamask-hq",
        str(data),
        "--out",
        str(target),
        "--preset",
        "tiny",
        *map(str, extra),
    ]


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
)

CASES: list[Case] = [
    # ---------------------------------------------------------------- where output goes
    Case("output", "edit: parent is a regular file", fe(lambda w: w.edit("--expression", "happy", out=w.file("blocker") / "x.png")), "blocker is a file, not a folder"),
    Case("output", "edit: output on /proc", fe(lambda w: w.edit("--expression", "happy", out="/proc/faceedit-out.png")), "pseudo-filesystem (proc)"),
    Case("output", "edit: output on /sys", fe(lambda w: w.edit("--expression", "happy", out="/sys/faceedit-out.png")), "pseudo-filesystem (sysfs)"),
    Case("output", "edit: video output is an existing folder", fe(lambda w: ["edit", str(write_video_stub(w)), str(w.folder("out.mp4")), "--checkpoint", str(w.model), "--expression", "happy"]), "is an existing folder"),
    Case("output", "edit: labels mask name is a folder", fe(lambda w: (w.folder("out/edited_labels.png"), w.edit("--expression", "happy", "--save-masks"))[1]), "edited_labels.png: is an existing folder"),
    Case("output", "edit: region mask name is a folder", fe(lambda w: (w.folder("out/edited_mask_mouth.png"), w.edit("--expression", "happy", "--save-masks"))[1]), "edited_mask_mouth.png: is an existing folder"),
    Case("output", "edit: video mask folder is a file", fe(lambda w: (w.file("out/clip_masks"), ["edit", str(write_video_stub(w)), str(w.root / "out" / "clip.mp4"), "--checkpoint", str(w.model), "--expression", "happy", "--save-masks"])[1]), "clip_masks: is a file, not a folder"),
    Case("output", "edit: folder input into a file", fe(lambda w: ["edit", str(w.face.parent), str(w.file("out.png")), "--checkpoint", str(w.model), "--expression", "happy"]), "the output must be a folder too"),
    Case("output", "edit: folder output under a file", fe(lambda w: ["edit", str(w.face.parent), str(w.file("blocker") / "results"), "--checkpoint", str(w.model), "--expression", "happy"]), "blocker is a file, not a folder"),
    Case("output", "edit: output name without image suffix", fe(lambda w: w.edit("--expression", "happy", out=w.root / "out" / "edited.txt")), "an image input needs an image output"),
    Case("output", "import-parser: OUT is a folder", fe(lambda w: ["import-parser", str(w.pickle_with_code("src.pth")), str(w.folder("out.safetensors"))]), "is an existing folder"),
    Case("output", "import-parser: OUT under a file", fe(lambda w: ["import-parser", str(w.pickle_with_code("src.pth")), str(w.file("blocker") / "p.safetensors")]), "blocker is a file, not a folder"),
    Case("output", "import-parser: OUT on /proc", fe(lambda w: ["import-parser", str(w.pickle_with_code("src.pth")), "/proc/p.safetensors"]), "pseudo-filesystem (proc)"),
    Case("output", "train parser: --out is a file", tr(lambda w: train_parser(w, out=w.file("run"))), "run: is a file, not a folder"),
    Case("output", "train parser: --out on /proc", tr(lambda w: train_parser(w, out="/proc/faceedit-run")), "pseudo-filesystem (proc)"),
    Case("output", "train eval: --out under a file", tr(lambda w: ["eval", "--checkpoint", str(w.model), "--out", str(w.file("blocker") / "e"), "--celebamask-hq", str(w.folder("celeba"))]), "blocker is a file, not a folder"),
    Case("output", "train synth: --out is a file", tr(lambda w: ["synth", "--out", str(w.file("world")), "--count", "8"]), "is a file, not a folder"),
    Case("output", "train classifier: --out is a folder", tr(lambda w: ["classifier", "--folders", str(w.folder("faces")), "--out", str(w.folder("judge.safetensors"))]), "is an existing folder"),
    Case("output", "train learning-check: --out is a file", tr(lambda w: ["learning-check", "--out", str(w.file("check"))]), "is a file, not a folder"),
    Case("output", "app: snapshot under a file", fe(lambda w: ["--no-checkpoint", "--snapshot", str(w.file("blocker") / "shot.png")]), "blocker is a file, not a folder"),
    Case("output", "app: snapshot is a folder", fe(lambda w: ["--no-checkpoint", "--snapshot", str(w.folder("shot.png"))]), "is an existing folder"),
    Case("output", "app: snapshot named only .png", fe(lambda w: ["--no-checkpoint", "--snapshot", str(w.root / ".png")]), "give a file name ending in .png"),
    Case("output", "app: snapshot with another suffix", fe(lambda w: ["--no-checkpoint", "--snapshot", str(w.root / "shot.webp")]), "give a file name ending in .png"),
    Case("output", "app: snapshot on /proc", fe(lambda w: ["--no-checkpoint", "--snapshot", "/proc/shot.png"]), "pseudo-filesystem (proc)"),
    # ---------------------------------------------------------------- checkpoints
    Case("checkpoint", "65536-channel generator", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("global_generator.base_channels", 65536)))), "must be at most 256"),
    Case("checkpoint", "every bound at its limit: gigabytes of weights", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(lambda h: h["config"].update(global_generator={"base_channels": 256, "num_res_blocks": 64})))), "GiB (faceedit loads at most 4 GiB)"),
    Case("checkpoint", "parser resolution 2^20", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("parser.resolution", 2**20)))), "must be at most 2048"),
    Case("checkpoint", "crop size 2^20", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("crop_size", 2**20)))), "must be at most 1024"),
    Case("checkpoint", "10000 regions", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("regions", ["mouth"] * 10000)))), "lists 10000 regions"),
    Case("checkpoint", "a repeated region", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("regions", ["mouth", "mouth"])))), "must be distinct names"),
    Case("checkpoint", "UNet depth 1000", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("parser.unet_depth", 1000)))), "must be at most 8"),
    Case("checkpoint", "a million residual blocks", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("local_generator.num_res_blocks", 10**6)))), "must be at most 64"),
    Case("checkpoint", "discriminator 1000 channels wide and deep", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("discriminator.base_channels", 10**6)))), "must be at most 1024"),
    Case("checkpoint", "negative fusion channels", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("fusion_channels", -8)))), "must be positive integers"),
    Case("checkpoint", "config is a string", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.tampered(config_change("parser", "bisenet")))), "the stored model config is invalid"),
    Case("checkpoint", "NaN generator", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.poisoned("generator", float("nan")))), "hold NaN or infinite values"),
    Case("checkpoint", "infinite parser", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.poisoned("parser", float("inf")))), "hold NaN or infinite values"),
    Case("checkpoint", "a pickle with code as checkpoint", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.pickle_with_code("evil.safetensors"))), "faceedit never unpickles files"),
    Case("checkpoint", "empty checkpoint", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.file("empty.safetensors", b""))), "is empty or truncated"),
    Case("checkpoint", "random bytes", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.file("noise.safetensors", np.random.default_rng(1).bytes(4096)))), "is not a safetensors file"),
    Case("checkpoint", "absurd header length", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.file("huge.safetensors", b"\xff" * 8 + b"{" + b" " * 64))), "is not a safetensors file"),
    Case("checkpoint", "checkpoint is a folder", fe(lambda w: w.edit("--expression", "happy", "--aligned", checkpoint=w.folder("model.safetensors"))), "is not a file"),
    Case("checkpoint", "import: pickle with code", fe(lambda w: ["import-parser", str(w.pickle_with_code("evil.pth")), str(w.root / "p.safetensors")]), "this file contains code or objects faceedit will not load; only safetensors and plain tensor files are accepted"),
    Case("checkpoint", "import: plain pickle", fe(lambda w: ["import-parser", str(w.file("plain.pkl", pickle.dumps({"w": Payload(w.victim)}))), str(w.root / "p.safetensors")]), "could run code"),
    Case("checkpoint", "import: source is a folder", fe(lambda w: ["import-parser", str(w.folder("weights.pth")), str(w.root / "p.safetensors")]), "is not a file"),
    Case("checkpoint", "import: source is a dangling link", fe(lambda w: ["import-parser", str(dangling(w)), str(w.root / "p.safetensors")]), "is a symbolic link to a file that does not exist"),
    Case("checkpoint", "import: source is missing", fe(lambda w: ["import-parser", str(w.root / "absent.pth"), str(w.root / "p.safetensors")]), "does not exist"),
    # ---------------------------------------------------------------- configuration
    Case("config", "YAML alias bomb", tr(lambda w: train_parser(w, "--config", w.file("bomb.yaml", ALIAS_BOMB.encode()))), "aliases (*name) are not allowed"),
    Case("config", "binary config", tr(lambda w: train_parser(w, "--config", w.file("cfg.yaml", bytes(range(256))))), "is a binary file"),
    Case("config", "latin-1 config", tr(lambda w: train_parser(w, "--config", w.file("cfg.yaml", "steps: 3 # caf\xe9\n".encode("latin-1")))), "is not UTF-8 text"),
    Case("config", "config is a folder", tr(lambda w: train_parser(w, "--config", w.folder("cfg.yaml"))), "is a folder"),
    Case("config", "config is a list", tr(lambda w: train_parser(w, "--config", w.file("cfg.yaml", b"- 1\n- 2\n"))), "must hold a mapping"),
    Case("config", "config of 2 MB", tr(lambda w: train_parser(w, "--config", w.file("cfg.yaml", b"# padding\n" * 200_000))), "is larger than 1024 KiB"),
    Case("config", "config nested 100000 deep", tr(lambda w: train_parser(w, "--config", w.file("cfg.yaml", b"a: " + b"[" * 100_000 + b"]" * 100_000))), "config file"),
    Case("config", "--set a NaN loss weight", tr(lambda w: train_parser(w, "--set", "loss.cycle=nan")), "must be a finite number"),
    Case("config", "--set a 65536-channel generator", tr(lambda w: train_parser(w, "--set", "model.global_generator.base_channels=65536")), "must be at most 256"),
    Case("config", "--set a batch of 10^12", tr(lambda w: train_parser(w, "--set", f"batch_size={10**12}")), "batch_size: must be at most 65536"),
    Case("config", "a config file with a negative seed", tr(lambda w: train_parser(w, "--config", w.file("cfg.yaml", b"seed: -7\n"))), "seed: must be an integer from 0 to 4294967295"),
    # ---------------------------------------------------------------- flags
    Case("flags", "edit: happy=1e30", fe(lambda w: w.edit("--expression", "happy=1e30")), "must lie in [0, 2]"),
    Case("flags", "edit: happy=nan", fe(lambda w: w.edit("--expression", "happy=nan")), "must lie in [0, 2]"),
    Case("flags", "edit: expression given twice", fe(lambda w: w.edit("--expression", "happy=0.5,happy=0.7")), "is given twice"),
    Case("flags", "edit: region weight 3", fe(lambda w: w.edit("--region", "mouth:happy=3")), "must lie in [0, 2]"),
    Case("flags", "edit: --min-face 100000", fe(lambda w: w.edit("--expression", "happy", "--min-face", "100000")), "must be at most 8192 pixels"),
    Case("flags", "edit: --detect-every -1", fe(lambda w: w.edit("--expression", "happy", "--detect-every", "-1")), "must be at least 1"),
    Case("flags", "app: --camera -1", fe(lambda w: ["--camera", "-1"]), "must be from 0 to 999"),
    Case("flags", "app: --camera 10**30", fe(lambda w: ["--camera", str(10**30)]), "must be from 0 to 999"),
    Case("flags", "app: --timeout nan", fe(lambda w: ["--snapshot", str(w.root / "s.png"), "--timeout", "nan"]), "must be a number of seconds above 0"),
    Case("flags", "app: --timeout -5", fe(lambda w: ["--snapshot", str(w.root / "s.png"), "--timeout", "-5"]), "must be a number of seconds above 0"),
    Case("flags", "app: --timeout inf", fe(lambda w: ["--snapshot", str(w.root / "s.png"), "--timeout", "inf"]), "must be a number of seconds above 0"),
    Case("flags", "app: --expression happy=2", fe(lambda w: ["--no-checkpoint", "--snapshot", str(w.root / "s.png"), "--expression", "happy=2"]), "sliders go up to 1"),
    Case("flags", "import: --resolution 2^20", fe(lambda w: ["import-parser", str(w.pickle_with_code("src.pth")), str(w.root / "p.safetensors"), "--resolution", str(2**20)]), "must be from 64 to 2048"),
    Case("flags", "import: --resolution -32", fe(lambda w: ["import-parser", str(w.pickle_with_code("src.pth")), str(w.root / "p.safetensors"), "--resolution", "-32"]), "must be from 64 to 2048"),
    Case("flags", "train: --steps -1", tr(lambda w: train_parser(w, "--steps", "-1")), "must be from 1 to"),
    Case("flags", "train: --batch-size 0", tr(lambda w: train_parser(w, "--batch-size", "0")), "must be from 1 to 65536"),
    Case("flags", "train: --seed -1", tr(lambda w: train_parser(w, "--seed", "-1")), "must be from 0 to 4294967295"),
    Case("flags", "train: --num-workers -3", tr(lambda w: train_parser(w, "--num-workers", "-3")), "must be from -1 to 1024"),
    Case("flags", "train: --checkpoint-every 0", tr(lambda w: train_parser(w, "--checkpoint-every", "0")), "must be from 1 to"),
    Case("flags", "classifier: --lr nan", tr(lambda w: ["classifier", "--folders", str(w.folder("faces")), "--out", str(w.root / "j.safetensors"), "--lr", "nan"]), "must be a finite number"),
    Case("flags", "classifier: --weight-decay -1", tr(lambda w: ["classifier", "--folders", str(w.folder("faces")), "--out", str(w.root / "j.safetensors"), "--weight-decay", "-1"]), "must be >= 0"),
    Case("flags", "synth: --size 0", tr(lambda w: ["synth", "--out", str(w.root / "world"), "--size", "0"]), "must be from 1 to 4096"),
    Case("flags", "learning-check: --threads 0", tr(lambda w: ["learning-check", "--out", str(w.root / "c"), "--threads", "0"]), "must be from 1 to 1024"),
    Case("flags", "eval: --limit 0", tr(lambda w: ["eval", "--checkpoint", str(w.model), "--out", str(w.root / "e"), "--celebamask-hq", str(w.folder("celeba")), "--limit", "0"]), "must be at least 1"),
]  # fmt: skip
if not HAS_CUDA:
    CASES.append(
        Case(
            "flags",
            "app: --device cuda without a GPU",
            fe(
                lambda w: [
                    "--no-checkpoint",
                    "--device",
                    "cuda",
                    "--snapshot",
                    str(w.root / "s.png"),
                ]
            ),
            "no usable GPU was found",
        )
    )


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` with the hash of its bytes ('/' for folders)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = f"-> {path.readlink()}"
        elif path.is_dir():
            out[key] = "/"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_public(program: str, argv: list[str]) -> int:
    entry = cli.main if program == "faceedit" else train_main
    try:
        return entry(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        return int(exit_info.code or 0)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}: {c.name}" for c in CASES])
def test_hostile_input_fails_cleanly(
    case: Case, tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(tmp_path / "case", tiny_model)
    world.root.mkdir()
    program, argv = case.build(world)
    before = tree(world.root)
    code = run_public(program, argv)
    err = capsys.readouterr().err
    assert code == case.code, err
    assert case.message in err, err
    assert "Traceback" not in err and "weights_only" not in err, err
    assert tree(world.root) == before, "inputs must be untouched and nothing may be left behind"
    assert not world.victim.exists(), "a pickle payload ran"


def test_the_corpus_covers_every_class_with_enough_cases() -> None:
    kinds = {c.kind for c in CASES}
    assert kinds == {"output", "checkpoint", "config", "flags"}
    # With the training-state and partial-work cases in their own files, well over 60 in all.
    assert len(CASES) >= 60


# ---------------------------------------------------------------- the top level


def test_an_unexpected_error_is_one_line_without_debug_and_a_traceback_with_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from faceedit.commands import import_parser

    def explode(args: object) -> int:
        raise RuntimeError("something inside went wrong\nwith a second line")

    monkeypatch.setattr(import_parser, "run", explode)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    argv = ["import-parser", str(tmp_path / "a.pth"), str(tmp_path / "b.safetensors")]
    assert cli.main(argv) == cli.EXIT_UNEXPECTED
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error: unexpected RuntimeError: something inside went wrong with a second line" in err
    assert "--debug" in err
    assert cli.main([*argv, "--debug"]) == cli.EXIT_UNEXPECTED
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert cli.main(argv) == cli.EXIT_UNEXPECTED
    assert "Traceback" in capsys.readouterr().err


def test_memory_and_os_errors_read_as_one_plain_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from faceedit.commands import import_parser

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    # A place that cannot be written (permissions, a full disk) is the environment's fault, not
    # faceedit's: exit 2 like any unwritable output; running out of memory stays 70.
    for error, expected, code in (
        (MemoryError(), "out of memory", cli.EXIT_UNEXPECTED),
        (
            PermissionError(13, "Permission denied", "/x/y"),
            "/x/y: permission denied",
            cli.EXIT_ERROR,
        ),
        (OSError(28, "No space left on device", "/x/z"), "/x/z: no space left", cli.EXIT_ERROR),
    ):

        def explode(args: object, error: BaseException = error) -> int:
            raise error

        monkeypatch.setattr(import_parser, "run", explode)
        assert cli.main(["import-parser", "a", "b"]) == code
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err


def test_the_real_console_script_exits_cleanly_on_hostile_flags(tmp_path: Path) -> None:
    """A real process: the exit status and stderr of `faceedit` itself, no native crash."""
    result = subprocess.run(
        [sys.executable, "-m", "faceedit.commands.cli", "--camera", "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "--camera" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- silent partial work


def test_a_multi_page_tiff_says_only_its_first_page_is_edited(
    tmp_path: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    face = np.asarray(Image.open(astronaut_image_path()).convert("RGB"))
    pages = [Image.fromarray(face), Image.fromarray(face[::-1].copy()), Image.fromarray(face)]
    source = tmp_path / "pages.tiff"
    pages[0].save(source, save_all=True, append_images=pages[1:])
    out = tmp_path / "out.png"
    argv = ["edit", str(source), str(out), "--checkpoint", str(tiny_model), "--aligned"]
    with caplog.at_level("WARNING"):
        assert cli.main([*argv, "--expression", "happy", "--no-progress"]) == 0
    assert "holds 3 pages; only the first is read" in caplog.text
    assert out.is_file()


def test_a_face_smaller_than_min_face_is_named_not_a_crash(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = tmp_path / "small.png"
    Image.open(astronaut_image_path()).convert("RGB").resize((64, 64)).save(small)
    argv = ["edit", str(small), str(tmp_path / "o.png"), "--checkpoint", str(tiny_model)]
    assert cli.main([*argv, "--expression", "happy", "--min-face", "200", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "smaller than the smallest face looked for (--min-face 200)" in err
    assert "Traceback" not in err and not (tmp_path / "o.png").exists()
