"""Make a bundled model (faceedit/assets/real.safetensors): a trained checkpoint cut to what
the app runs, with each expression's facts in its metadata.

What stays is what `EditEngine` edits with: the parser and the EMA generator (the trainer's
export stores the EMA copy as `generator`). The critics go: the app needs them only for the
live expression-score plot, and they are a third of the file. The `expressions` table
(faceedit.weights.expression_facts) says per expression whether it was trained, on how many
photos, and how often the real-faces scorer's judge read held-out edits towards it as it
(report.json, trainer/judges/real/report.py). The training photos are counted in the run's own
data (its config.yaml beside the checkpoint); where that is not readable, `trained` comes from
the report's list of expressions the judge could learn and the counts stay unknown.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from faceedit.errors import CheckpointError, ConfigError, DatasetError, InputError
from faceedit.fileio import atomic_write_bytes, check_output_file
from faceedit.model.config import EditArea
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.weights import checkpoint
from faceedit.weights.expression_facts import TABLE_KEY, ExpressionFacts
from trainer.config import TrainConfig, load_yaml
from trainer.stages.gan import CHECKPOINT_NAME

logger = logging.getLogger(__name__)

# What a bundled model may weigh: the package carries it to every install.
MAX_BUNDLE_BYTES: Final[int] = 25 * 10**6
PRODUCT_EDITOR: Final[str] = "product"
RUN_CONFIG: Final[str] = "config.yaml"


@dataclass(frozen=True)
class TrainingCounts:
    """Training photos per expression and the fewest an expression needed to be drawn."""

    photos: dict[str, int]
    min_class_images: int


def checkpoint_file(run_or_file: str | os.PathLike[str]) -> Path:
    """A run folder's model.safetensors, or the file given."""
    path = Path(run_or_file).expanduser()
    return path / CHECKPOINT_NAME if path.is_dir() else path


def read_report(path: str | os.PathLike[str]) -> tuple[dict[str, float | None], list[str]]:
    """(expression -> the product's read-as-target share, the expressions the judge could
    learn) from `faceedit-train real-faces-score`'s report.json."""
    file = Path(path).expanduser()
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
        product = next(e for e in report["editors"] if e.get("editor") == PRODUCT_EDITOR)
        shares = {name: row.get("read_as_target") for name, row in product["targets"].items()}
        teachable = list(report["judge"]["teachable"]["teachable"])
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the report {file}: {error}") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, StopIteration):
        raise InputError(
            f"{file} is not a report of 'faceedit-train real-faces-score': it needs "
            f"editors[] with a '{PRODUCT_EDITOR}' editor's targets and judge.teachable.teachable"
        ) from None
    bad = [n for n, v in shares.items() if v is not None and not isinstance(v, int | float)]
    if bad:
        raise InputError(f"{file}: read_as_target of {bad} is not a number")
    return {n: None if v is None else float(v) for n, v in shares.items()}, teachable


def training_counts(model_file: Path, min_class_images: int | None = None) -> TrainingCounts | None:
    """The training photos of each expression, counted in the data the run beside `model_file`
    trained on (its config.yaml); None, with the reason logged, when that cannot be read.

    The minimum is `min_class_images` when given, else the run's own: classes under
    data.min_class_images are never drawn when data.class_balanced is on.
    """
    from trainer.data import build_expression_dataset
    from trainer.data.facial_expressions import expression_counts
    from trainer.data.sampling import dataset_targets

    config_file = model_file.parent / RUN_CONFIG
    try:
        config = TrainConfig.from_dict(load_yaml(config_file))
        source = config.data.expression_source
        if source is None:
            raise ConfigError(f"{config_file} names no expression data")
        kind, root = source
        options: dict[str, Any] = {"align": config.data.align} if config.data.align else {}
        train = build_expression_dataset(kind, root, "train", config.model.crop_size, **options)
        photos = expression_counts({"train": dataset_targets(train).tolist()})["train"]
    except (ConfigError, DatasetError, OSError, ValueError) as error:
        logger.warning("training photos not counted (%s): trained comes from the report", error)
        return None
    if min_class_images is None:
        min_class_images = config.data.min_class_images if config.data.class_balanced else 1
    return TrainingCounts(photos, min_class_images)


def expression_table(
    shares: Mapping[str, float | None],
    teachable: Sequence[str],
    counts: TrainingCounts | None,
) -> dict[str, ExpressionFacts]:
    """Every expression's facts: trained when it had at least the minimum of training photos
    (without counts: when the judge could learn it), with its measured share (None if the
    report did not measure it)."""
    table = {}
    for name in EXPRESSIONS:
        if counts is None:
            trained, photos = name in teachable, None
        else:
            photos = counts.photos.get(name, 0)
            trained = photos >= max(counts.min_class_images, 1)
        table[name] = ExpressionFacts(trained, shares.get(name), photos)
    return table


def bundle(
    run_or_file: str | os.PathLike[str],
    report: str | os.PathLike[str],
    out: str | os.PathLike[str],
    min_class_images: int | None = None,
    max_bytes: int = MAX_BUNDLE_BYTES,
    edit_area: EditArea | None = None,
) -> tuple[Path, dict[str, ExpressionFacts]]:
    """Write the bundled model of a trained checkpoint to `out`, atomically; refuse one that
    cannot edit or would weigh more than `max_bytes`. Returns the path and its table.

    `edit_area` ("crop" or "face", ModelConfig.edit_area) sets where the app pastes its
    edits, an inference setting no weight depends on (None: as the checkpoint says)."""
    source = checkpoint_file(run_or_file)
    target = check_output_file(out, "--out")
    loaded = checkpoint.load(source, device="cpu")  # safetensors only: a file runs no code
    if loaded.generator is None or (
        loaded.parser is None and loaded.config.region_source == "masks"
    ):
        raise CheckpointError(
            f"{source} holds {', '.join(loaded.contents)}: a bundled model needs the parser "
            "and the generator the app edits with"
        )
    shares, teachable = read_report(report)
    counts = training_counts(source, min_class_images)
    table = expression_table(shares, teachable, counts)
    metadata = dict(loaded.metadata)
    metadata[TABLE_KEY] = {name: row.to_dict() for name, row in table.items()}
    metadata["bundle"] = {
        "checkpoint": source.name,
        "report": Path(report).name,
        "photos_counted": counts is not None,
        "min_class_images": None if counts is None else counts.min_class_images,
    }
    config = loaded.config if edit_area is None else loaded.config.replace(edit_area=edit_area)
    data = checkpoint.encode(
        config,
        parser=loaded.parser,
        generator=loaded.generator,
        metadata=metadata,
        where=str(target),
    )
    if len(data) > max_bytes:
        raise CheckpointError(
            f"the bundled model would weigh {len(data) / 1e6:.1f} MB, more than the "
            f"{max_bytes / 1e6:.0f} MB the package may carry; train a smaller model "
            f"(model.*.base_channels) or ship it beside the package (faceedit --checkpoint FILE)"
        )
    return atomic_write_bytes(target, data), table
