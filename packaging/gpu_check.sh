#!/usr/bin/env bash
# The GPU check: Studio's CUDA paths proven in one call of a GPU machine that has torch but no network.
#
#   bash packaging/gpu_check.sh prepare    # here, with network: wheels the GPU image lacks -> .whl/, data -> .data/
#   bash packaging/gpu_check.sh            # there (the device tool: carry .whl and .data), writes under $OUT
#   bash packaging/gpu_check.sh dry-run    # here, on the CPU: the same pipeline with minute-long stand-ins
#
# On the GPU it runs, with a clear line for each step:
#   1. what the machine has (GPU, driver, torch, onnxruntime providers);
#   2. `pytest -m gpu` (tests/gpu and the synthesiser's CUDA test) while
#   3. the sprite models train bigger for GPU_CHECK_MINUTES minutes each, all at once on the one GPU: the GPU
#      preset of each family from scratch, and the bundled GAN and diffusion fine-tuned with the GPU preset;
#   4. `studio bench all --device cuda`;
#   5. packs each trained model (weights, sidecar, last sample grid; before the benchmark) and the tables and logs
#      under $OUT (at most 8 files of at most 16 MiB: what the device tool brings back), all within BUDGET_S.
# Without a CUDA GPU it stops at step 1 and says why. Nothing here reaches the network.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-run}
OUT=${OUT:-$ROOT/artifacts/gpu-check}
MINUTES=${GPU_CHECK_MINUTES:-6}
BUDGET_S=${GPU_CHECK_BUDGET_S:-570}  # the whole run, start to last file: the device tool's call limit minus margin
STARTED=$SECONDS
DATA_SRC=${STUDIO_SPRITE_DATA:-$HOME/.local/share/studio/datasets/crawl-tiles}
PY=python3  # the GPU image's Python (the one that holds torch)
# What the GPU image (Python 3.12, torch, onnx, onnxruntime, numpy, pillow, safetensors, pytest) lacks.
WHEELS=(platformdirs==4.14.9 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 mido==1.3.3 onnxslim==0.1.98)
RUNS=(gan-gpu:gan:scratch diffusion-gpu:diffusion:scratch vae-gpu:vae:scratch gan-finetuned:gan:sprite-gan
      diffusion-finetuned:diffusion:sprite-diffusion)
# GPU_CHECK_RUNS="name:family:start ..." replaces them (start: scratch, a model name or a .safetensors path, e.g. the
# weights of an earlier GPU check carried in .data/ to continue it); GPU_CHECK_TRAIN_ONLY=1 skips tests and bench.
[ -n "${GPU_CHECK_RUNS:-}" ] && read -r -a RUNS <<<"$GPU_CHECK_RUNS"
WORKERS=${GPU_CHECK_WORKERS:-3}  # batch-preparing processes per training

say() { printf '[gpu-check] %s\n' "$*" >&2; }

prepare() {
  local py=${PYTHON:-$ROOT/.venv/bin/python}
  mkdir -p .whl .data
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  grep -qx '/.data/' .git/info/exclude 2>/dev/null || echo '/.data/' >> .git/info/exclude
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}" || { say "could not download the wheels"; exit 1; }
  if [ ! -f "$DATA_SRC/manifest.json" ]; then
    say "no sprite data set at $DATA_SRC: run 'studio data sprites' first"; exit 1
  fi
  rm -rf .data/crawl-tiles && cp -r "$DATA_SRC" .data/crawl-tiles
  git rev-parse --short HEAD > .data/commit.txt  # the copy that travels has no git history
  say "ready: $(du -sh .whl | cut -f1) of wheels, $(du -sh .data | cut -f1) of data."
  say "run it on the GPU machine with: bash packaging/gpu_check.sh   (carry .whl and .data; timeout 590 s)"
}

machine_facts() {
  "$PY" - <<'EOF'
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA build {torch.version.cuda}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info()
    print(f"GPU: {p.name}, {p.multi_processor_count} SMs, {free / 2**30:.0f} of {total / 2**30:.0f} GiB free")
try:
    import onnxruntime as ort
    print(f"onnxruntime {ort.__version__}: {', '.join(ort.get_available_providers())}")
except ImportError:
    print("onnxruntime: not installed")
EOF
}

check_gpu() {
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    say "STOP: no NVIDIA driver here (nvidia-smi not found): this check needs a CUDA GPU."; exit 2
  fi
  if ! nvidia-smi -L >/dev/null 2>&1; then
    say "STOP: nvidia-smi finds no GPU ($(nvidia-smi -L 2>&1 | head -1))."; exit 2
  fi
  if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    say "STOP: a GPU is present but this Python's torch cannot use it (a CPU-only torch, or a driver too old" \
        "for its CUDA $("$PY" -c 'import torch; print(torch.version.cuda)' 2>/dev/null))."; exit 2
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader >&2
}

install_wheels() {
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl || { say "STOP: the carried wheels did not install"; exit 2; }
    export PYTHONPATH=/tmp/site:$ROOT
  else
    export PYTHONPATH=$ROOT
  fi
}

train_all() {
  local device=$1 minutes=$2 data=$3 extra=("${@:4}")
  local pids=()
  for spec in "${RUNS[@]}"; do
    IFS=: read -r name family start <<<"$spec"
    local init=(--scratch)
    [ "$start" != scratch ] && init=(--init "$start")
    timeout "$(awk "BEGIN{print int($minutes*60+120)}")" "$PY" -m studio train sprite --model "$family" --data "$data" --preset gpu "${init[@]}" --minutes "$minutes" \
      --device "$device" --threads 2 --workers "$WORKERS" --out "$WORK/runs/$name" "${extra[@]}" >"$WORK/logs/train-$name.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then say "trained ${RUNS[$i]%%:*}"; else say "FAILED: ${RUNS[$i]%%:*} (see its log)"; failed=1; fi
  done
  return $failed
}

pack_models() {
  mkdir -p "$OUT"
  for spec in "${RUNS[@]}"; do
    local name=${spec%%:*} dir="$WORK/runs/${spec%%:*}"
    [ -f "$dir/model.safetensors" ] || continue
    local grid
    grid=$(ls "$dir"/samples/*.png 2>/dev/null | tail -1)
    tar -C "$dir" -czf "$OUT/$name.tar.gz" model.safetensors model.json run.json ${grid:+samples/$(basename "$grid")}
  done
}

pack_report() {
  mkdir -p "$OUT"
  tar -C "$WORK" -czf "$OUT/report.tar.gz" logs bench 2>/dev/null
  ls -la "$OUT" >&2
}

run() {
  local device=$1 minutes=$2 bench_args=("${@:3}")
  WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
  mkdir -p "$WORK/logs" "$WORK/runs" "$WORK/bench"
  export STUDIO_HOME=$WORK/home PYTHONUNBUFFERED=1
  [ -f .data/commit.txt ] && export STUDIO_COMMIT=$(cat .data/commit.txt)
  local data=$ROOT/.data/crawl-tiles
  [ -f "$data/manifest.json" ] || { say "STOP: no sprite data at .data/crawl-tiles: run 'prepare' here first"; exit 2; }
  say "1. machine"; machine_facts | tee "$WORK/logs/machine.txt" >&2
  say "2+3. pytest -m gpu while the sprite models train for $minutes minutes each"
  local pytest_pid=""
  if [ "$device" = cuda ] && [ -z "${GPU_CHECK_TRAIN_ONLY:-}" ]; then
    (timeout 300 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/gpu tests/ml/test_synth.py \
      >"$WORK/logs/pytest-gpu.log" 2>&1; echo "exit $?" >>"$WORK/logs/pytest-gpu.log") &
    pytest_pid=$!
  fi
  train_all "$device" "$minutes" "$data"
  local trained=$?
  [ -n "$pytest_pid" ] && wait "$pytest_pid"
  [ -f "$WORK/logs/pytest-gpu.log" ] && tail -3 "$WORK/logs/pytest-gpu.log" >&2
  pack_models  # the weights are safe under $OUT before the benchmark spends what time is left
  local left=$((BUDGET_S - (SECONDS - STARTED) - 15))
  if [ -z "${GPU_CHECK_TRAIN_ONLY:-}" ]; then
    say "4. studio bench all --device $device (at most ${left} s)"
    timeout "$((left > 10 ? left : 10))" "$PY" -m studio bench all --device "$device" \
      --json "$WORK/bench/bench-$device.json" --md "$WORK/bench/bench-$device.md" "${bench_args[@]}" \
      >"$WORK/logs/bench.log" 2>&1 || say "the benchmark stopped early (see logs/bench.log)"
  fi
  say "5. packing"; pack_report
  grep -h -E "^\| (sprites|copy|music)" "$WORK/bench/bench-$device.md" 2>/dev/null | head -20 >&2
  return $trained
}

case "$MODE" in
  prepare) prepare ;;
  run)
    say "GPU check ($(date -u +%FT%TZ)), writing to $OUT"
    check_gpu
    install_wheels
    run cuda "$MINUTES" --repeats 3 --no-compile ;;
  dry-run)
    # The same pipeline on this machine's CPU, with the Python the GPU image would lack nothing of: it proves the
    # script (and that a machine without a GPU is refused) before device minutes are spent.
    say "dry run on the CPU: first, what the GPU check says without a GPU"
    (check_gpu) && say "(this machine has a GPU)"
    export PYTHONPATH=$ROOT
    PY=${PYTHON:-$ROOT/.venv/bin/python}
    run cpu 0.1 --repeats 1 --warmup 0 --no-compile --new-tokens 4 ;;
  *) echo "usage: bash packaging/gpu_check.sh [prepare|run|dry-run]" >&2; exit 2 ;;
esac
