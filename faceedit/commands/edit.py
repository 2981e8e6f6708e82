"""`faceedit edit INPUT OUTPUT`: edit an image, a folder of images or a video without the window.

It runs exactly the app's path (faceedit.inference.pipeline.FramePipeline: detect, align, parse, generate,
paste back), so what the command writes is what the window shows. Inputs are never written to:
every output path is resolved and compared with the inputs before anything is computed, and
every file is written atomically, so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np

from faceedit.commands.edit_model import choose_checkpoint, domain_note, untrained_note
from faceedit.errors import FaceEditError, InputError, NoFaceError
from faceedit.faces.detect import FaceDetector
from faceedit.faces.frame_maps import frame_parse
from faceedit.fileio import check_output_file, check_output_folder
from faceedit.inference.engine import EditEngine
from faceedit.inference.optimize import PRECISION_CHOICES
from faceedit.inference.pipeline import FramePipeline, FrameResult
from faceedit.inference.request import REPARSE_POLICIES, EditRequest, ReparsePolicy
from faceedit.limits import (
    MAX_FACE_PIXELS,
    MIN_FACE_PIXELS,
    editable_argument,
    expression_argument,
    positive_int,
    region_argument,
)
from faceedit.media.images import save_image
from faceedit.media.masks import mask_paths, save_masks
from faceedit.media.sources import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoWriter,
    open_source,
    read_image,
)
from faceedit.progress import ProgressBar
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import REGION_NAMES

logger = logging.getLogger(__name__)

JobKind = Literal["image", "folder", "video"]
# The suffixes sources.VideoWriter can write.
WRITABLE_VIDEO_SUFFIXES: Final[frozenset[str]] = frozenset({".mp4", ".m4v", ".mov", ".avi"})
EXIT_OK: Final[int] = 0
EXIT_SOME_FAILED: Final[int] = 1


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Edit the expression of the face(s) in an image, in every image of a folder (OUTPUT is "
        "then a folder and file names are kept), or in a video (OUTPUT is a video with the "
        "same frame rate). Without --checkpoint the bundled real-face model edits (the demo "
        "model for its own procedural samples).\n\nexamples:\n  faceedit edit photo.jpg "
        "smiling.jpg --expression happy=0.8,surprised=0.2 --region eyes:surprised=1\n"
        "  faceedit edit photos/ edited/ --checkpoint model.safetensors --expression happy=1"
    )
    parser.add_argument("input", type=Path, help="an image, a folder of images or a video")
    parser.add_argument("output", type=Path, help="where to write the result(s)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a faceedit .safetensors model, or a bundled model: `real` (trained on real "
        "photographs, 128 px) or `demo` (procedural faces only: try it with --aligned on its "
        "sample faces). Default: `real` (the demo model when every input is one of its "
        "samples, or when `real` is not installed)",
    )
    parser.add_argument(
        "--aligned",
        action="store_true",
        help="each image already is an aligned face crop: no face detection; the whole image is "
        "scaled to the model's crop, edited and scaled back (a non-square image: its centred "
        "square)",
    )
    parser.add_argument(
        "--expression",
        type=expression_argument,
        default={},
        metavar="SPEC",
        help=f"target mixture, e.g. happy=0.8,surprised=0.2 (names: {', '.join(EXPRESSIONS)})",
    )
    parser.add_argument(
        "--region",
        type=region_argument,
        action="append",
        default=[],
        metavar="REGION:SPEC",
        help="give one region its own target, e.g. mouth:happy=1 (repeatable; regions: "
        f"{', '.join(REGION_NAMES)})",
    )
    parser.add_argument(
        "--editable",
        type=editable_argument,
        default=None,
        metavar="REGIONS",
        help="only these regions may change, e.g. mouth,eyes (default: the whole face)",
    )
    parser.add_argument(
        "--all-faces", action="store_true", help="edit every face (default: the largest)"
    )
    parser.add_argument(
        "--save-masks",
        action="store_true",
        help="also save beside each output NAME, at the output's own size (the face's parse "
        "warped from the aligned crop onto the image): NAME_labels.png (class indices 0..18, "
        "0 = background, also everywhere outside the face), NAME_labels_color.png (the classes "
        "in colour) and NAME_mask_REGION.png per region",
    )
    _add_speed_arguments(parser)


def _add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """Video, detection and device options: how fast, not what."""
    parser.add_argument(
        "--detect-every",
        type=positive_int,
        default=5,
        metavar="N",
        help="video: run the face detector every N frames and track the face in between "
        "(default 5; 1 detects on every frame)",
    )
    parser.add_argument(
        "--reparse",
        type=reparse_argument,
        default="every_frame",
        metavar="WHEN",
        help="video: parse the face on every frame (every-frame, the default: masks follow the "
        "mouth) or only when the detector runs (on-detection: faster, masks held in between)",
    )
    parser.add_argument(
        "--min-face",
        type=min_face_argument,
        default=20,
        metavar="PIXELS",
        help="the smallest face to look for (default 20; 60 makes detection ~2x faster on "
        "video where faces are large)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="float32",
        help="float32 (default: exact), auto (bfloat16 where the CPU or GPU runs it natively: "
        "about 1.7x faster, within a few grey levels), bfloat16 or float16",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="do not draw the progress bar on stderr"
    )


def reparse_argument(text: str) -> ReparsePolicy:
    """argparse type for --reparse: 'every-frame' or 'on-detection' (underscores work too)."""
    value = text.strip().lower().replace("-", "_")
    if value not in REPARSE_POLICIES:
        raise argparse.ArgumentTypeError(f"{text!r}: choose every-frame or on-detection")
    return value


def min_face_argument(text: str) -> int:
    """argparse type for --min-face: MTCNN cannot look for faces under 12 pixels."""
    value = positive_int(text)
    if value < MIN_FACE_PIXELS:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_FACE_PIXELS} pixels (MTCNN's window), got {value}"
        )
    if value > MAX_FACE_PIXELS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_FACE_PIXELS} pixels, got {value}")
    return value


# ---------------------------------------------------------------- planning (no model needed)


@dataclass(frozen=True)
class Job:
    """What to do: the kind of input and every (input, output) pair, checked for overwrites."""

    kind: JobKind
    pairs: tuple[tuple[Path, Path], ...]
    skipped: tuple[Path, ...] = ()  # files in a folder that are not images


def plan(input_path: Path, output_path: Path) -> Job:
    """Decide the input kind and the output paths; refuse any plan that writes onto an input."""
    source = input_path.expanduser()
    target = output_path.expanduser()
    if not source.exists():
        raise InputError(f"{source}: no such file or folder; check the path")
    if _same_path(source, target):
        raise InputError(
            f"the output {target} is the input itself; faceedit never overwrites its input, "
            "choose another output path"
        )
    if source.is_dir():
        return _plan_folder(source, target)
    suffix = source.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        if target.suffix.lower() not in WRITABLE_VIDEO_SUFFIXES:
            raise InputError(
                f"{target}: a video input needs a video output ending in one of "
                f"{', '.join(sorted(WRITABLE_VIDEO_SUFFIXES))}"
            )
        return _checked(Job("video", ((source, target),)))
    if suffix not in IMAGE_EXTENSIONS:
        raise InputError(
            f"{source}: not an image ({', '.join(sorted(IMAGE_EXTENSIONS))}), a video "
            f"({', '.join(sorted(VIDEO_EXTENSIONS))}) or a folder"
        )
    if target.is_dir():
        target = target / source.name
    if target.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(
            f"{target}: an image input needs an image output ending in one of "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    return _checked(Job("image", ((source, target),)))


def _plan_folder(source: Path, target: Path) -> Job:
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: the input is a folder, so the output must be a folder too")
    if _is_inside(target, source):
        raise InputError(
            f"the output folder {target} is inside the input folder {source}; choose a folder "
            "outside it, so outputs never mix with (or overwrite) inputs"
        )
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not images:
        raise InputError(
            f"{source}: the folder holds no image ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "for a video pass the video file itself"
        )
    skipped = tuple(p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS)
    return _checked(Job("folder", tuple((p, target / p.name) for p in images), skipped))


def _checked(job: Job) -> Job:
    """Refuse a job whose outputs (or their mask files) land on any of its input files.

    Paths are compared resolved (symlinks, '..') and, for outputs that already exist, by
    device and inode, which also catches hard links.
    """
    inputs = [src for src, _ in job.pairs]
    resolved = {src.resolve() for src in inputs}
    identities = {_identity(src) for src in inputs}
    for _, out in job.pairs:
        for path in (out, *mask_paths(out, REGION_NAMES).values(), mask_folder(out)):
            if path.resolve() in resolved or (path.exists() and _identity(path) in identities):
                raise InputError(
                    f"the output {path} would overwrite the input {path.resolve()}; "
                    "faceedit never writes onto its input, choose another output"
                )
    return job


def check_outputs(job: Job, save_masks: bool) -> None:
    """The output path policy (faceedit.fileio) for every file the job will write, up front:
    a clash (a folder named like an output or a mask file, a parent that is a file, a
    read-only folder) is refused before the model loads, not after the first image."""
    if job.kind == "folder":
        check_output_folder(job.pairs[0][1].parent)
    for _, out in job.pairs:
        check_output_file(out, "video" if job.kind == "video" else "output")
        if not save_masks:
            continue
        if job.kind == "video":
            check_output_folder(mask_folder(out), "mask folder")
        else:
            for path in mask_paths(out, REGION_NAMES).values():
                check_output_file(path, "mask file")


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _same_path(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def mask_folder(output: Path) -> Path:
    """Where --save-masks writes for a video output: one set of PNGs per frame."""
    return output.parent / f"{output.stem}_masks"


# ---------------------------------------------------------------- writing


def frame_masks(
    result: FrameResult, frame_shape: tuple[int, ...], regions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The processed faces' class indices (H, W) uint8 and soft region masks (K, H, W) in [0, 1],
    in frame pixels (faceedit.faces.frame_maps); outside every face the class is 0
    (background) and the masks are 0."""
    parsed = [
        (face.alignment, face.parsing.probabilities, face.parsing.region_masks)
        for face in result.processed
        if face.parsing is not None
    ]
    return frame_parse(parsed, frame_shape, len(regions))


def write_masks(
    output: Path, result: FrameResult, frame_shape: tuple[int, ...], regions: Sequence[str]
) -> None:
    """--save-masks: the files faceedit.media.masks names, beside `output`."""
    labels, masks = frame_masks(result, frame_shape, regions)
    save_masks(output, labels, masks, regions)


# ---------------------------------------------------------------- running


@dataclass
class Summary:
    """What happened to each input, printed at the end."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    frames_without_face: int = 0
    frames: int = 0


def run(args: argparse.Namespace) -> int:
    """Plan, load, process; exit 1 when some files of a folder failed (the others are written)."""
    request = EditRequest(
        condition=dict(args.expression),
        region_conditions=_region_conditions(args.region),
        editable_regions=args.editable,
        all_faces=args.all_faces,
        aligned=args.aligned,
    )
    if request.is_identity:
        raise InputError(
            "nothing to edit: give --expression (e.g. happy=0.8) or --region (e.g. mouth:happy=1) "
            "with at least one weight above 0"
        )
    job = plan(args.input, args.output)
    check_outputs(job, args.save_masks)
    sources = [source for source, _ in job.pairs]
    pipeline = _pipeline(args, choose_checkpoint(args.checkpoint, sources))
    _check_regions(request, pipeline.engine.regions)
    notes = (
        domain_note(pipeline.engine, job.kind, sources),
        untrained_note(pipeline.engine, request),
    )
    for note in notes:
        if note:
            print(f"faceedit: note: {note}", file=sys.stderr)
    show = not args.no_progress
    if job.kind == "video":
        summary = _edit_video(pipeline, request, job, args.save_masks, show)
    else:
        summary = _edit_images(pipeline, request, job, args.save_masks, show)
    return _report(job, summary)


def _region_conditions(
    pairs: Iterable[tuple[str, dict[str, float]]],
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for region, weights in pairs:
        if region in out:
            raise InputError(
                f"--region {region}: given twice; give each region one target "
                f"(e.g. {region}:happy=0.5,surprised=0.5)"
            )
        out[region] = weights
    return out


def _check_regions(request: EditRequest, model_regions: Sequence[str]) -> None:
    asked = set(request.region_conditions) | set(request.editable_regions or ())
    unknown = sorted(asked - set(model_regions))
    if unknown:
        raise InputError(
            f"this model has no local generator for {', '.join(unknown)}; it edits "
            f"{', '.join(model_regions)}"
        )


def _pipeline(args: argparse.Namespace, checkpoint: Path) -> FramePipeline:
    """Load the model (refusing one that cannot edit) and, unless --aligned, the detector."""
    engine = EditEngine.load(checkpoint, device=args.device, precision=args.precision)
    if not engine.capabilities.can_edit:
        raise FaceEditError(f"{checkpoint}: " + " ".join(engine.capabilities.missing))
    detector = (
        None
        if args.aligned
        else FaceDetector(device=engine.device.type, min_face_size=args.min_face)
    )
    return FramePipeline(engine, detector, detect_every=args.detect_every, reparse=args.reparse)


def _edit_one_image(pipeline: FramePipeline, request: EditRequest, source: Path) -> FrameResult:
    frame = read_image(source)
    pipeline.reset()  # never track from one image into another
    result = pipeline.process(frame, request)
    if not result.faces:
        detector = pipeline.detector
        if detector is not None and min(frame.shape[:2]) < detector.min_face_size:
            raise NoFaceError(
                f"{source}: the image is {frame.shape[1]}x{frame.shape[0]} pixels, smaller "
                f"than the smallest face looked for (--min-face {detector.min_face_size}); "
                "lower --min-face"
            )
        raise NoFaceError(
            f"{source}: no face was found; faceedit needs a face at least about 40 pixels "
            "wide, roughly frontal and not cut off by the image border"
        )
    return result


def _edit_images(
    pipeline: FramePipeline, request: EditRequest, job: Job, save: bool, show: bool
) -> Summary:
    summary = Summary()
    regions = pipeline.engine.regions
    single = job.kind == "image"
    progress = ProgressBar(len(job.pairs), "editing", enabled=show and not single)
    for source, target in job.pairs:
        try:
            result = _edit_one_image(pipeline, request, source)
            save_image(target, result.output)
            if save:
                write_masks(target, result, result.output.shape, regions)
            summary.written.append(target)
        except FaceEditError as error:
            if single:
                raise
            summary.failed.append((source, str(error)))
        finally:
            progress.update()
    progress.close()
    return summary


def _edit_video(
    pipeline: FramePipeline, request: EditRequest, job: Job, save: bool, show: bool
) -> Summary:
    ((source, target),) = job.pairs
    summary = Summary()
    regions = pipeline.engine.regions
    masks_dir = mask_folder(target)
    with open_source(source) as frames:
        if frames.is_live or frames.fps <= 0:
            raise InputError(f"{source}: not a video file")
        target.parent.mkdir(parents=True, exist_ok=True)
        progress = ProgressBar(frames.frame_count, "editing frames", unit=" fps", enabled=show)
        with VideoWriter(target, frames.fps, frames.size) as writer:
            pipeline.reset()
            for index, frame in enumerate(frames):
                result = pipeline.process(frame, request)
                if not result.faces:
                    summary.frames_without_face += 1
                writer.write(result.output)
                if save:
                    masks_dir.mkdir(exist_ok=True)
                    write_masks(masks_dir / f"{index:06d}.png", result, frame.shape, regions)
                summary.frames += 1
                progress.update()
        progress.close()
    summary.written.append(target)
    return summary


def _report(job: Job, summary: Summary) -> int:
    out = sys.stderr
    if job.kind == "video":
        edited = summary.frames - summary.frames_without_face
        print(
            f"wrote {summary.written[0]}: {summary.frames} frames, a face edited in {edited}",
            file=out,
        )
        if summary.frames and edited == 0:
            print("no face was found in any frame, so nothing was edited", file=out)
            return EXIT_SOME_FAILED
        if summary.frames_without_face:
            print(f"{summary.frames_without_face} frame(s) had no face and were copied", file=out)
        return EXIT_OK
    if job.kind == "image":
        print(f"wrote {summary.written[0]}", file=out)
        return EXIT_OK
    total = len(job.pairs)
    folder = summary.written[0].parent if summary.written else None
    print(
        f"edited {len(summary.written)} of {total} image(s)"
        + (f" into {folder}" if folder else ""),
        file=out,
    )
    if job.skipped:
        print(f"ignored {len(job.skipped)} file(s) that are not images", file=out)
    if summary.failed:
        print(f"{len(summary.failed)} image(s) failed and were skipped:", file=out)
        for path, message in summary.failed:
            # Most messages already start with the file's path; do not say it twice.
            print(f"  {message if str(path) in message else f'{path.name}: {message}'}", file=out)
        return EXIT_SOME_FAILED
    return EXIT_OK
