#!/usr/bin/env bash
# Self-training of the default copy adapter (rejection-sampling fine-tuning) on a GPU machine without network.
#
#   bash packaging/gpu_copy_selftrain.sh prepare   # here: practice corpus + the base model split in two halves
#   bash packaging/gpu_copy_selftrain.sh stage     # there, call 1 (carry .lmA): keeps the first half in /tmp
#   bash packaging/gpu_copy_selftrain.sh           # there, call 2 (carry .selftrain .whl): the run, under $OUT
#   bash packaging/gpu_copy_selftrain.sh dry-run   # here, on the CPU: the same pipeline, minutes-long
#
# Why two calls: the device tool carries at most 64 MiB a call, and the base model (SmolLM2-135M-Instruct Q4_1
# GGUF) is 98 MB; the halves are joined there and checked against the model's sha256 before anything loads it.
# The run: CPU processes write practice ads (the app's own planner, filters and reranker), the GPU trains the LoRA
# on the best lines, within SELFTRAIN_MINUTES. Ads already written (here, in earlier sessions, by
# `studio train copy --self-train --journal ... --write-only`) travel as .selftrain/journal.jsonl: they are not
# written again, and the journal comes back with the ads written there added. Meanwhile `pytest -m gpu` runs, and
# .selftrain/prof_ad.py (if there) profiles one writer's ads, to see why writers there are slower than here.
# With a journal that already holds every practice ad (write them here first), the call only trains: minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-run}
OUT=${OUT:-$ROOT/artifacts/copy-selftrain}
MINUTES=${SELFTRAIN_MINUTES:-6}
GGUF=SmolLM2-135M-Instruct.Q4_1
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
HALF=50000000
say() { printf '[copy-selftrain] %s\n' "$*" >&2; }

prepare() {
  local py=${PYTHON:-$ROOT/.venv/bin/python} lm=${STUDIO_LM_DIR:-$HOME/.local/share/studio/models/lm}
  local corpus=${1:?give the corpus of studio data copy}
  mkdir -p .lmA .selftrain
  for d in /.lmA/ /.selftrain/; do grep -qx "$d" .git/info/exclude || echo "$d" >> .git/info/exclude; done
  head -c $HALF "$lm/$GGUF.gguf" > .lmA/part-a
  tail -c +$((HALF + 1)) "$lm/$GGUF.gguf" > .selftrain/part-b
  cp "$lm/$GGUF.json" .selftrain/
  "$py" - "$corpus" <<'EOF'
import json, sys
from dataclasses import asdict
from studio.ml.data.copy_text import read_debian_corpus
from studio.ml.data.training_briefs import usable_packages
found = usable_packages(read_debian_corpus(sys.argv[1]))
with open(".selftrain/debian-practice.jsonl", "w", encoding="utf-8") as fh:
    fh.writelines(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in found)
print(f"{len(found)} packages usable as practice briefs")
EOF
  git rev-parse --short HEAD > .selftrain/commit.txt
  say "ready: call 1 'bash packaging/gpu_copy_selftrain.sh stage' (carry .lmA), then at once call 2 (carry .selftrain .whl)"
}

join_model() {
  local lm=$STUDIO_HOME/data/models/lm
  mkdir -p "$lm"
  cat /tmp/selftrain-part-a .selftrain/part-b > "$lm/$GGUF.gguf" && cp .selftrain/$GGUF.json "$lm/"
  echo "$SHA  $lm/$GGUF.gguf" | sha256sum -c --quiet || { say "STOP: the joined model's sha256 differs"; exit 2; }
}

run() {
  local py=python3 workers=${SELFTRAIN_WORKERS:-13} device=${SELFTRAIN_DEVICE:-cuda}
  [ "$MODE" = dry-run ] || export STUDIO_HOME=${STUDIO_HOME:-/tmp/studio-home}
  export PYTHONUNBUFFERED=1
  # Writers there ran 20-50x slower than here in tiny operations (bench/results/2026-12-04-gpu-copy-selftrain-
  # writers.md); the hypothesis to test is page faults on memory glibc keeps handing back: keep it in the heap.
  export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-268435456} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-1073741824}
  export STUDIO_COMMIT=$(cat .selftrain/commit.txt 2>/dev/null || git rev-parse --short HEAD)
  if [ -d .whl ]; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || { say "STOP: the wheels did not install"; exit 2; }
    export PYTHONPATH=/tmp/site:$ROOT
  else
    export PYTHONPATH=$ROOT
  fi
  [ "$MODE" = dry-run ] || join_model
  mkdir -p "$OUT"
  [ -f .selftrain/journal.jsonl ] && cp .selftrain/journal.jsonl "$OUT/practice-journal.jsonl"
  say "$(wc -l < "$OUT/practice-journal.jsonl" 2>/dev/null || echo 0) practice ads already written"
  if [ "$MODE" != dry-run ]; then
    (timeout 300 "$py" -m pytest -q -m gpu -p no:cacheprovider tests/gpu tests/ml/test_synth.py \
      >"$OUT/pytest-gpu.log" 2>&1; echo "exit $?" >>"$OUT/pytest-gpu.log") &
    [ -f .selftrain/prof_ad.py ] && (timeout -s INT 170 "$py" .selftrain/prof_ad.py >"$OUT/writer-profile.txt" 2>&1 &)
  fi
  nvidia-smi -L 2>/dev/null; say "$(nproc) CPU cores; writing with $workers processes; $MINUTES minutes"
  "$py" -m studio train copy --self-train --briefs resources/briefs/dev --debian .selftrain/debian-practice.jsonl \
    --variations "${SELFTRAIN_VARIATIONS:-900}" --debian-briefs "${SELFTRAIN_DEBIAN:-660}" \
    --journal "$OUT/practice-journal.jsonl" \
    --rounds "${SELFTRAIN_ROUNDS:-1}" --ads "${SELFTRAIN_ADS:-1400}" --workers "$workers" --minutes "$MINUTES" \
    --epochs "${SELFTRAIN_EPOCHS:-2}" --batch "${SELFTRAIN_BATCH:-32}" --device "$device" --name copy-ads \
    --licence "Apache-2.0 (the base model's); practice data: the model's own lines for Studio's development briefs and Debian package descriptions (DFSG-free licences)" \
    --out "$OUT/copy-ads.safetensors"
  local code=$?
  wait
  [ -f "$OUT/pytest-gpu.log" ] && tail -3 "$OUT/pytest-gpu.log" >&2
  # the device tool brings back at most 8 files: the rounds' adapters, sidecars and lines travel as one archive
  rm -f "$OUT/copy-ads-rounds/round-$((${SELFTRAIN_ROUNDS:-1} - 1)).safetensors"
  tar -C "$OUT" -cf "$OUT/copy-ads-rounds.tar" copy-ads-rounds && rm -rf "$OUT/copy-ads-rounds"
  ls -la "$OUT" >&2
  exit $code
}

case "$MODE" in
  prepare) prepare "${2:-}" ;;
  stage) cp .lmA/part-a /tmp/selftrain-part-a && say "first half kept: $(du -h /tmp/selftrain-part-a | cut -f1)" ;;
  dry-run) SELFTRAIN_DEVICE=cpu SELFTRAIN_WORKERS=2 MINUTES=${SELFTRAIN_MINUTES:-3} SELFTRAIN_ROUNDS=2 \
           SELFTRAIN_ADS=3 SELFTRAIN_VARIATIONS=6 SELFTRAIN_DEBIAN=6 SELFTRAIN_EPOCHS=1 SELFTRAIN_BATCH=2 \
           run ;;
  run) run ;;
  *) say "unknown mode $MODE (prepare, stage, run, dry-run)"; exit 2 ;;
esac
