#!/usr/bin/env bash
# Check that Qt's xcb platform plugin (the one a real Linux desktop window uses) finds every
# system library it needs. Exit 0 when it does; else name the missing libraries and the Debian
# packages that bring them, and exit 1. Usage: scripts/check_display.sh [PYTHON]
set -euo pipefail
python_bin="${1:-.venv/bin/python}"
plugin_dir="$("$python_bin" -c 'import os, PySide6; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))' 2>/dev/null)" || {
    echo "PySide6 is not installed for $python_bin" >&2
    exit 1
}
missing="$(ldd "$plugin_dir/plugins/platforms/libqxcb.so" "$plugin_dir"/lib/libQt6XcbQpa.so.* 2>/dev/null \
    | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')"
if [ -z "$missing" ]; then
    exit 0
fi
packages="libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0"
echo "the window needs system libraries that are missing: ${missing}(on Debian/Ubuntu: sudo apt-get install ${packages}); the tests and --snapshot still run offscreen" >&2
exit 1
