#!/bin/sh
# Show that `radfeat gui` opens its window: run it under a virtual X server (Xvfb), let the
# page load and talk to its backend, print what the window shows, close it.
#
#   scripts/gui_smoke.sh [WORKSPACE]
#
# Needs: xvfb (xvfb-run), pywebview[qt] in the Python environment and the Qt system libraries
# (see docs / .ci). Exit status 0 when the window came up connected with its native dialogs.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-"$here/.venv/bin/python"}
[ -x "$python" ] || python=python3
workspace=${1:-$(mktemp -d)}
command -v xvfb-run >/dev/null 2>&1 || { echo "gui_smoke: xvfb-run not found (apt-get install xvfb)" >&2; exit 2; }
# Chromium inside Qt WebEngine will not run its sandbox as root (containers, CI).
if [ "$(id -u)" = 0 ]; then
  export QTWEBENGINE_CHROMIUM_FLAGS="${QTWEBENGINE_CHROMIUM_FLAGS:-} --no-sandbox"
fi
export RADFEAT_GUI_SMOKE=${RADFEAT_GUI_SMOKE:-60}
exec xvfb-run -a -s "-screen 0 1366x900x24" "$python" -m radfeat gui --workspace "$workspace"
