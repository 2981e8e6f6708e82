#!/usr/bin/env bash
# Train the small demo model on the procedural world and install it as package data:
#   faceedit/assets/demo.safetensors   the joint-stage checkpoint (parser + EMA generator + critics)
#   faceedit/assets/samples/*.png      4 held-out world faces (neutral, 64 px) to try it on
# It is the learning check with seed 0 and the world-64 recipe (trainer/recipes/world-64.yaml:
# every setting of every stage; docs/learning.md), so the same command also writes the check's
# report next to the runs. Usage: scripts/train_demo.sh [WORK_DIR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-$(mktemp -d)/demo}"
THREADS="${2:-1}"
SEED=0
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="$THREADS"
PY="${PYTHON:-python}"
# Exit status 1 only means "some learning targets not met": the checkpoint is still written.
"$PY" -m trainer.commands.cli learning-check --recipe world-64 --out "$WORK" --seed "$SEED" --threads "$THREADS" || [ $? -eq 1 ]
cp "$WORK/runs/joint/model.safetensors" faceedit/assets/demo.safetensors
mkdir -p faceedit/assets/samples
"$PY" - "$WORK/world" <<'PY'
import sys
from pathlib import Path
import cv2
from trainer.judges.world.renderings import by_identity, read_pairs
world = Path(sys.argv[1])
table = by_identity(read_pairs(world), "test")
for k, renders in enumerate(list(table.values())[:4]):
    image = cv2.imread(str(renders[0].image), cv2.IMREAD_COLOR)
    cv2.imwrite(str(Path("faceedit/assets/samples") / f"world_face_{k + 1}.png"), image)
PY
ls -la faceedit/assets/demo.safetensors faceedit/assets/samples
