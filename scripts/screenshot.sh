#!/usr/bin/env bash
# Regenerate docs/screenshot.png: the main window on the bundled real sample photo, edited
# towards happy by the bundled real-face model, with the segmentation overlay, through the app's
# own `--snapshot`.
#
# CHECKPOINT=demo (or a path) takes another model; IMAGE=path another picture (the demo model
# needs one of its procedural samples: IMAGE=faceedit/assets/samples/world_face_1.png). Renders under a real X
# server when xvfb-run is installed (apt-get install xvfb xauth), else offscreen. Never touches
# the user's settings (a temporary settings folder, and --snapshot writes none anyway).
# SCREEN=1366x768 renders on a laptop-sized screen (the window fills it): docs/screenshot-1366.png.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=${1:-docs/screenshot.png}
checkpoint=${CHECKPOINT:-real}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export FACEEDIT_SETTINGS_DIR="$work/settings"
runner=()
if command -v xvfb-run >/dev/null 2>&1 && bash scripts/check_display.sh "$python" 2>/dev/null; then
    runner=(xvfb-run -a -s "-screen 0 ${SCREEN:-1600x1000}x24")
    export QT_QPA_PLATFORM=xcb
else
    echo "xvfb-run or Qt's xcb libraries missing: rendering offscreen" >&2
    export QT_QPA_PLATFORM=offscreen
fi
source=()
if [ -n "${IMAGE:-}" ]; then
    source=("$IMAGE")
fi
"${runner[@]}" "$python" -m faceedit.commands.cli "${source[@]}" \
    --checkpoint "$checkpoint" --device cpu --no-compile \
    --expression "${EXPRESSION:-happy=1}" \
    --snapshot "$out"
