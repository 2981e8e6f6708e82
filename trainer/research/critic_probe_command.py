"""`faceedit-train critic-probe`: do a model's critics reward the true edit more than its own?

On a learning check's world, the critics of a gan or joint checkpoint read the held-out
identities' true renderings of each target (seen as an edit is seen: through the input's
masks, or with --masks own each through its own parse) and the model's edits;
trainer/research/critic_probe.py says why that matters. Writes a JSON report and prints, per
critic, its cross-entropy towards the target on both.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from faceedit.fileio import atomic_write_text, check_output_file
from faceedit.limits import bounded_int
from faceedit.weights import checkpoint
from trainer.config import CRITIC_MASKS
from trainer.research.critic_probe import FRAMES, probe_critics

logger = logging.getLogger("trainer.research.critic_probe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Probe a gan/joint checkpoint's critics on a procedural world: their cross-entropy "
        "towards the target on the true rendering against on the model's own edit."
    )
    parser.add_argument(
        "--world", required=True, type=Path, help="the world folder (faceedit-train synth)"
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a gan or joint model.safetensors"
    )
    parser.add_argument("--out", required=True, type=Path, help="the JSON report to write")
    parser.add_argument(
        "--frame",
        choices=FRAMES,
        default="rendered",
        help="rendered: the images as the check edits them; landmarks: aligned by each input's "
        "5 points, as data.align=landmarks trains (default rendered)",
    )
    parser.add_argument(
        "--masks",
        choices=CRITIC_MASKS,
        default="input",
        help="input: the truth and the edit both seen through the input's region masks; own: "
        "each through its own parse, as gan_optim.critic_masks=own trains (default input)",
    )
    parser.add_argument("--identities", type=bounded_int(1, 100_000), default=24)
    parser.add_argument("--threads", type=bounded_int(1, 1024), default=2)


def run(args: argparse.Namespace) -> int:
    out = check_output_file(args.out, "--out")
    torch.set_num_threads(args.threads)
    probe = probe_critics(
        checkpoint.load(args.checkpoint), Path(args.world), args.identities, args.frame, args.masks
    )
    atomic_write_text(out, json.dumps(probe.to_dict(), indent=1))
    for name, truth in probe.truth.items():
        edit = probe.edit[name]
        logger.info(
            "%-8s real accuracy %.3f | CE towards the target: truth %.3f, edit %.3f | "
            "truth read as its source %.3f",
            name,
            probe.real_accuracy[name],
            truth.cross_entropy,
            edit.cross_entropy,
            truth.source_probability,
        )
    return 0
