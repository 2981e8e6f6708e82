"""The world's judge: the expression classifier that reads edits on the procedural world, for the
learning check and the comparisons alike.

It learns from the real renderings of train identities only and is scored on the held-out
(test) identities' renderings. Besides flips it is trained with random shifts, colour jitter and
Gaussian noise (classifier.augment_batch), as the real-face judge is: a judge trained on clean
renderings alone read per-image noise aimed at the model's own critics as the target 55 % of the
time (issue 29), so it measured the critics' shortcut, not a drawn expression. The learning
check's control row (trainer/judges/controls.py) keeps measuring that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import torch

from trainer.judges.classifier import (
    ClassifierConfig,
    ClassifierScores,
    ClassifierTrainConfig,
    ExpressionClassifier,
    save_classifier,
    train_classifier,
)
from trainer.judges.world.renderings import RenderingSet, read_pairs, world_size

# The judge looks at crops upsampled to this size: at 64 px its ResNet stem (stride 4) would
# average away the few pixels by which the world's expressions differ.
JUDGE_VIEW: Final[int] = 128
JUDGE_FILE: Final[str] = "judge.safetensors"  # where a check or a comparison keeps its judge
JUDGE_WIDTH: Final[int] = 16  # base channels (the world-64 recipe's check says the same)
# Every setting but the steps and the seed; the augmentation is the real-face judge's
# (trainer/judges/real/judge.py), the shift in pixels of the 128-px view (2 px of a 64-px world).
JUDGE_TRAINING: Final[ClassifierTrainConfig] = ClassifierTrainConfig(
    batch_size=32,
    lr=2e-3,
    shift=4,
    colour=0.3,
    noise=0.1,
    num_workers=0,
)


def judge_training(steps: int, seed: int = 0) -> ClassifierTrainConfig:
    """JUDGE_TRAINING for `steps` batches from `seed`, logging five times."""
    return replace(JUDGE_TRAINING, steps=steps, seed=seed, log_every=max(1, steps // 5))


@dataclass(frozen=True)
class WorldJudge:
    """A trained world judge, its held-out scores, how it trained and its loss per step."""

    model: ExpressionClassifier
    scores: ClassifierScores
    training: ClassifierTrainConfig
    losses: tuple[float, ...]

    def metadata(self) -> dict[str, Any]:
        """What its file records: the held-out accuracy and the training (augmentation
        included), so a score can be traced to the judge behind it."""
        return {"held_out_accuracy": self.scores.accuracy, "training": asdict(self.training)}


def train_world_judge(
    world: Path,
    steps: int,
    width: int = JUDGE_WIDTH,
    seed: int = 0,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] = print,
) -> WorldJudge:
    """Train a judge `width` channels wide on the train identities' renderings of `world`
    (judge_training) and score it on the held-out identities'; it ends on the CPU, where the
    scoring runs."""
    size = world_size(world)
    rows = read_pairs(world)
    train = RenderingSet([r for r in rows if r.split == "train"], size, JUDGE_VIEW)
    held_out = RenderingSet([r for r in rows if r.split == "test"], size, JUDGE_VIEW)
    torch.manual_seed(seed)  # the judge's first weights too come from the seed
    model = ExpressionClassifier(ClassifierConfig(base_channels=width, image_size=JUDGE_VIEW))
    config = judge_training(steps, seed)
    trained = train_classifier(model, train, held_out, config, device=device, log=log)
    log(f"judge: held-out accuracy on real renderings {trained.scores.accuracy:.3f}")
    return WorldJudge(trained.model.cpu().eval(), trained.scores, config, tuple(trained.losses))


def save_world_judge(path: Path, judge: WorldJudge) -> Path:
    """The judge's .safetensors file, with its `metadata`."""
    return save_classifier(path, judge.model, judge.metadata())


def trained_as_now(metadata: dict[str, Any], steps: int, seed: int) -> bool:
    """Whether a judge file's metadata records today's training for `steps` and `seed` (a judge
    saved before the augmentation records none)."""
    return metadata.get("training") == asdict(judge_training(steps, seed))
