#!/usr/bin/env bash
# Create (or reuse) .venv at the repository root and install faceedit with its test tools.
# Idempotent: a second run with an unchanged pyproject.toml returns in about a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python_bin="${PYTHON:-python3.11}"
if ! command -v "$python_bin" >/dev/null 2>&1; then
    echo "faceedit needs Python 3.11 ('$python_bin' was not found; set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $("$python_bin" --version)"
    "$python_bin" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)
# Every install is held to the versions verified together (scripts/constraints.txt says why).
constraints=(-c scripts/constraints.txt)

# pip's known, expected complaint: facenet-pytorch's metadata asks for torchvision, which
# faceedit replaces on CPU machines (see pyproject.toml). Hide that and local-mirror noise only.
quiet_pip() {
    local log status=0
    log="$(mktemp)"
    "${pip[@]}" "$@" >"$log" 2>&1 || status=$?
    grep -v -e "requires torchvision, which is not installed" \
        -e "dependency resolver does not currently take into account" \
        -e "is ignored: it is neither a file nor a directory" "$log" || true
    rm -f "$log"
    return "$status"
}

# The window's system libraries (Qt's xcb platform): checked on every run, a warning only,
# since the tests and --snapshot run offscreen without them.
check_display() {
    bash scripts/check_display.sh .venv/bin/python 2>&1 | sed 's/^/[setup] warning: /' || true
}

stamp=".venv/.faceedit-setup"
want="$(cat pyproject.toml scripts/setup.sh scripts/constraints.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    check_display
    exit 0
fi

# torch first and pinned, so nothing later can replace it with a newer (CUDA) build.
echo "[setup] installing torch 2.13.0"
quiet_pip install -q "${constraints[@]}" "torch==2.13.0"
# facenet-pytorch's metadata asks for torchvision; see pyproject.toml for why it comes without.
echo "[setup] installing facenet-pytorch 2.5.3 (MTCNN weights ship inside the wheel)"
quiet_pip install -q "${constraints[@]}" --no-deps "facenet-pytorch==2.5.3"
# landmarks: dlib for preparing real faces (trainer only), so its tests run here and in CI.
extras="dev,landmarks"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    extras="dev,landmarks,cuda"
fi
echo "[setup] installing faceedit[$extras]"
quiet_pip install -q "${constraints[@]}" -e ".[$extras]"
echo "$want" > "$stamp"
check_display
echo "[setup] done: $(du -sh .venv | cut -f1) in .venv"
