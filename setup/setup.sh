#!/usr/bin/env bash
# Everything the pipeline needs on a fresh Debian machine, installed only when missing:
# the Python environment, a Docker engine, base images (stand-ins when no registry is
# reachable), helm and kubectl, Chromium for the screenshot, PostgreSQL for the app tests,
# and the local cluster's binaries when it is the cluster this machine will use (it is
# started separately: setup/local-cluster.sh start).
set -euo pipefail
source "$(dirname "$0")/common.sh"
ROOT=$(cd "$SETUP_DIR/.." && pwd)

apt_install git ca-certificates curl chromium

bash "$SETUP_DIR/venv.sh"

bash "$SETUP_DIR/docker.sh"

# The base images the reference app's Dockerfiles name (their official defaults): the engine's,
# else pulled, else stand-ins built from Debian under the same names (setup/base-images.sh).
# One failed pull stands for all: without a registry each would wait for its own timeout.
missing=()
for image in node:20-alpine python:3.13-slim debian:trixie-slim; do
  /usr/bin/docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
done
if [ ${#missing[@]} -gt 0 ] && timeout 60 /usr/bin/docker pull -q "${missing[0]}" >/dev/null 2>&1; then
  for image in "${missing[@]:1}"; do /usr/bin/docker pull -q "$image" >/dev/null; done
elif [ ${#missing[@]} -gt 0 ]; then
  log "no registry reachable (${missing[0]} cannot be pulled): building stand-ins for ${missing[*]}"
  bash "$SETUP_DIR/base-images.sh" "${missing[@]}"
fi

# Before tools.sh: the Kubernetes build makes a kubectl, which tools.sh then copies instead of
# building one more from the k8s.io/kubectl module (minutes on a fresh machine).
if needs_local_cluster; then bash "$SETUP_DIR/build-kubernetes.sh"; fi

bash "$SETUP_DIR/tools.sh"
log "set-up complete"
