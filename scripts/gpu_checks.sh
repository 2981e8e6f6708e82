#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, as one script for a machine that has one (and PyTorch with
# CUDA, but perhaps not faceedit's Qt): the machine and its peaks, the bench's CUDA figures on a
# quiet GPU, then the CUDA tests (engine and session in float32/bf16, a training step under bf16
# autocast, torchrun on CUDA: NCCL where there are several GPUs) beside learning checks trained
# on the GPU at longer budgets.
# Usage: scripts/gpu_checks.sh OUT_DIR [SECONDS]   (SECONDS: the whole run's budget, default 540)
# Environment: BENCH_SECONDS (the bench's share, default a quarter of the budget; 0 skips it) and
# CHECKS (the learning checks, one per line: a name, then learning-check flags; default two
# checks at --scale 2, seeds 0 and 1).
# Writes OUT_DIR/log.txt, bench_cuda.json, learning.tar.gz (reports, curves, grids, event files)
# and models.tar.gz (each check's final checkpoint).
# faceedit runs from this checkout (PYTHONPATH) on the machine's own PyTorch; wheels in .whl/
# are installed first (the face detector's facenet-pytorch, which a GPU image lacks:
# `pip download --no-deps -d .whl facenet-pytorch==2.5.3`). On an H200, 2026-11-26, a world-64
# GAN iteration took 0.1 s (10 it/s at batch 8, one process), so a scale-4 check does not fit
# 8 minutes: the checks below use scale 2.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/gpu_checks.sh OUT_DIR [SECONDS]}"
BUDGET="${2:-540}"
PY="${PYTHON:-python3}"
SITE="$(mktemp -d)"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$OUT"
LOG="$OUT/log.txt"
START=$SECONDS
left() { echo $((BUDGET - (SECONDS - START))); }
say() { echo "== $(date -u +%T) [$((SECONDS - START)) s] $*" | tee -a "$LOG"; }

say "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  lscpu | grep -E "Model name|^CPU\(s\)"
  "$PY" - <<'PY'
import time, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())
for dtype in (torch.bfloat16, torch.float32):
    a = torch.randn(8192, 8192, device="cuda", dtype=dtype); b = torch.randn_like(a)
    for _ in range(3): a @ b
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(10): a @ b
    torch.cuda.synchronize(); s = (time.perf_counter() - t) / 10
    print(f"matmul 8192^3 {dtype}: {2 * 8192**3 / s / 1e12:.0f} TFLOP/s")
x = torch.empty(2**30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): y.copy_(x)
torch.cuda.synchronize(); print(f"device copy: {2 * 2**30 * 20 / (time.perf_counter() - t) / 1e12:.2f} TB/s read+write")
PY
} >>"$LOG" 2>&1

BENCH_SECONDS="${BENCH_SECONDS:-$((BUDGET / 4))}"
CHECKS="${CHECKS:-"s0x2 --seed 0 --scale 2
s1x2 --seed 1 --scale 2"}"

if [ "$BENCH_SECONDS" -gt 0 ]; then
    say "bench on the quiet GPU"
    timeout "$BENCH_SECONDS" "$PY" -m faceedit.commands.cli bench --device cuda --no-compile \
        --sections stages,parse,baseline,slider,optimizations,training --repeats 30 --warmup 5 \
        --training-presets tiny,world-64,paper-128 --train-batch 16 --json "$OUT/bench_cuda.json" >>"$LOG" 2>&1
    say "bench exit $?"
fi

# The learning checks share the GPU from here on; their wall times are not speed figures.
CHECK_SECONDS=$(( $(left) - 45 ))
run_check() {  # name, then learning-check flags
    local name=$1; shift
    timeout "$CHECK_SECONDS" "$PY" -m trainer.commands.cli learning-check --out "$OUT/lc/$name" \
        --device cuda --threads 2 "$@" >"$OUT/lc-$name.log" 2>&1
    echo "exit $?" >>"$OUT/lc-$name.log"
}
mkdir -p "$OUT/lc"
say "learning checks on cuda, ${CHECK_SECONDS} s each at most"
while read -r name flags; do
    [ -n "$name" ] && run_check "$name" $flags &
done <<<"$CHECKS"

say "CUDA tests"
timeout $(( $(left) - 60 )) "$PY" -m pytest -q -p no:cacheprovider tests/gpu \
    tests/inference/test_engine.py >>"$LOG" 2>&1
say "tests exit $?"
wait
say "learning checks done"
for f in "$OUT"/lc-*.log; do echo "--- $f"; tail -n 15 "$f"; done >>"$LOG"
tar -czf "$OUT/learning.tar.gz" -C "$OUT" --exclude='*/world' --exclude='*.safetensors' \
    --exclude='state.pt' lc $(cd "$OUT" && ls lc-*.log) 2>>"$LOG"
# what `learning-check --rescore` needs besides the world (remade from its seed with `synth`)
# and the config.yaml files in learning.tar.gz: a check whose evaluation ran out of time here
tar -czf "$OUT/models.tar.gz" -C "$OUT" $(cd "$OUT" && ls lc/*/runs/joint/model.safetensors \
    lc/*/runs/parser/parser.safetensors lc/*/judge.safetensors 2>/dev/null) 2>>"$LOG"
rm -rf "$OUT/lc" "$OUT"/lc-*.log
say "done"
