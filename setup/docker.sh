#!/usr/bin/env bash
# Make a Docker engine available: install Debian's docker.io when dockerd is absent and
# start dockerd when nothing answers. A reachable engine (Docker Desktop, a CI service)
# is used as it is, except on machines whose capability bounding set is short, where
# this machine's dockerd gets the runc wrapper as its default runtime (below).
set -euo pipefail
source "$(dirname "$0")/common.sh"

# --- privileged containers where the capability bounding set is short ----------------------
# kind runs its nodes with `docker run --privileged` and `docker exec --privileged`. Docker
# asks runc for every capability the kernel knows; on a VM whose bounding set lacks one
# (CAP_SYS_RESOURCE on ours) runc then fails with "unable to apply caps". The fix is a
# runc wrapper (setup/runc-capfilter) that drops those capabilities from the spec, made
# dockerd's default runtime. Only where the bounding set is short: elsewhere nothing changes.
CAPFILTER_NAME=shipcheck-runc
CAPFILTER_PATH=/usr/local/sbin/shipcheck-runc
DAEMON_JSON=/etc/docker/daemon.json

bounding_set_short() {  # pid whose bounding set counts (dockerd's, or ours before it starts)
  local mask last
  mask=$(sed -n 's/^CapBnd:[[:space:]]*//p' "/proc/$1/status")
  last=$(cat /proc/sys/kernel/cap_last_cap)
  [ $(( 0x$mask & ((1 << (last + 1)) - 1) )) -ne $(( (1 << (last + 1)) - 1 )) ]
}

# Install the wrapper and name it the default runtime in daemon.json (other keys kept).
install_capfilter() {
  command -v jq >/dev/null || apt_install jq
  local real_runc; real_runc=$(command -v runc || true)
  [ -x "$real_runc" ] || die "runc not found; the capability filter wraps the runc dockerd uses"
  local tmp; tmp=$(mktemp)
  sed "s#^REAL_RUNC=.*#REAL_RUNC=$real_runc#; s#^JQ=.*#JQ=$(command -v jq)#" "$SETUP_DIR/runc-capfilter" > "$tmp"
  if ! cmp -s "$tmp" "$CAPFILTER_PATH"; then install -m 0755 "$tmp" "$CAPFILTER_PATH"; fi
  rm -f "$tmp"
  mkdir -p "$(dirname "$DAEMON_JSON")"
  local current='{}' wanted
  [ -s "$DAEMON_JSON" ] && current=$(cat "$DAEMON_JSON")
  wanted=$(jq --arg name "$CAPFILTER_NAME" --arg path "$CAPFILTER_PATH" \
             '.runtimes[$name] = {path: $path} | ."default-runtime" = $name' <<<"$current") \
    || die "$DAEMON_JSON is not valid JSON; fix it, then run $0 again"
  if [ "$(jq -S . <<<"$current")" != "$(jq -S . <<<"$wanted")" ]; then
    [ -s "$DAEMON_JSON" ] && cp "$DAEMON_JSON" "$DAEMON_JSON.before-shipcheck"
    jq . <<<"$wanted" > "$DAEMON_JSON"
    log "capability bounding set lacks capabilities --privileged asks for: $CAPFILTER_NAME ($CAPFILTER_PATH) is dockerd's default runtime ($DAEMON_JSON)"
  fi
}

default_runtime() { /usr/bin/docker info -f '{{.DefaultRuntime}}' 2>/dev/null; }

# Debian's client speaks BuildKit without a buildx plugin; a newer client earlier on PATH
# may not, so the suite calls this one for builds.
if docker info >/dev/null 2>&1 || /usr/bin/docker info >/dev/null 2>&1; then
  log "Docker engine is reachable"
  # Only a dockerd of this machine (on the default socket) is ours to configure.
  dockerd_pid=$(pidof dockerd || true)
  if [ -z "${DOCKER_HOST:-}" ] && [ -n "$dockerd_pid" ] && [ "$(wc -w <<<"$dockerd_pid")" -eq 1 ] \
     && bounding_set_short "$dockerd_pid"; then
    install_capfilter >/dev/null
    if [ "$(default_runtime)" != "$CAPFILTER_NAME" ]; then
      # runtimes and default-runtime are reloaded on SIGHUP: no restart, running containers stay.
      kill -HUP "$dockerd_pid"
      for _ in $(seq 1 20); do [ "$(default_runtime)" = "$CAPFILTER_NAME" ] && break; sleep 0.5; done
      [ "$(default_runtime)" = "$CAPFILTER_NAME" ] || die "dockerd did not take $CAPFILTER_NAME as its default runtime after SIGHUP; see its log"
      log "dockerd reloaded: default runtime $CAPFILTER_NAME"
    fi
  fi
  exit 0
fi
command -v dockerd >/dev/null || apt_install docker.io
if bounding_set_short $$; then install_capfilter >/dev/null; fi
log "starting dockerd (log: /var/log/shipcheck-dockerd.log)"
nohup dockerd >/var/log/shipcheck-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  /usr/bin/docker info >/dev/null 2>&1 && { log "dockerd is up"; exit 0; }
  sleep 1
done
tail -20 /var/log/shipcheck-dockerd.log >&2
die "dockerd did not answer within 60 s; see /var/log/shipcheck-dockerd.log"
