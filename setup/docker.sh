#!/usr/bin/env bash
# Make a Docker engine available: install Debian's docker.io when dockerd is absent and
# start dockerd when nothing answers. A reachable engine (Docker Desktop, a CI service)
# is used as it is.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# Debian's client speaks BuildKit without a buildx plugin; a newer client earlier on PATH
# may not, so the suite calls this one for builds.
if docker info >/dev/null 2>&1 || /usr/bin/docker info >/dev/null 2>&1; then
  log "Docker engine is reachable"
  exit 0
fi
command -v dockerd >/dev/null || apt_install docker.io
log "starting dockerd (log: /var/log/shipcheck-dockerd.log)"
nohup dockerd >/var/log/shipcheck-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  /usr/bin/docker info >/dev/null 2>&1 && { log "dockerd is up"; exit 0; }
  sleep 1
done
tail -20 /var/log/shipcheck-dockerd.log >&2
die "dockerd did not answer within 60 s; see /var/log/shipcheck-dockerd.log"
