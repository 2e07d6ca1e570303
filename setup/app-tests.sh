#!/usr/bin/env bash
# The reference app's own tests: the backend's pytest suite on a throwaway PostgreSQL
# (Debian's server binaries), and the frontend's node:test suite on its standalone build.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ROOT=$(cd "$SETUP_DIR/.." && pwd)

bash "$ROOT/app/api/scripts/test-postgres.sh" install
VENV=$ROOT/.venv-api
stamp=$(cat "$ROOT/app/api/requirements.txt" "$ROOT/app/api/requirements-dev.txt" | sha256sum | cut -c1-16)
if [ ! -f "$VENV/.stamp-$stamp" ]; then
  log "creating .venv-api for the backend's tests"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$ROOT/app/api/requirements.txt" -r "$ROOT/app/api/requirements-dev.txt"
  rm -f "$VENV"/.stamp-*; touch "$VENV/.stamp-$stamp"
fi
log "backend tests (app/api)"
(cd "$ROOT/app/api" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider)

log "frontend tests (app/web)"
(cd "$ROOT/app/web" && npm ci --no-audit --no-fund --loglevel=error && npm test --silent)
