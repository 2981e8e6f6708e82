"""Writers of tiny datasets in exactly the real on-disk formats of CelebAMask-HQ, AffectNet, RaFD
and expression folders. Nobody has the licensed datasets here, so tests build their own.

Sizes shrink (64 px "1024" images, 32 px "512" masks) but names, folders, CSV headers and
PNG encodings are the real ones.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from faceedit.vocab.labels import CLASS_INDEX, CLASS_NAMES, palette

MaskMode = Literal["L", "P", "RGB"]
MASK_MODES: tuple[MaskMode, ...] = ("L", "P", "RGB")

# (x0, y0, x1, y1) as fractions of the mask; ellipses are marked "ellipse". Overlaps are
# deliberate: hair over skin, lips over mouth, cloth over neck, brows and eyes inside skin.
PART_LAYOUT: dict[str, tuple[float, float, float, float]] = {
    "skin": (0.2, 0.2, 0.8, 0.9),
    "l_brow": (0.28, 0.36, 0.44, 0.40),
    "r_brow": (0.56, 0.36, 0.72, 0.40),
    "l_eye": (0.28, 0.44, 0.44, 0.52),
    "r_eye": (0.56, 0.44, 0.72, 0.52),
    "nose": (0.45, 0.50, 0.55, 0.64),
    "mouth": (0.38, 0.66, 0.62, 0.80),
    "u_lip": (0.38, 0.66, 0.62, 0.71),
    "l_lip": (0.38, 0.75, 0.62, 0.80),
    "neck": (0.38, 0.86, 0.62, 1.0),
    "cloth": (0.0, 0.94, 1.0, 1.0),
    "hair": (0.15, 0.0, 0.85, 0.30),
}
ELLIPSES = frozenset({"skin"})


def part_mask(part: str, size: int) -> np.ndarray:
    """(size, size) bool mask of one part of the synthetic face."""
    x0, y0, x1, y1 = PART_LAYOUT[part]
    yy, xx = np.mgrid[0:size, 0:size]
    u, v = (xx + 0.5) / size, (yy + 0.5) / size
    if part in ELLIPSES:
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        return ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1
    return (u >= x0) & (u < x1) & (v >= y0) & (v < y1)


def compose(parts: Iterable[str], size: int) -> np.ndarray:
    """(size, size) uint8 label map of the given parts, later classes on top."""
    labels = np.zeros((size, size), dtype=np.uint8)
    for part in sorted(parts, key=CLASS_INDEX.__getitem__):
        labels[part_mask(part, size)] = CLASS_INDEX[part]
    return labels


def save_mask(path: Path, mask: np.ndarray, mode: MaskMode) -> None:
    """A white-on-black PNG in one of the encodings found in CelebAMask-HQ-like data."""
    grey = mask.astype(np.uint8) * 255
    if mode == "L":
        image = Image.fromarray(grey)
    elif mode == "RGB":
        image = Image.fromarray(np.repeat(grey[..., None], 3, axis=2))
    else:  # palette: index 1 is white, so reading raw indices would give a wrong (0/1) mask
        image = Image.fromarray(mask.astype(np.uint8))  # "L" until the palette makes it "P"
        image.putpalette([0, 0, 0, 255, 255, 255] + [0] * (254 * 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_celebamask_hq(
    root: Path,
    ids: Iterable[int],
    size: int = 64,
    mask_size: int = 32,
    parts: Sequence[str] = tuple(PART_LAYOUT),
    modes: Mapping[str, MaskMode] | None = None,
    mapping: Mapping[int, int] | None = None,
) -> dict[int, np.ndarray]:
    """Write CelebA-HQ-img/{id}.jpg and CelebAMask-HQ-mask-anno/{id//2000}/{id:05d}_{part}.png.

    Images are the label map painted in faceedit.vocab.labels colours (so tests can check that
    augmentations keep image and labels aligned). Mask encodings cycle through greyscale,
    palette and RGB unless `modes` says otherwise; parts not in `parts` are absent (no file).
    `mapping` (id -> orig_idx) writes CelebA-HQ-to-CelebA-mapping.txt.
    Returns id -> expected (mask_size, mask_size) label map.
    """
    root = Path(root)
    ids = list(ids)
    labels = compose(parts, mask_size)
    colours = palette()
    big = np.asarray(Image.fromarray(labels).resize((size, size), Image.Resampling.NEAREST))
    for image_id in ids:
        image_path = root / "CelebA-HQ-img" / f"{image_id}.jpg"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(colours[big]).save(image_path, quality=98, subsampling=0)
        for k, part in enumerate(parts):
            mode = (modes or {}).get(part, MASK_MODES[k % len(MASK_MODES)])
            folder = root / "CelebAMask-HQ-mask-anno" / str(image_id // 2000)
            save_mask(folder / f"{image_id:05d}_{part}.png", part_mask(part, mask_size), mode)
    if mapping is not None:
        lines = ["idx orig_idx orig_file"]
        lines += [f"{i} {orig} {orig + 1:06d}.jpg" for i, orig in sorted(mapping.items())]
        (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(lines) + "\n")
    return {image_id: labels for image_id in ids}


# ------------------------------------------------------------------------------ AffectNet

AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
    "expression,valence,arousal"
)
BOX_COLOUR = (220, 30, 40)
BACKGROUND = (30, 90, 200)


def synthetic_landmarks(box: tuple[float, float, float, float]) -> np.ndarray:
    """(68, 2) iBUG-layout points inside a face box: eyes, nose and mouth where a face has them."""
    x, y, w, h = box
    rel = np.zeros((68, 2))
    rel[0:17] = np.stack(
        [np.linspace(0.05, 0.95, 17), 0.5 + 0.4 * np.sin(np.linspace(0, np.pi, 17))], 1
    )
    rel[17:27] = np.stack([np.linspace(0.2, 0.8, 10), np.full(10, 0.3)], 1)
    rel[27:36] = np.stack([np.full(9, 0.5), np.linspace(0.4, 0.62, 9)], 1)
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    ring = np.stack([0.06 * np.cos(angles), 0.03 * np.sin(angles)], 1)
    rel[36:42] = ring + np.array([0.32, 0.4])
    rel[42:48] = ring + np.array([0.68, 0.4])
    rel[30] = (0.5, 0.6)
    rel[48:68] = np.stack([np.linspace(0.35, 0.65, 20), np.full(20, 0.78)], 1)
    rel[48], rel[54] = (0.35, 0.78), (0.65, 0.78)
    return rel * (w, h) + (x, y)


@dataclass
class AffectNetRow:
    """One manually annotated AffectNet row; the image is written unless `write_image` is off."""

    path: str
    box: tuple[float, float, float, float] = (16, 12, 32, 32)
    expression: int = 1
    valence: float = 0.5
    arousal: float = 0.25
    landmarks: np.ndarray | None = None
    write_image: bool = True

    def fields(self) -> list[str]:
        marks = self.landmarks if self.landmarks is not None else synthetic_landmarks(self.box)
        return [
            self.path,
            *(f"{v:g}" for v in self.box),
            ";".join(f"{v:.2f}" for v in np.asarray(marks).reshape(-1)),
            str(self.expression),
            f"{self.valence:g}",
            f"{self.arousal:g}",
        ]


def write_affectnet(
    root: Path,
    rows: Iterable[AffectNetRow | str | list[str]],
    split: Literal["train", "val"] = "train",
    image_size: tuple[int, int] = (64, 56),
) -> list[Path]:
    """Write Manually_Annotated_file_lists/{training,validation}.csv and the images it names.

    A str row is written verbatim as one line, a list as CSV fields (for malformed rows). Each
    image (width, height = `image_size`) is BACKGROUND blue with its face box filled BOX_COLOUR.
    Returns the image paths written.
    """
    root = Path(root)
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    csv_path = lists / ("training.csv" if split == "train" else "validation.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        handle.write(AFFECTNET_HEADER + "\n")
        writer = csv.writer(handle, lineterminator="\n")
        for row in rows:
            if isinstance(row, str):
                handle.write(row + "\n")
                continue
            if isinstance(row, list):
                writer.writerow(row)
                continue
            writer.writerow(row.fields())
            if row.write_image:
                path = root / "Manually_Annotated_Images" / row.path
                width, height = image_size
                pixels = np.empty((height, width, 3), dtype=np.uint8)
                pixels[:] = BACKGROUND
                x, y, w, h = (round(v) for v in row.box)
                pixels[max(y, 0) : max(y + h, 0), max(x, 0) : max(x + w, 0)] = BOX_COLOUR
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path, quality=98, subsampling=0)
                written.append(path)
    return written


# ----------------------------------------------------------------------------------- RaFD

RAFD_EMOTIONS = (
    "angry",
    "contemptuous",
    "disgusted",
    "fearful",
    "happy",
    "neutral",
    "sad",
    "surprised",
)


def rafd_name(
    angle: str, subject: int, ethnicity: str, gender: str, emotion: str, gaze: str
) -> str:
    """A RaFD file name, e.g. Rafd090_28_Caucasian_male_angry_frontal.jpg."""
    return f"Rafd{angle}_{subject:02d}_{ethnicity}_{gender}_{emotion}_{gaze}.jpg"


def write_rafd(
    root: Path,
    subjects: Iterable[int] = range(1, 11),
    angles: Sequence[str] = ("045", "090"),
    emotions: Sequence[str] = ("happy", "angry"),
    gazes: Sequence[str] = ("frontal", "left"),
    extra_names: Iterable[str] = (),
    size: tuple[int, int] = (34, 51),
    nested: bool = False,
) -> list[Path]:
    """Write every (subject, angle, emotion, gaze) RaFD image, plus files named `extra_names`.

    Images are `size` (width, height) portraits, 681 x 1024 scaled down. `nested` puts each
    subject in its own sub-folder (the loader accepts any nesting). Returns the paths written.
    """
    root = Path(root)
    written: list[Path] = []
    names = [
        rafd_name(a, s, "Caucasian", "female" if s % 2 else "male", e, g)
        for s, a, e, g in itertools.product(subjects, angles, emotions, gazes)
    ]
    for k, name in enumerate([*names, *extra_names]):
        subject = name.split("_")[1] if name.count("_") >= 2 else "misc"
        path = (root / f"subject_{subject}" if nested else root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.full((size[1], size[0], 3), (40 + 7 * k) % 256, dtype=np.uint8)
        Image.fromarray(pixels).save(path, quality=95)
        written.append(path)
    return written


# --------------------------------------------------------------------- expression folders


def write_folders(
    root: Path,
    counts: Mapping[str, int] | Mapping[str, Mapping[str, int]],
    size: int = 24,
    ext: str = ".png",
) -> list[Path]:
    """Write root/<expression>/img_k.png (counts: name -> n) or, when the values are mappings,
    root/<split>/<expression>/img_k.png (counts: split -> name -> n). Returns the paths written.
    """
    root = Path(root)
    written: list[Path] = []
    for name, value in counts.items():
        if isinstance(value, Mapping):
            written += write_folders(root / name, value, size, ext)
            continue
        for k in range(value):
            path = root / name / f"img_{k:03d}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            shade = (sum(map(ord, name)) * 13 + k * 29) % 256
            Image.fromarray(np.full((size, size + 8, 3), shade, dtype=np.uint8)).save(path)
            written.append(path)
    return written


# --------------------------------------------------------------------- facial_expressions

FACIAL_EXPRESSIONS_HEADER = "user.id,image,emotion"


@dataclass
class FacialExpressionsPhoto:
    """One photo of the facial_expressions layout: its file (a tight crop of the bundled sample
    face, which the detector finds) and its legend row. `label=None`: no row; `write_file`
    off: a row without a file; `corrupt`: a file that is not a JPEG."""

    name: str
    label: str | None = "neutral"
    grey: bool = False
    write_file: bool = True
    corrupt: bool = False
    user: str = "dwdii"


def face_photo(variant: int, grey: bool = False, side: int = 80) -> np.ndarray:
    """(side, side, 3) uint8: the bundled sample face cropped from brows to chin (a little
    differently per `variant`, mirrored on odd ones), as the dataset's tight crops are."""
    from faceedit.media.bundled import astronaut_image_path
    from faceedit.media.sources import read_image

    sample = read_image(astronaut_image_path())  # 512 x 512, the face around (225, 120)
    shift = (variant % 4) * 4
    crop = sample[60 + shift : 220 + shift, 150 + shift : 310 + shift]
    if variant % 2:
        crop = crop[:, ::-1]
    small = np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.LANCZOS))
    if grey:
        small = np.repeat(np.asarray(Image.fromarray(small).convert("L"))[..., None], 3, axis=2)
    return np.ascontiguousarray(small)


def write_facial_expressions(
    root: Path, photos: Iterable[FacialExpressionsPhoto], extra_rows: Sequence[str] = ()
) -> list[Path]:
    """Write images/<name> (greyscale photos as one-channel JPEGs, as most of the dataset's are)
    and data/legend.csv (its header, one row per photo with a label, then `extra_rows` as
    written). Returns the image files written."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(parents=True, exist_ok=True)
    lines = [FACIAL_EXPRESSIONS_HEADER]
    written: list[Path] = []
    for k, photo in enumerate(photos):
        if photo.label is not None:
            lines.append(f"{photo.user},{photo.name},{photo.label}")
        if not photo.write_file:
            continue
        path = root / "images" / photo.name
        if photo.corrupt:
            path.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
        else:
            pixels = face_photo(k, photo.grey)
            image = Image.fromarray(pixels[..., 0] if photo.grey else pixels)
            image.save(path, quality=92)
        written.append(path)
    lines += list(extra_rows)
    (root / "data" / "legend.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


def facial_expressions_photos() -> list[FacialExpressionsPhoto]:
    """Twelve identities in the dataset's naming (LFW's Name_Name_0001.jpg and others'
    Name_12.jpg), labels in mixed case, and one of each problem the loader must survive."""
    photo = FacialExpressionsPhoto
    return [
        photo("Ann_Able_0001.jpg", "happiness"),
        photo("Ann_Able_0002.jpg", "HAPPINESS"),
        photo("Ann_Able_0003.jpg", "Neutral"),
        photo("Bob_Baker_0001.jpg", "surprise", grey=True),
        photo("Bob_Baker_0002.jpg", "SADNESS"),
        photo("Cy_Cole_0001.jpg", "anger"),
        photo("Dee_Dunn_0001.jpg", "disgust"),
        photo("Ed_Eng_0001.jpg", "fear"),
        photo("Fay_Fox_0001.jpg", "contempt"),
        photo("Gus_Gray_0001.jpg", "neutral", grey=True),
        photo("Avinash_30.jpg", "SURPRISE", user="jhamski"),
        photo("Hal_Hart_0001.jpg", "neutral"),
        photo("Ivy_Ito_0001.jpg", None),  # an image without a legend row
        photo("Jo_Jones_0001.jpg", "neutral", write_file=False),  # a row without an image
        photo("Kim_Kay_0001.jpg", "happiness", corrupt=True),  # unreadable
        photo("Lou_Lee_0001.jpg", "confused"),  # not an expression the dataset uses
    ]


__all__ = [
    "CLASS_NAMES",
    "AffectNetRow",
    "FacialExpressionsPhoto",
    "compose",
    "face_photo",
    "facial_expressions_photos",
    "part_mask",
    "rafd_name",
    "synthetic_landmarks",
    "write_affectnet",
    "write_celebamask_hq",
    "write_facial_expressions",
    "write_folders",
    "write_rafd",
]


def torchrun_joint_command(
    folder: Path,
    init: Path,
    processes: int,
    device: str,
    steps: int,
    extra: Sequence[str] = (),
) -> list[str]:
    """A tiny `joint` run under `torchrun --standalone` on data written into `folder` (16
    AffectNet rows, 20 CelebAMask-HQ images), its run folder `folder / "run"` last on the line:
    the multi-process tests on the CPU (gloo) and on GPUs share it."""
    rows = [AffectNetRow(path=f"a/f{i}.jpg", expression=i % 8) for i in range(16)]
    write_affectnet(folder / "affectnet", rows)
    write_celebamask_hq(folder / "celeb", range(20))
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(processes),
        "-m", "trainer.commands.cli", "joint",
        "--affectnet", str(folder / "affectnet"),
        "--celebamask-hq", str(folder / "celeb"),
        "--init", str(init), "--preset", "tiny", "--device", device,
        "--batch-size", "2", "--num-workers", "0", "--steps", str(steps), "--log-every", "1",
        *extra,
        "--out", str(folder / "run"),
    ]  # fmt: skip
