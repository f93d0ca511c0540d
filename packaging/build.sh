#!/usr/bin/env bash
# Build Studio's one-folder bundle and its archive: the app and the CLI in one executable, the bundled models, the
# resources, the base language model and its ONNX export. Running it needs no Python and no network.
#   bash packaging/build.sh cpu     # CPU build of torch, onnxruntime (CPU)         -> dist/studio-VERSION-linux-x86_64-cpu.tar.zst
#   bash packaging/build.sh cuda    # torch with its CUDA libraries, onnxruntime-gpu -> dist/studio-VERSION-linux-x86_64-cuda.tar.zst
# Needs: Python 3.11, zstd, and the base language model (`bash packaging/setup.sh setup` fetches it and makes
# its int4 export). The build environment (build/venv-VARIANT) installs exactly the files locked with sha256 in
# packaging/bundle/requirements-VARIANT.txt; a second run reuses it. Work files: build/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VARIANT=${1:-}
case "$VARIANT" in cpu|cuda) ;; *) echo "usage: bash packaging/build.sh cpu|cuda" >&2; exit 2 ;; esac
PY=${PYTHON:-python3.11}
VENV=$ROOT/build/venv-$VARIANT
STAGE=$ROOT/build/stage-$VARIANT
DIST=$ROOT/build/dist-$VARIANT
BUNDLE=$DIST/studio
LOCK=packaging/bundle/requirements-$VARIANT.txt
log() { printf '\033[1m[build]\033[0m %s\n' "$*" >&2; }
START=$SECONDS

command -v "$PY" >/dev/null || { log "needs $PY (set PYTHON=/path/to/python3.11)"; exit 2; }
command -v zstd >/dev/null || { log "needs zstd (apt-get install zstd)"; exit 2; }

# 1. The build environment, from the hash-locked requirements only.
STAMP="$VENV/.locked-$(sha256sum "$LOCK" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  log "creating the build environment $VENV from $LOCK (a few minutes; torch is the large download)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --require-hashes --no-deps -r "$LOCK"
  touch "$STAMP"
fi

# 2. The models it ships (the language model's int4 export on both variants: the CPU fallback of the CUDA build
#    too; a GPU makes its fp16 export on first use).
log "staging the models"
"$VENV/bin/python" packaging/bundle/stage_models.py "$STAGE/models" --variants int4

# 3. PyInstaller.
log "running PyInstaller (5-15 minutes on 2 cores)"
rm -rf "$DIST"
STUDIO_BUNDLE_VARIANT=$VARIANT STUDIO_BUNDLE_MODELS=$STAGE/models \
  "$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" \
  --workpath "$ROOT/build/work-$VARIANT" packaging/bundle/studio.spec
# torch's libraries carry their full symbol tables (89 MB of libtorch_cpu.so's 434 MB): drop them; the dynamic
# symbols that loading needs stay.
if command -v strip >/dev/null; then
  find "$BUNDLE/_internal/torch/lib" -name 'libtorch*.so' -exec strip --strip-unneeded {} +
fi

# 4. What sits beside the executable: the desktop entry and icon with their installer, the variant, a read-me.
cp packaging/linux/studio.desktop packaging/linux/install-desktop-entry.sh "$BUNDLE/"
cp resources/icons/studio.svg "$BUNDLE/studio.svg"
VERSION=$("$VENV/bin/python" -c "import sys; sys.path.insert(0, '.'); from studio import __version__; print(__version__)")
printf 'studio %s %s %s\n' "$VERSION" "$VARIANT" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  > "$BUNDLE/VERSION"
cp packaging/linux/README-bundle.txt "$BUNDLE/README.txt"

# 5. A first start, offline: the executable answers and finds its models.
log "checking the bundle starts"
STUDIO_HOME=$(mktemp -d) "$BUNDLE/studio" models list >/dev/null \
  || { log "the bundle does not start; see the error above"; exit 1; }

# The CUDA build: every library torch's CUDA code and onnxruntime's CUDA provider link must be in the bundle, all but
# the driver's own libcuda.so.1 (cuDNN's parts, which are opened by name, are checked with them).
if [ "$VARIANT" = cuda ]; then
  INTERNAL=$BUNDLE/_internal
  SEARCH=$(find "$INTERNAL/nvidia" -type d -name lib | tr '\n' ':')$INTERNAL/torch/lib:$INTERNAL
  missing=$(for lib in "$INTERNAL"/torch/lib/libtorch_cuda*.so "$INTERNAL"/onnxruntime/capi/libonnxruntime_providers_cuda.so \
              "$INTERNAL"/nvidia/cudnn/lib/libcudnn*.so.9; do
              LD_LIBRARY_PATH=$SEARCH ldd "$lib" | awk -v lib="${lib#"$INTERNAL"/}" '/not found/ { print lib ": " $1 }'
            done | { grep -v ': libcuda.so.1$' || true; } | sort -u)
  [ -z "$missing" ] || { log "CUDA libraries missing from the bundle:"; echo "$missing" >&2; exit 1; }
  log "CUDA libraries: all there (the driver's libcuda.so.1 comes from the machine)"
fi

# 6. The archive.
mkdir -p dist
ARCHIVE=dist/studio-$VERSION-linux-x86_64-$VARIANT.tar.zst
log "packing $ARCHIVE"
LEVEL=${ZSTD_LEVEL:-12}
[ "$VARIANT" = cuda ] && LEVEL=${ZSTD_LEVEL:-6}  # 4 GB of CUDA libraries: a faster level, nearly as small
tar -C "$DIST" -cf - studio | zstd -q -T0 "-$LEVEL" -f -o "$ARCHIVE"

log "done in $(( SECONDS - START )) s"
log "bundle:  $BUNDLE  ($(du -sh "$BUNDLE" | cut -f1) unpacked)"
log "archive: $ARCHIVE  ($(du -h "$ARCHIVE" | cut -f1))"
log "largest parts:"
du -s "$BUNDLE"/_internal/* 2>/dev/null | sort -rn | head -8 \
  | awk '{ printf "  %7.0f MB  %s\n", $1 / 1024, $2 }' | sed "s|$BUNDLE/||" >&2
