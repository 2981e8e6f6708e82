"""`faceedit-train COMMAND`: each command lives in its own module under trainer/commands/."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Final

from faceedit.commands.cli import run_command

COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "prepare": (
        "trainer.commands.prepare",
        "align, resize and shard a dataset once, so training reads no JPEG or PNG",
    ),
    "parser": ("trainer.commands.parser", "stage 1: train the face parser on CelebAMask-HQ"),
    "gan": ("trainer.commands.gan", "stage 2: train the hierarchical GAN with the parser frozen"),
    "joint": ("trainer.commands.joint", "stage 3: fine-tune parser and GAN end to end"),
    "classifier": (
        "trainer.commands.classifier",
        "train the expression classifier that scores edits",
    ),
    "eval": ("trainer.commands.evaluate", "score a checkpoint: mIoU/F1, expression accuracy, FID"),
    "learning-check": (
        "trainer.commands.learning_check",
        "train every stage on a procedural world and check that it learned",
    ),
    "paired-ceiling": (
        "trainer.research.paired_ceiling_command",
        "diagnostic: the world generator trained with the ground truth, scored like the check",
    ),
    "critic-probe": (
        "trainer.research.critic_probe_command",
        "diagnostic: do a model's critics reward the true edit more than its own edit?",
    ),
    "real-faces-score": (
        "trainer.commands.real_faces_score",
        "score a checkpoint on held-out real faces, with controls that must score low",
    ),
    "bundle": (
        "trainer.commands.bundle",
        "make the model faceedit ships: a checkpoint cut for the app, with its measurements",
    ),
    "compare": ("trainer.commands.compare", "train and evaluate the paper's variants side by side"),
    "synth": (
        "trainer.commands.synth",
        "render the procedural face world (known answers) to train on",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(
        "faceedit-train",
        "Train faceedit models on CelebAMask-HQ, AffectNet, RaFD or your own folders.",
        COMMANDS,
        sys.argv[1:] if argv is None else argv,
    )


if __name__ == "__main__":
    sys.exit(main())
