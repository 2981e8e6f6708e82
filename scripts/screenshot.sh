#!/usr/bin/env bash
# Regenerate docs/screenshot.png: the main window on the bundled sample face with moved sliders
# and the segmentation overlay, taken through the app's own `--snapshot` path.
#
# The model is a tiny checkpoint trained for a few steps here (tests/factories.py), not a
# trained one: the picture shows the app, not the quality of an edit. Runs offscreen by default;
# with xvfb-run installed it renders under a virtual X server instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=${1:-docs/screenshot.png}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" - "$work/tiny.safetensors" <<'PY'
import sys
from pathlib import Path

from tests.factories import make_checkpoint

make_checkpoint(Path(sys.argv[1]), steps=5)
PY

export FACEEDIT_SETTINGS_DIR="$work/settings"  # never touch the user's own settings
runner=()
if command -v xvfb-run >/dev/null 2>&1; then
    runner=(xvfb-run -a -s "-screen 0 1600x1000x24")
else
    export QT_QPA_PLATFORM=offscreen
fi
"${runner[@]}" "$python" -m faceedit.commands.cli \
    --checkpoint "$work/tiny.safetensors" --device cpu \
    --expression happy=0.8,surprised=0.35 --region mouth:happy=1 --editable brows,eyes,mouth \
    --snapshot "$out"
