#!/usr/bin/env bash
# The bundle smoke test: build the CPU bundle, unpack its archive, and use it with no network (`unshare -n`) from a
# read-only folder, as a user would:
#   - start-up: `studio --version`, `studio doctor`, and the window (offscreen) until its models can run, each timed
#     (target: a usable CLI and window in under 10 s);
#   - sprites, copy and music generated through the bundle's own CLI, and the files checked; an ONNX export;
#   - faults: a damaged and a missing model file, a second window while one is open, no GPU (`studio doctor` says
#     why the CPU);
#   - nothing written into the install folder (it is mounted read-only), user data only under STUDIO_HOME.
#
#   bash packaging/smoke_bundle.sh              # build, then test (about 10 minutes on 2 cores)
#   bash packaging/smoke_bundle.sh --no-build   # test the archive in dist/ as it is
# Results: artifacts/bundle-smoke/ (summary.md, the window's screenshot, the outputs). Exit 0 only if all passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MAX_START_S=${SMOKE_MAX_START_S:-10}
OUT=$ROOT/artifacts/bundle-smoke
log() { printf '\033[1m[smoke]\033[0m %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

[ "${1:-}" = "--no-build" ] || nice -n 10 bash packaging/build.sh cpu
ARCHIVE=$(ls -t dist/studio-*-linux-x86_64-cpu.tar.zst 2>/dev/null | head -1)
[ -n "$ARCHIVE" ] || fail "no CPU archive in dist/: run bash packaging/build.sh cpu"
# A network namespace, and a mount namespace for the read-only install (unprivileged users get both in a user
# namespace: -r).
NS=(unshare -n -m)
[ "$(id -u)" -eq 0 ] || NS=(unshare -r -n -m)
"${NS[@]}" true 2>/dev/null || fail "cannot make a network namespace here (unshare -n -m)"

WORK=$(mktemp -d /tmp/studio-smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
log "unpacking $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
zstd -dc "$ARCHIVE" | tar -C "$WORK" -xf -
INSTALL=$WORK/studio
UNPACKED_MB=$(( $(du -sb "$INSTALL" | cut -f1) / 1000000 ))

# Everything below runs inside one namespace: no network, the install folder read-only, a fresh user home.
export ROOT OUT INSTALL MAX_START_S
export STUDIO_HOME=$WORK/home QT_QPA_PLATFORM=offscreen
"${NS[@]}" bash -euo pipefail <<'INSIDE'
log() { printf '\033[1m[smoke]\033[0m %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
mount --bind "$INSTALL" "$INSTALL" && mount -o remount,bind,ro "$INSTALL"
touch "$INSTALL/probe" 2>/dev/null && fail "the install folder is not read-only"
python3 -c "import socket; socket.create_connection(('1.1.1.1', 53), 2)" 2>/dev/null && fail "the network is reachable"
S=$INSTALL/studio
cd "$OUT"
timed() {  # timed OUT command...: run it (stdout to OUT, stderr to OUT.err), print its seconds; stop if it fails
  local out=$1 start=$EPOCHREALTIME; shift
  "$@" > "$out" 2> "$out.err" || fail "$* failed: $(tail -3 "$out.err")"
  awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $start }"
}
check() { python3 "$ROOT/packaging/bundle/check_outputs.py" "$@"; }

log "start-up"
T_VERSION=$(timed version.txt "$S" --version)
T_DOCTOR=$(timed doctor.txt "$S" doctor)
T_WINDOW=$(timed app.txt "$S" app --screenshot window.png)
[ -s window.png ] || fail "the window did not open ($(tail -3 app.txt.err))"
grep -q "No QtMultimedia backends found" app.txt.err && fail "QtMultimedia has no back end in the bundle (app.txt.err)"
for t in "$T_VERSION" "$T_DOCTOR" "$T_WINDOW"; do
  awk "BEGIN { exit !($t < $MAX_START_S) }" || fail "start-up took $t s (target under $MAX_START_S s)"
done
grep -q "^Running on the CPU because " doctor.txt || fail "studio doctor does not say why the CPU: $(cat doctor.txt)"
grep -q "^  Sprites: sprite-gan: PyTorch on the CPU" doctor.txt || fail "studio doctor: $(cat doctor.txt)"

log "generating sprites, copy and music through the bundle's CLI"
T_SPRITES=$(timed sprites.txt "$S" generate sprite --model gan --category items --count 16 --seed 7 --out sprites)
C_SPRITES=$(check sprites sprites 16)
T_COPY=$(timed copy.txt "$S" generate copy --brief "$ROOT/resources/briefs/examples/coffee-subscription.json" \
  --format google-rsa --variants 1 --seed 3 --out ad.csv)
C_COPY=$(check copy ad.csv)
T_MUSIC=$(timed music.txt "$S" generate music --style chiptune-adventure --bpm 140 --bars 4 --seed 3 --out clip.wav \
  --midi clip.mid)
C_MUSIC=$(check music clip.wav clip.mid "$(awk 'BEGIN { print 4 * 4 * 60 / 140 }')")
T_EXPORT=$(timed export.txt "$S" export onnx sprite-gan)  # Models > Export: torch's exporter inside the bundle
[ -f "$STUDIO_HOME/data/models/onnx/sprite-gan/fp32/export.json" ] || fail "no ONNX export of sprite-gan"

log "faults"
MODELS=$STUDIO_HOME/damaged-models  # a copy of the shipped sprite and music models, then damaged
mkdir -p "$MODELS" && cp "$INSTALL"/_internal/models/*.* "$MODELS/"
python3 - "$MODELS/sprite-gan.safetensors" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read()); data[4096] ^= 0xFF; open(sys.argv[1], "wb").write(data)
EOF
expect_error() {  # expect_error "what" "message part" command...: exit 1 with that message, no traceback
  local what=$1 part=$2; shift 2
  local rc=0; "$@" >/dev/null 2> fault.log || rc=$?
  [ "$rc" = 1 ] || fail "$what: exit code $rc (expected 1): $(tail -3 fault.log)"
  grep -q "$part" fault.log || fail "$what: message lacks '$part': $(tail -3 fault.log)"
  grep -q "Traceback" fault.log && fail "$what: a traceback instead of a message: $(tail -5 fault.log)"
  echo "$(grep -m1 'studio' fault.log)"
}
M_DAMAGED=$(STUDIO_BUNDLED_MODELS=$MODELS expect_error "damaged model" "does not match its recorded sha256" \
  "$S" generate sprite --model gan --category items --count 2 --out damaged)
rm "$MODELS/sprite-gan.safetensors"
M_MISSING=$(STUDIO_BUNDLED_MODELS=$MODELS expect_error "missing model" "sprite-gan.safetensors is missing" \
  "$S" generate sprite --model gan --category items --count 2 --out missing)
"$S" app --quit-after-ms 20000 2> first.log &
FIRST=$!
for _ in $(seq 100); do [ -f "$STUDIO_HOME/data/window.lock" ] && break; sleep 0.2; done
M_SECOND=$(expect_error "second window" "Studio is already open" "$S" app --quit-after-ms 1000)
kill "$FIRST" 2>/dev/null; wait "$FIRST" 2>/dev/null || true
M_NOGPU=$(grep "^Running on the CPU because " doctor.txt)

cat > summary.md <<EOF
# Bundle smoke test ($(date -u +%Y-%m-%d), $(cat "$INSTALL/VERSION"))

No network (unshare -n), install folder mounted read-only, fresh user home; $(nproc) cores.

| step | seconds | result |
|---|---|---|
| \`studio --version\` | $T_VERSION | |
| \`studio doctor\` | $T_DOCTOR | $M_NOGPU |
| window open, models ready (\`studio app --screenshot\`) | $T_WINDOW | window.png |
| 16 sprites (GAN) | $T_SPRITES | $C_SPRITES |
| one Google RSA ad (first run: loads and measures the language model) | $T_COPY | $C_COPY |
| 4 bars of music | $T_MUSIC | $C_MUSIC |
| ONNX export of the GAN | $T_EXPORT | verified by its own parity check |

Faults (each a message and exit code 1, no traceback):
- damaged model file: $M_DAMAGED
- missing model file: $M_MISSING
- a second window while one is open: $M_SECOND
EOF
INSIDE
printf -- '\nSize: %s MB unpacked, %s MB packed (%s).\n' "$UNPACKED_MB" \
  "$(( $(stat -c %s "$ARCHIVE") / 1000000 ))" "$(basename "$ARCHIVE")" >> "$OUT/summary.md"
cat "$OUT/summary.md"
log "passed"
