#!/usr/bin/env bash
# The project's Python environment (.venv), made or remade only when pyproject.toml changes.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ROOT=$(cd "$SETUP_DIR/.." && pwd)
VENV=$ROOT/.venv
stamp=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
if [ ! -f "$VENV/.stamp-$stamp" ]; then
  command -v python3 >/dev/null || die "python3 is needed (Debian: apt-get install python3 python3-venv)"
  log "creating the Python environment in .venv"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e "$ROOT"
  rm -f "$VENV"/.stamp-*; touch "$VENV/.stamp-$stamp"
fi
