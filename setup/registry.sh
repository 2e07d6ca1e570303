#!/usr/bin/env bash
# A private image registry on this machine, for the pipeline's registry path (issue 14):
# Debian's docker-registry (the CNCF distribution registry) run as a process of its own,
# with TLS from a CA made here and htpasswd (bcrypt) authentication.
#
#   setup/registry.sh start            install, make the CA/certificate/credentials (once,
#                                      cached), trust it for Docker and the local cluster, start
#   setup/registry.sh stop             stop the registry process (storage and trust stay)
#   setup/registry.sh status           whether it answers, and where it is
#   setup/registry.sh info             KEY=VALUE lines for scripts: host, CA, credentials file
#   setup/registry.sh reset            stop, empty its storage, start (a cold registry)
#   setup/registry.sh trust|untrust [docker|nodes|all]   add/remove the CA trust (default all)
#
# Trust is for this registry's host:port only: Docker reads
# /etc/docker/certs.d/HOST:PORT/ca.crt at each push, the local cluster's containerd reads
# /etc/shipcheck-containerd/certs.d/HOST:PORT/hosts.toml at each pull. Nothing else about
# Docker or containerd changes, and neither is restarted.
#
# The credentials (user shipcheck, a random password) are written once to
# $REG_CACHE/credentials, readable by root only, as REGISTRY_USERNAME=/REGISTRY_PASSWORD=
# lines; the password is never printed.
set -euo pipefail
source "$(dirname "$0")/common.sh"

REG_CACHE=$CACHE_DIR/registry                   # CA, server certificate, credentials
REG_ETC=/etc/shipcheck-registry                 # what the registry process reads
STORAGE=/var/lib/shipcheck-registry
PORT=${SHIPCHECK_REGISTRY_PORT:-5443}
PIDFILE=/run/shipcheck-registry.pid
LOG=/var/log/shipcheck-registry.log
USER_NAME=shipcheck
RUN_AS=docker-registry                          # the package's system user
DOCKER_CERTS=/etc/docker/certs.d
NODE_CERTS=/etc/shipcheck-containerd/certs.d    # config_path of the local cluster's containerd

host_ip() {
  # The default-route address: what the local cluster's node registers under and what
  # its containerd reaches; pods' pulls are made by containerd on this host.
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  [ -n "$ip" ] || die "no default route: cannot tell which address the registry should listen on"
  echo "$ip"
}
HOST=${SHIPCHECK_REGISTRY_HOST:-$(host_ip)}
ADDR=$HOST:$PORT

running_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = docker-registry ] && echo "$pid"
}

answers() {
  # 401 from /v2/ is a registry that is up and asks for credentials.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$REG_CACHE/ca.crt" "https://$ADDR/v2/" || true)
  [ "$code" = 401 ]
}

install_packages() {
  command -v docker-registry >/dev/null && command -v htpasswd >/dev/null && return 0
  # The package's postinst starts a registry on :5000 through invoke-rc.d; a policy-rc.d
  # that refuses (as in Docker images) keeps it from starting, so ours is the only one.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt_install docker-registry apache2-utils openssl curl || { [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

certificate_covers() {
  # The server certificate names this host's current address (the address can change).
  [ -f "$REG_CACHE/server.crt" ] && openssl x509 -in "$REG_CACHE/server.crt" -noout -ext subjectAltName 2>/dev/null \
    | grep -q "IP Address:$HOST\b" && openssl x509 -in "$REG_CACHE/server.crt" -noout -checkend 86400 >/dev/null
}

make_tls() {
  mkdir -p "$REG_CACHE" && chmod 700 "$REG_CACHE"
  if [ ! -f "$REG_CACHE/ca.crt" ] || [ ! -f "$REG_CACHE/ca.key" ]; then
    log "making the registry's CA in $REG_CACHE"
    ( umask 077; openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 -keyout "$REG_CACHE/ca.key" \
        -out "$REG_CACHE/ca.crt" -subj "/CN=shipcheck test registry CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null )
    rm -f "$REG_CACHE/server.crt"
  fi
  certificate_covers && return 0
  log "making the registry's server certificate for $HOST and localhost"
  local ext; ext=$(mktemp)
  printf '%s\n' "subjectAltName=IP:$HOST,IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" > "$ext"
  ( umask 077
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$REG_CACHE/server.key" -out "$REG_CACHE/server.csr" \
      -subj "/CN=$HOST" 2>/dev/null
    openssl x509 -req -sha256 -days 825 -in "$REG_CACHE/server.csr" -CA "$REG_CACHE/ca.crt" -CAkey "$REG_CACHE/ca.key" \
      -CAcreateserial -out "$REG_CACHE/server.crt" -extfile "$ext" 2>/dev/null )
  rm -f "$ext" "$REG_CACHE/server.csr"
}

make_credentials() {
  if [ ! -f "$REG_CACHE/credentials" ]; then
    log "making the registry's credentials (user $USER_NAME) in $REG_CACHE/credentials (root only)"
    ( umask 077; printf 'REGISTRY_USERNAME=%s\nREGISTRY_PASSWORD=%s\n' "$USER_NAME" "$(openssl rand -hex 24)" \
        > "$REG_CACHE/credentials" )
  fi
}

password() { sed -n 's/^REGISTRY_PASSWORD=//p' "$REG_CACHE/credentials"; }

write_config() {
  # What the process reads, readable by its user only (the key and the bcrypt hashes).
  install -d -m 750 -o root -g "$RUN_AS" "$REG_ETC"
  install -d -m 750 -o "$RUN_AS" -g "$RUN_AS" "$STORAGE"
  install -m 640 -o root -g "$RUN_AS" "$REG_CACHE/server.crt" "$REG_ETC/server.crt"
  install -m 640 -o root -g "$RUN_AS" "$REG_CACHE/server.key" "$REG_ETC/server.key"
  if [ ! -f "$REG_ETC/htpasswd" ] || ! password | htpasswd -iv "$REG_ETC/htpasswd" "$USER_NAME" >/dev/null 2>&1; then
    password | htpasswd -iBc "$REG_ETC/htpasswd" "$USER_NAME" 2>/dev/null   # bcrypt; the password on stdin, not argv
    chown root:"$RUN_AS" "$REG_ETC/htpasswd" && chmod 640 "$REG_ETC/htpasswd"
  fi
  cat > "$REG_ETC/config.yml.new" <<EOF
version: 0.1
log:
  level: info
  fields: {service: shipcheck-registry}
storage:
  filesystem: {rootdirectory: $STORAGE}
  delete: {enabled: true}
http:
  addr: $ADDR
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: $REG_ETC/server.crt
    key: $REG_ETC/server.key
auth:
  htpasswd:
    realm: shipcheck-registry
    path: $REG_ETC/htpasswd
EOF
  if cmp -s "$REG_ETC/config.yml.new" "$REG_ETC/config.yml"; then rm "$REG_ETC/config.yml.new"
  else mv "$REG_ETC/config.yml.new" "$REG_ETC/config.yml"; chmod 644 "$REG_ETC/config.yml"; CONFIG_CHANGED=1; fi
}

trust() {
  local which=${1:-all}
  if [ "$which" = all ] || [ "$which" = docker ]; then
    install -d "$DOCKER_CERTS/$ADDR" && install -m 644 "$REG_CACHE/ca.crt" "$DOCKER_CERTS/$ADDR/ca.crt"
  fi
  if [ "$which" = all ] || [ "$which" = nodes ]; then
    install -d "$NODE_CERTS/$ADDR" && install -m 644 "$REG_CACHE/ca.crt" "$NODE_CERTS/$ADDR/ca.crt"
    # The CA on the server entry itself: a [host] section beside `server` makes a second
    # entry, which containerd tries after a 404 (a tag that does not exist) with the system's
    # roots, and reports x509 instead of "not found".
    cat > "$NODE_CERTS/$ADDR/hosts.toml" <<EOF
# shipcheck test registry (setup/registry.sh): trust its CA for this host only.
server = "https://$ADDR"
ca = "$NODE_CERTS/$ADDR/ca.crt"
capabilities = ["pull", "resolve"]
EOF
  fi
}

untrust() {
  local which=${1:-all}
  if [ "$which" = all ] || [ "$which" = docker ]; then rm -rf "${DOCKER_CERTS:?}/$ADDR"; fi
  if [ "$which" = all ] || [ "$which" = nodes ]; then rm -rf "${NODE_CERTS:?}/$ADDR"; fi
}

stop() {
  local pid
  pid=$(running_pid) || { log "registry is not running"; return 0; }
  kill "$pid"
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$PIDFILE"
  log "registry stopped (pid $pid)"
}

start() {
  install_packages
  make_tls
  make_credentials
  CONFIG_CHANGED=0
  write_config
  trust all
  if running_pid >/dev/null && [ "$CONFIG_CHANGED" = 0 ] && answers; then
    log "registry is running at $ADDR"
    return 0
  fi
  running_pid >/dev/null && stop
  log "starting the registry at $ADDR (storage $STORAGE, log $LOG)"
  # setsid: its own session, so it outlives the caller and no terminal signal reaches it.
  setsid setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups \
    docker-registry serve "$REG_ETC/config.yml" >>"$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 40); do answers && { log "registry is up at $ADDR"; return 0; }; sleep 0.25; done
  tail -20 "$LOG" >&2
  die "the registry did not answer on https://$ADDR/v2/ within 10 s; see $LOG"
}

status() {
  if running_pid >/dev/null && answers; then
    echo "running at $ADDR (pid $(running_pid)); CA $REG_CACHE/ca.crt; credentials $REG_CACHE/credentials"
  else
    echo "not running"
    return 1
  fi
}

info() {
  printf 'REGISTRY_HOST=%s\nREGISTRY_CA=%s\nREGISTRY_CREDENTIALS=%s\nREGISTRY_STORAGE=%s\nREGISTRY_DOCKER_TRUST=%s\nREGISTRY_NODE_TRUST=%s\n' \
    "$ADDR" "$REG_CACHE/ca.crt" "$REG_CACHE/credentials" "$STORAGE" "$DOCKER_CERTS/$ADDR" "$NODE_CERTS/$ADDR"
}

reset() {
  stop
  [ -d "$STORAGE" ] && find "$STORAGE" -mindepth 1 -delete
  start
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  info) info ;;
  reset) reset ;;
  trust) trust "${2:-all}" ;;
  untrust) untrust "${2:-all}" ;;
  *) echo "usage: $0 start|stop|status|info|reset|trust [docker|nodes|all]|untrust [docker|nodes|all]" >&2; exit 2 ;;
esac
