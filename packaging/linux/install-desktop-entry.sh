#!/usr/bin/env sh
# Add Studio to this user's application menu: the desktop entry (pointing at this folder's executable) and the icon.
#   sh install-desktop-entry.sh            # install
#   sh install-desktop-entry.sh --remove   # take both out again
# Writes only under ~/.local/share; this folder itself is never written to (it may be read-only).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
ENTRY=$DATA/applications/studio.desktop
ICON=$DATA/icons/hicolor/scalable/apps/studio.svg
if [ "${1:-}" = "--remove" ]; then
  rm -f "$ENTRY" "$ICON"
  echo "removed $ENTRY and $ICON"
  exit 0
fi
mkdir -p "$(dirname "$ENTRY")" "$(dirname "$ICON")"
cp "$HERE/studio.svg" "$ICON"
sed "s|^Exec=studio|Exec=\"$HERE/studio\"|" "$HERE/studio.desktop" > "$ENTRY"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$DATA/applications" || true
echo "installed $ENTRY (runs $HERE/studio) and $ICON"
