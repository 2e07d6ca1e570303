# Shared helpers for the set-up scripts: logging with elapsed time, cache paths, versions.
# shellcheck shell=bash
SETUP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$SETUP_DIR/versions.env"
# Built binaries and images live outside the repository, keyed by version, so a clean
# clone reuses them.
CACHE_DIR=${SHIPCHECK_CACHE:-$HOME/.cache/shipcheck}
TOOLS_BIN=$CACHE_DIR/bin
# Exported: every set-up script a run starts logs the time since that run began.
export _t0=${_t0:-$(date +%s)}

log() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - _t0 ))" "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Run a long command, printing a heartbeat every 60 s so a reader knows it is alive.
with_heartbeat() {
  local what=$1; shift
  local start; start=$(date +%s)
  ( while sleep 60; do log "still $what ($(( ($(date +%s) - start) / 60 )) min)"; done ) &
  local hb=$!
  local rc=0
  "$@" || rc=$?
  kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true
  log "$what took $(( $(date +%s) - start )) s"
  return "$rc"
}

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ ! -f /var/lib/apt/periodic/shipcheck-updated ] || [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit)" ]; then
    apt-get update -qq >/dev/null
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/shipcheck-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Whether this machine will run the pipeline on the local cluster: asked for, or `auto`
# finds no reachable kubeconfig context and no minikube/kind/k3d. Needs .venv.
needs_local_cluster() {
  local wanted=${SHIPCHECK_CLUSTER:-auto}
  [ "$wanted" = local ] && return 0
  [ "$wanted" != auto ] && return 1
  "$SETUP_DIR/../.venv/bin/python" - <<'EOF'
import sys
from shipcheck import providers
sys.exit(0 if providers.choose("auto", providers.context_reachable(), providers.installed_tools()) == "local" else 1)
EOF
}
