"""Training data throughput for `faceedit bench`: samples per worker core, raw files vs shards.

The datasets are synthesised at their real on-disk sizes (the licensed files are not needed):
CelebAMask-HQ as a 1024 px JPEG and 512 px part-mask PNGs per face, AffectNet as a 512 px JPEG
with its CSV row, RaFD as a 681 x 1024 JPEG. Each is read at the paper-128 training sizes
(parser 256 px with augmentation, expressions 128 px) through the raw loaders and through
shards written by `prepare`. Rates are samples per CPU-second of one process doing a worker's
whole job (read, decode or copy, augment, collate), so they do not depend on how busy the
machine's other cores are; a second figure runs the real EndlessLoader with one worker
process and counts wall-clock samples per second (adds the worker-to-trainer transfer).

Beside them: what the model consumes per second, measured on the bench device, and an H100
estimate from the FLOP count of one training step (see H100_* below), so a reader sees whether
data or compute binds.
"""

from __future__ import annotations

import csv
import functools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from faceedit.vocab.expressions import AFFECTNET_CODES
from faceedit.vocab.labels import CLASS_NAMES
from trainer.data.affectnet import COLUMNS as AFFECTNET_COLUMNS

# Dense bf16 tensor-core peak of an H100 SXM, and the fraction convolutional networks with
# BatchNorm reach in training (bandwidth-bound layers, small channel counts): an assumption,
# printed with every estimate. The issue's own figure (BiSeNet at 512 px, 81 GFLOP per sample,
# about 1000 samples/s on one H100) is 8 % of this peak.
H100_PEAK_TFLOPS: Final[float] = 989.0
H100_UTILISATION: Final[float] = 0.10
# Targets of issue 14, samples per second per worker core with augmentation, from shards.
TARGETS: Final[dict[str, float]] = {"parser batches": 400.0, "expression batches": 600.0}
PARSER_SIZE: Final[int] = 256
CROP_SIZE: Final[int] = 128
PARTS_PER_FACE: Final[int] = 13  # a typical CelebAMask-HQ face has 10 to 15 part files


def load_average() -> float:
    """The 1-minute load average (NaN where the platform has none)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return float("nan")


# ------------------------------------------------------------------------ real-sized fixtures


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like image: smooth shading plus fine grain (JPEGs of about 150-250 KB at 1024)."""
    low = rng.random((max(2, height // 64), max(2, width // 64), 3)).astype(np.float32)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC) * 180 + 40
    image += rng.normal(0, 4, (height, width, 3)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path.write_bytes(data.tobytes())


def write_celebamask_like(root: Path, count: int, seed: int = 0) -> None:
    """`count` faces in CelebAMask-HQ's layout at its real sizes (ids 0..count-1, all "train")."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:512, :512]
    lines = ["idx orig_idx orig_file"]
    for face in range(count):
        _write_jpeg(root / "CelebA-HQ-img" / f"{face}.jpg", _texture(rng, 1024, 1024))
        folder = root / "CelebAMask-HQ-mask-anno" / "0"
        folder.mkdir(parents=True, exist_ok=True)
        for k, part in enumerate(CLASS_NAMES[1 : 1 + PARTS_PER_FACE]):
            cx, cy = 256 + rng.integers(-40, 40), 256 + rng.integers(-40, 40)
            radius = 220 - 15 * k
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < radius**2).astype(np.uint8) * 255
            cv2.imwrite(str(folder / f"{face:05d}_{part}.png"), mask)
        lines.append(f"{face} {face} {face + 1:06d}.jpg")
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(lines) + "\n")


def write_affectnet_like(root: Path, count: int, seed: int = 0) -> None:
    """`count` AffectNet rows (training.csv) with 512 px JPEGs and their face boxes."""
    rng = np.random.default_rng(seed)
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    codes = sorted(AFFECTNET_CODES)
    with open(lists / "training.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(AFFECTNET_COLUMNS)
        for row in range(count):
            name = f"{row % 7}/{row:06d}.jpg"
            _write_jpeg(root / "Manually_Annotated_Images" / name, _texture(rng, 512, 512))
            marks = ";".join(f"{v:.1f}" for v in rng.uniform(140, 370, 136))
            code = codes[row % len(codes)]
            writer.writerow([name, 96, 96, 320, 320, marks, code, "0.1", "-0.2"])


def write_rafd_like(root: Path, count: int, seed: int = 0) -> None:
    """`count` RaFD frontal shots (681 x 1024 JPEGs named as the dataset names them)."""
    rng = np.random.default_rng(seed)
    emotions = ("angry", "happy", "sad", "neutral", "surprised", "fearful", "disgusted")
    for shot in range(count):
        name = f"Rafd090_{shot // 3:02d}_Caucasian_male_{emotions[shot % 7]}_frontal.jpg"
        _write_jpeg(root / name, _texture(rng, 1024, 681))


# ---------------------------------------------------------------------------- measurements


def per_core_rate(fetch: Callable[[int], Any], count: int, batch: int = 16) -> float:
    """Samples per CPU-second of this process: fetch `count` samples, collating every `batch`.

    OpenCV and torch run on one thread meanwhile, as in a DataLoader worker.
    """
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        default_collate([fetch(i) for i in range(min(batch, count))])  # warm caches and maps
        started = time.process_time()
        pending: list[Any] = []
        for index in range(count):
            pending.append(fetch(index))
            if len(pending) == batch:
                default_collate(pending)
                pending = []
        if pending:
            default_collate(pending)
        return count / max(time.process_time() - started, 1e-9)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def loader_rates(dataset: Any, batch: int, batches: int) -> dict[str, float]:
    """The trainer's EndlessLoader with one worker process: samples per CPU-second of the worker
    (its whole job, the send to the trainer included), of the trainer process (receiving), and
    per wall-clock second (meaningful only on an idle machine)."""
    from trainer.stages.distributed import DistInfo
    from trainer.stages.loop import EndlessLoader

    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    loader = EndlessLoader(dataset, batch, seed=0, info=info, num_workers=1)
    # The trainer converts uint8 batches to float (on a GPU, there); on this CPU with one
    # thread, as two threads on a busy machine spend more time waiting for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _loader_rates(loader, batch, batches)
    finally:
        torch.set_num_threads(threads)


def _loader_rates(loader: Any, batch: int, batches: int) -> dict[str, float]:
    for _ in range(loader.prefetch + 1):  # worker started and its prefetch queue full
        next(loader)
    workers = getattr(loader._iterator, "_workers", [])  # a DataLoader internal: pids only
    pid = workers[0].pid if workers else None
    worker_before = _cpu_seconds(pid) if pid else float("nan")
    main_before, wall_before = time.process_time(), time.perf_counter()
    for _ in range(batches):
        next(loader)
    wall = time.perf_counter() - wall_before
    main = time.process_time() - main_before
    worker = (_cpu_seconds(pid) if pid else float("nan")) - worker_before
    loader.load_state_dict(loader.state_dict())  # drops the iterator: the worker shuts down
    samples = batches * batch
    return {
        "worker": samples / worker if worker > 0 else float("nan"),
        "main": samples / max(main, 1e-9),
        "wall": samples / wall,
    }


def _raw_item(dataset: Any, index: int) -> Any:
    return dataset[index % len(dataset)]


def _shard_item(dataset: Any, index: int) -> Any:
    return dataset.load_uint8(0, index % len(dataset))


def measure_data(quick: bool = False) -> list[dict[str, Any]]:
    """One row per (dataset, source): samples per worker core and through one worker."""
    from trainer.data import AffectNet, CelebAMaskHQ, RaFD, ShardExpressions, ShardParsing
    from trainer.data.prepare import PrepareOptions, prepare

    raw_count = 4 if quick else 24
    shard_count = 128 if quick else 1024
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="faceedit-bench-data-") as tmp:
        base = Path(tmp)
        write_celebamask_like(base / "celebamask", raw_count)
        write_affectnet_like(base / "affectnet", raw_count)
        write_rafd_like(base / "rafd", raw_count)
        cases: list[tuple[str, str, Any, int, bool]] = [
            ("parser batches", "celebamask-hq", CelebAMaskHQ, PARSER_SIZE, True),
            ("expression batches", "affectnet", AffectNet, CROP_SIZE, False),
            ("expression batches", "rafd", RaFD, CROP_SIZE, False),
        ]
        for batch_kind, kind, cls, size, augment in cases:
            root = base / kind.split("-")[0]
            options = {"augment": True} if augment else {}
            raw = cls(root, "train", size=size, **options)
            raw.cache_bytes = 0  # this row measures reading the files: decode every time
            raw_rate = per_core_rate(functools.partial(_raw_item, raw), raw_count)
            prepared = base / f"{kind}-shards"
            prepare(PrepareOptions(kind, str(root), size, splits=("train",)), prepared)
            if kind == "celebamask-hq":
                shards: Any = ShardParsing(prepared, "train", size=size, augment=True)
            else:
                shards = ShardExpressions(prepared, "train", size=size)
            rate = per_core_rate(functools.partial(_shard_item, shards), shard_count)
            through_one = loader_rates(shards, min(16, len(shards)), 8 if quick else 64)
            target = TARGETS[batch_kind] if kind != "rafd" else None
            common = {
                "data": f"{batch_kind}: {kind}",
                "px": size,
                "augment": "flip, scale, jitter" if augment else "none (GAN batches)",
                "load_average": round(load_average(), 2),
            }
            rows.append(
                {
                    **common,
                    "source": "raw files (real sizes)",
                    "samples_per_core_s": round(raw_rate, 1),
                    "one_worker": None,
                    "target": None,
                    "met": None,
                }
            )
            rows.append(
                {
                    **common,
                    "source": "prepared shards",
                    "samples_per_core_s": round(rate, 1),
                    "one_worker": {k: round(v, 1) for k, v in through_one.items()},
                    "target": target,
                    "met": None if target is None else bool(rate >= target),
                }
            )
    return rows


def consumption(
    name: str, gflop_per_sample: float, measured_per_s: float | None, device: str
) -> dict[str, Any]:
    """What a model consumes: measured on `device`, and estimated for one H100."""
    h100 = H100_PEAK_TFLOPS * 1e3 * H100_UTILISATION / max(gflop_per_sample, 1e-9)
    return {
        "model": name,
        "device": device,
        "gflop_per_sample": round(gflop_per_sample, 2),
        "measured_samples_per_s": None if measured_per_s is None else round(measured_per_s, 1),
        "h100_samples_per_s": round(h100, 0),
        "h100_assumption": f"{H100_UTILISATION:.0%} of {H100_PEAK_TFLOPS:.0f} TFLOP/s bf16",
    }
