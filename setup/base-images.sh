#!/usr/bin/env bash
# Stand-in base images for machines that cannot pull from a registry, built from Debian with
# debootstrap and tagged with the OFFICIAL name, so an unmodified `FROM python:3.13-slim`
# builds here. Usage:
#   bash setup/base-images.sh [REF[=TAG]]...     (default: the reference app's bases)
#   bash setup/base-images.sh python:3.11-slim node:20-slim=wt-me/node:20-slim
# Which names have a stand-in, and from which Debian release, is decided in one place:
# shipcheck/base_images.py (`python3 -m shipcheck.base_images recipe REF`). This script
# builds what it says:
#   debian:*        the release's minbase, trimmed, with apt sources (release, updates,
#                   security) and keyrings; ca-certificates
#   python:X.Y-*    + Debian's pythonX.Y and venv, pip in /usr/local like the official image
#                   (/usr/local/bin/python, python3, pip, pip3), PYTHON_VERSION, LANG
#   node:N-*        + Debian's nodejs, npm, corepack and yarn from the npm registry under
#                   /usr/local, user node (1000:1000), docker-entrypoint.sh, NODE_VERSION
#   *-alpine*       the same without apt/dpkg (Alpine has neither), with busybox's wget and
#                   ash and alpine-style adduser/addgroup; `apk` is absent on purpose
# Every stand-in trusts the host's CAs (a TLS-intercepting proxy's CA reaches pip, npm, apt
# and curl): installed in its trust store, and SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
# CURL_CA_BUNDLE, PIP_CERT and NODE_EXTRA_CA_CERTS point at it. Labels say what it is:
#   io.shipcheck.stand-in=debian-trixie python3.13 3.13.5   io.shipcheck.stand-in.for=python:3.13-slim
# An image already in the engine under the tag is kept: `docker rmi` it to rebuild.
set -euo pipefail
source "$(dirname "$0")/common.sh"
ROOT=$(cd "$SETUP_DIR/.." && pwd)
DOCKER=${DOCKER:-/usr/bin/docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ROOTFS_CACHE=$CACHE_DIR/rootfs
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
CA_FILE=/etc/ssl/certs/ca-certificates.crt
# What the official node:20 images bundle (node 20.19.2).
NPM_VERSION=${NPM_VERSION:-10.8.2}
COREPACK_VERSION=${COREPACK_VERSION:-0.32.0}
YARN_VERSION=${YARN_VERSION:-1.22.22}
DEFAULT_REFS=(node:20-alpine python:3.13-slim debian:trixie-slim)

# Commands in the new root see none of this machine's environment (PIP_*, NPM_* ...) but its
# proxy settings, which apt needs where this machine does.
in_root() {  # dir command...
  local dir=$1; shift
  local keep=() var; for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!var:-}" ] && keep+=("$var=${!var}"); done
  chroot "$dir" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${keep[@]}" "$@"
}

have_image() { $DOCKER image inspect "$1" >/dev/null 2>&1; }

base_rootfs() {  # suite: a minbase of that release, made once, copied for each image
  local suite=$1 dir=$ROOTFS_CACHE/$1-minbase
  [ -f "$dir/.complete" ] && { echo "$dir"; return; }
  command -v debootstrap >/dev/null || apt_install debootstrap
  rm -rf "$dir"; mkdir -p "$dir/etc/dpkg/dpkg.cfg.d"
  # Keep docs, man pages and locales out of every later install too (as the official slim
  # images do), also in Dockerfiles built on the stand-in.
  cat > "$dir/etc/dpkg/dpkg.cfg.d/01-trim" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
CFG
  log "debootstrap $suite minbase from $MIRROR"
  with_heartbeat "running debootstrap" debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >/dev/null
  printf 'APT::Install-Recommends "0";\nAPT::Install-Suggests "0";\n' > "$dir/etc/apt/apt.conf.d/01-norecommends"
  touch "$dir/.complete"
  echo "$dir"
}

apt_sources() {  # dir suite: the official images' deb822 sources (release, updates, security)
  local dir=$1 suite=$2
  rm -f "$dir/etc/apt/sources.list"
  mkdir -p "$dir/etc/apt/sources.list.d"
  cat > "$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

new_rootfs() {  # suite packages... ; prints a fresh copy of the release's minbase with them
  local suite=$1; shift
  local base; base=$(base_rootfs "$suite")
  local dir; dir=$(mktemp -d "$ROOTFS_CACHE/build.$$.XXXX")
  cp -a "$base/." "$dir/"
  rm -f "$dir/.complete"
  apt_sources "$dir" "$suite"
  # resolv.conf for apt inside the chroot; the image gets Docker's at run time.
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  log "installing from Debian $suite: $*"
  local out=$dir.apt.log  # shown only when apt fails
  { in_root "$dir" apt-get update -qq && in_root "$dir" apt-get install -y -qq -o Dpkg::Use-Pty=0 "$@" \
      && in_root "$dir" apt-get clean; } >"$out" 2>&1 || { tail -n 20 "$out" >&2; die "apt-get failed for $*"; }
  rm -f "$out"
  echo "$dir"
}

trust_host_cas() {  # dir: the CAs the host added to its trust store (an intercepting proxy's)
  local dir=$1 out=$1/usr/local/share/ca-certificates
  [ -f "$HOST_CA_BUNDLE" ] || { log "no $HOST_CA_BUNDLE: the stand-in trusts Debian's CAs only"; return 0; }
  mkdir -p "$out"
  # Known: the stand-in's bundle and the host's own distribution CAs (/usr/share/ca-certificates
  # on Debian), so a CA that a newer Mozilla list dropped is not brought back from the host's.
  local known; known=$(mktemp)
  { cat "$dir$CA_FILE"; find /usr/share/ca-certificates -name '*.crt' -exec cat {} + 2>/dev/null || true; } > "$known"
  awk -v known="$known" -v out="$out/shipcheck-host-" '
    function body(s) { gsub(/[\r \t]/, "", s); return s }
    BEGIN { while ((getline line < known) > 0) {
              if (line ~ /BEGIN CERTIFICATE/) b = ""; else if (line ~ /END CERTIFICATE/) seen[b] = 1; else b = b body(line) } }
    /BEGIN CERTIFICATE/ { inside = 1; b = ""; cert = $0 "\n"; next }
    /END CERTIFICATE/   { inside = 0; cert = cert $0 "\n"
                          if (!(b in seen)) { n++; f = out n ".crt"; printf "%s", cert > f; close(f) }
                          seen[b] = 1; next }
    inside { b = b body($0); cert = cert $0 "\n" }
    END { print n + 0 }' "$HOST_CA_BUNDLE" | { read -r n; log "trusting $n CA(s) the host added to its bundle"; }
  rm -f "$known"
  in_root "$dir" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the stand-in"
}

npm_pack() {  # name version: the package tarball, downloaded once (keyed by version)
  local cache=$CACHE_DIR/npm-packs file=$CACHE_DIR/npm-packs/$1-$2.tgz
  if [ ! -f "$file" ]; then
    mkdir -p "$cache"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null) || die "npm pack $1@$2 failed (the npm registry must answer)"
    mv "$tmp"/*.tgz "$file"; rm -rf "$tmp"
  fi
  echo "$file"
}

unpack_to() {  # tarball dir
  mkdir -p "$2"; tar -xzf "$1" -C "$2" --strip-components=1 --no-same-owner
}

add_python() {  # dir version: the official layout on Debian's interpreter
  local dir=$1 v=$2
  # Debian marks its Python "externally managed" (PEP 668); the official images do not, and
  # Dockerfiles `pip install` into it. pip goes to /usr/local, as in the official image.
  rm -f "$dir/usr/lib/python$v/EXTERNALLY-MANAGED"
  ln -sf "python$v" "$dir/usr/bin/python3"
  # Debian installs to dist-packages, the official image to site-packages, which multi-stage
  # Dockerfiles copy by name: make it the real directory, dist-packages a link to it.
  mkdir -p "$dir/usr/local/lib/python$v/site-packages"
  ln -sfn site-packages "$dir/usr/local/lib/python$v/dist-packages"
  local extra=(); [ "$v" = 3.11 ] && extra=(setuptools)  # 3.11 images still ship it (pip builds wheels without `wheel`)
  local wheel; wheel=$(cd "$dir/usr/share/python-wheels" && ls pip-*.whl)
  in_root "$dir" "python$v" "/usr/share/python-wheels/$wheel/pip" install -q --no-index --no-cache-dir \
    --disable-pip-version-check --root-user-action=ignore --find-links=/usr/share/python-wheels pip "${extra[@]}"
  ln -sf "/usr/bin/python$v" "$dir/usr/local/bin/python"
  ln -sf "/usr/bin/python$v" "$dir/usr/local/bin/python3"
  ln -sf "/usr/bin/python$v" "$dir/usr/local/bin/python$v"
  for tool in pip pip3 "pip$v"; do [ -x "$dir/usr/local/bin/$tool" ] || die "pip did not install /usr/local/bin/$tool"; done
}

add_node() {  # dir shell: npm, corepack, yarn under /usr/local, user node, the entrypoint
  local dir=$1 shell=$2
  ln -sf /usr/bin/node "$dir/usr/local/bin/node"
  unpack_to "$(npm_pack npm "$NPM_VERSION")" "$dir/usr/local/lib/node_modules/npm"
  unpack_to "$(npm_pack corepack "$COREPACK_VERSION")" "$dir/usr/local/lib/node_modules/corepack"
  # Debian's node sits in /usr; global installs go to /usr/local like the official image's.
  echo "prefix=/usr/local" > "$dir/usr/local/lib/node_modules/npm/npmrc"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  ln -sf ../lib/node_modules/corepack/dist/corepack.js "$dir/usr/local/bin/corepack"
  unpack_to "$(npm_pack yarn "$YARN_VERSION")" "$dir/opt/yarn-v$YARN_VERSION"
  ln -sf "/opt/yarn-v$YARN_VERSION/bin/yarn" "$dir/usr/local/bin/yarn"
  ln -sf "/opt/yarn-v$YARN_VERSION/bin/yarn" "$dir/usr/local/bin/yarnpkg"
  in_root "$dir" groupadd --gid 1000 node
  in_root "$dir" useradd --uid 1000 --gid node --shell "$shell" --create-home node
  install -m 755 "$SETUP_DIR/stand-in/docker-entrypoint.sh" "$dir/usr/local/bin/docker-entrypoint.sh"
  for tool in npm npx yarn corepack; do
    in_root "$dir" "$tool" --version >/dev/null || die "$tool does not run in the stand-in"
  done
}

alpine_like() {  # dir: what Alpine Dockerfiles use besides apk, then no package manager
  local dir=$1
  ln -sf busybox "$dir/usr/bin/wget"
  ln -sf busybox "$dir/usr/bin/ash"
  for tool in adduser addgroup deluser delgroup; do
    install -m 755 "$SETUP_DIR/stand-in/$tool" "$dir/usr/sbin/$tool"
  done
  # Debian's corepack; the registry's in /usr/local is the one on PATH.
  rm -rf "$dir/usr/bin/corepack" "$dir/usr/share/nodejs/corepack"
  # No apt, dpkg, perl, debconf or iconv modules (about 45 MB): Alpine has none of them, and
  # it keeps a Next.js app on this base under the reference frontend's 200 MB budget.
  rm -rf "$dir"/usr/bin/apt* "$dir"/usr/lib/apt "$dir"/usr/lib/x86_64-linux-gnu/libapt-* \
         "$dir"/etc/apt "$dir"/var/lib/apt "$dir"/var/cache/apt "$dir"/usr/bin/sqv "$dir"/usr/bin/gpgv \
         "$dir"/usr/bin/perl* "$dir"/usr/lib/x86_64-linux-gnu/perl-base "$dir"/usr/share/perl5 \
         "$dir"/usr/bin/dpkg* "$dir"/var/lib/dpkg "$dir"/etc/dpkg "$dir"/usr/share/dpkg \
         "$dir"/usr/lib/x86_64-linux-gnu/gconv "$dir"/usr/lib/x86_64-linux-gnu/libdb-5.3.so \
         "$dir"/var/cache/debconf "$dir"/usr/share/debconf "$dir"/usr/share/common-licenses \
         "$dir"/usr/share/doc "$dir"/usr/share/keyrings "$dir"/usr/share/nodejs/@types
}

trim_and_import() {  # dir tag docker-import --change lines...
  local dir=$1 tag=$2; shift 2
  rm -rf "$dir"/usr/share/doc/*/changelog* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
         "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/log/* "$dir"/root/.cache "$dir"/root/.npm
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  : > "$dir/etc/resolv.conf"
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  tar -C "$dir" -c . | $DOCKER import "${changes[@]}" - "$tag" >/dev/null
  log "imported $tag ($($DOCKER image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build() {  # ref tag
  local ref=$1 tag=$2 KIND SUITE VERSION ALPINE recipe
  recipe=$(PYTHONPATH=$ROOT "${PYTHON:-python3}" -m shipcheck.base_images recipe "$ref") || die "no stand-in for $ref (above)"
  while IFS='=' read -r key value; do
    case $key in KIND) KIND=$value ;; SUITE) SUITE=$value ;; VERSION) VERSION=$value ;; ALPINE) ALPINE=$value ;; esac
  done <<< "$recipe"
  local start; start=$(date +%s)
  local packages=(ca-certificates) env=() what release
  case $KIND in
    python) packages+=("python$VERSION" "python$VERSION-venv" netbase) ;;
    node) packages+=(nodejs) ;;
  esac
  [ "$ALPINE" = 1 ] && packages+=(busybox)
  log "building $tag: a stand-in for $ref from Debian $SUITE"
  local dir; dir=$(new_rootfs "$SUITE" "${packages[@]}")
  trust_host_cas "$dir"
  release=$(cat "$dir/etc/debian_version")
  case $KIND in
    debian)
      what="debian-$SUITE $release"
      env=('CMD ["bash"]') ;;
    python)
      add_python "$dir" "$VERSION"
      local full; full=$(in_root "$dir" "python$VERSION" -c 'import platform; print(platform.python_version())')
      what="debian-$SUITE python$VERSION $full"
      env=("ENV LANG=C.UTF-8" "ENV PYTHON_VERSION=$full" 'CMD ["python3"]') ;;
    node)
      local shell=/bin/bash; [ "$ALPINE" = 1 ] && shell=/bin/sh
      add_node "$dir" "$shell"
      local full; full=$(in_root "$dir" node -p process.versions.node)
      what="debian-$SUITE nodejs $full"
      env=("ENV NODE_VERSION=$full" "ENV YARN_VERSION=$YARN_VERSION" 'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["node"]') ;;
  esac
  [ "$ALPINE" = 1 ] && { alpine_like "$dir"; what="$what, alpine-like (no apt, no apk)"; }
  trim_and_import "$dir" "$tag" \
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "ENV SSL_CERT_FILE=$CA_FILE" "ENV REQUESTS_CA_BUNDLE=$CA_FILE" "ENV CURL_CA_BUNDLE=$CA_FILE" \
    "ENV PIP_CERT=$CA_FILE" "ENV NODE_EXTRA_CA_CERTS=$CA_FILE" \
    "${env[@]}" \
    "LABEL io.shipcheck.stand-in=\"$what\"" "LABEL io.shipcheck.stand-in.for=\"$ref\""
  rm -rf "$dir"
  log "$tag ($what) built in $(( $(date +%s) - start )) s"
}

mkdir -p "$ROOTFS_CACHE"
trap 'rm -rf "$ROOTFS_CACHE"/build.$$.*' EXIT
# One build at a time on this machine: set-up and test runs may call this together, and the
# release minbases are shared.
exec 9>"$ROOTFS_CACHE/.lock"
flock 9
[ $# -gt 0 ] || set -- "${DEFAULT_REFS[@]}"
for arg in "$@"; do
  ref=${arg%%=*}; tag=${arg#*=}
  if have_image "$tag"; then log "$tag: already in the engine"; continue; fi
  build "$ref" "$tag"
done
