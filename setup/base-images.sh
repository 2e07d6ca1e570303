#!/usr/bin/env bash
# Stand-in base images for machines that cannot pull from a registry.
# The Dockerfiles default to the official images (node:20-alpine, python:3.13-slim,
# debian:trixie-slim); when those are not in the engine, the suite builds on these
# stand-ins instead, made from Debian trixie with debootstrap (trixie carries Python 3.13
# and Node.js 20, the versions the official tags name).
#   stand-in/debian:trixie-slim   trimmed minbase
#   stand-in/python:3.13          + python3.13 and venv, no package manager
#   stand-in/node:20-runtime      + nodejs 20, no package manager
#   stand-in/node:20              + npm (from the npm registry), for build stages
# Each image is built once; delete it (docker rmi) to rebuild.
set -euo pipefail
source "$(dirname "$0")/common.sh"
DOCKER=${DOCKER:-/usr/bin/docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTFS_CACHE=$CACHE_DIR/rootfs
NPM_VERSION=${NPM_VERSION:-10.9.2}

have_image() { $DOCKER image inspect "$1" >/dev/null 2>&1; }

base_rootfs() {  # a trimmed trixie minbase, made once and copied for each image
  local dir=$ROOTFS_CACHE/trixie-minbase
  [ -f "$dir/.complete" ] && { echo "$dir"; return; }
  command -v debootstrap >/dev/null || apt_install debootstrap
  rm -rf "$dir"; mkdir -p "$dir/etc/dpkg/dpkg.cfg.d"
  # Keep docs, man pages and locales out of every later install too.
  cat > "$dir/etc/dpkg/dpkg.cfg.d/01-trim" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
CFG
  log "debootstrap trixie minbase from $MIRROR"
  with_heartbeat "running debootstrap" debootstrap --variant=minbase trixie "$dir" "$MIRROR" >/dev/null
  printf 'APT::Install-Recommends "0";\nAPT::Install-Suggests "0";\n' > "$dir/etc/apt/apt.conf.d/01-norecommends"
  touch "$dir/.complete"
  echo "$dir"
}

trim_and_import() {  # rootfs, tag, docker import --change lines...
  local dir=$1 tag=$2; shift 2
  rm -rf "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
         "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/log/* "$dir/.complete"
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  tar -C "$dir" -c . | $DOCKER import "${changes[@]}" - "$tag" >/dev/null
  log "imported $tag ($($DOCKER image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

new_rootfs() {  # packages... ; prints a fresh copy of the base with them installed
  local base; base=$(base_rootfs)
  local dir; dir=$(mktemp -d "$ROOTFS_CACHE/build.XXXX")
  cp -a "$base/." "$dir/"
  if [ $# -gt 0 ]; then
    log "installing $* from Debian trixie"
    chroot "$dir" apt-get update -qq >/dev/null
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
    chroot "$dir" apt-get clean
  fi
  echo "$dir"
}

slim_runtime() {  # runtime stand-ins need no package manager: Dockerfiles must work on the
  # official images without apt or apk anyway. Dropping apt, dpkg, perl and iconv modules
  # saves about 45 MB, the difference between fitting the frontend's budget or not.
  local dir=$1
  rm -rf "$dir"/usr/bin/apt* "$dir"/usr/lib/apt "$dir"/usr/lib/x86_64-linux-gnu/libapt-* \
         "$dir"/etc/apt "$dir"/var/lib/apt "$dir"/var/cache/apt "$dir"/usr/bin/sqv "$dir"/usr/bin/gpgv \
         "$dir"/usr/bin/perl* "$dir"/usr/lib/x86_64-linux-gnu/perl-base "$dir"/usr/share/perl5 \
         "$dir"/usr/bin/dpkg* "$dir"/var/lib/dpkg "$dir"/etc/dpkg "$dir"/usr/share/dpkg \
         "$dir"/usr/lib/x86_64-linux-gnu/gconv "$dir"/usr/lib/x86_64-linux-gnu/libdb-5.3.so \
         "$dir"/var/cache/debconf "$dir"/usr/share/debconf "$dir"/usr/share/zoneinfo \
         "$dir"/usr/share/common-licenses "$dir"/usr/share/doc
}

add_npm() {  # npm from the registry: Debian's npm package pulls in hundreds of node-* packages
  local dir=$1 tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$dir/usr/lib/node_modules/npm"
  tar -xzf "$tmp"/npm-*.tgz -C "$dir/usr/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/bin/npx"
  rm -rf "$tmp"
}

mkdir -p "$ROOTFS_CACHE"

if ! have_image stand-in/debian:trixie-slim; then
  trim_and_import "$(new_rootfs)" stand-in/debian:trixie-slim 'CMD ["bash"]'
fi

if ! have_image stand-in/python:3.13; then
  dir=$(new_rootfs python3.13 python3.13-venv ca-certificates)
  ln -sf python3.13 "$dir/usr/bin/python3"; ln -sf python3.13 "$dir/usr/bin/python"
  slim_runtime "$dir"
  trim_and_import "$dir" stand-in/python:3.13 'ENV PYTHONDONTWRITEBYTECODE=1' 'CMD ["python3"]'
  rm -rf "$dir"
fi

# Two Node.js images: the runtime stage needs no npm (20 MB), the build stages do.
if ! have_image stand-in/node:20-runtime || ! have_image stand-in/node:20; then
  dir=$(new_rootfs nodejs ca-certificates)
  slim_runtime "$dir"
  trim_and_import "$dir" stand-in/node:20-runtime 'CMD ["node"]'
  add_npm "$dir"
  trim_and_import "$dir" stand-in/node:20 'CMD ["node"]'
  rm -rf "$dir"
fi
