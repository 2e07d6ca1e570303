#!/usr/bin/env bash
# Build a single-node Kubernetes from the Go module proxy (no GitHub, no registry):
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
# from k8s.io/kubernetes, plus etcd, cfssl, crictl, CoreDNS and the pause binary.
# Result: $CACHE_DIR/kubernetes-$KUBERNETES_VERSION/{src,bin}; a second run is a no-op.
set -euo pipefail
source "$(dirname "$0")/common.sh"

OUT=$CACHE_DIR/kubernetes-$KUBERNETES_VERSION
[ -f "$OUT/.complete" ] && { log "Kubernetes $KUBERNETES_VERSION already built in $OUT"; exit 0; }
command -v go >/dev/null || die "go is not installed; it is needed to build Kubernetes from the Go module proxy"
mkdir -p "$OUT/bin"
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

# --- source -------------------------------------------------------------------------
SRC=$OUT/src
if [ ! -f "$SRC/.prepared" ]; then
  log "downloading k8s.io/kubernetes@$KUBERNETES_VERSION from the Go module proxy"
  dir=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$dir" ] || die "go mod download gave no source directory for k8s.io/kubernetes@$KUBERNETES_VERSION"
  rm -rf "$SRC"; cp -r "$dir" "$SRC"; chmod -R u+w "$SRC"
  rm -rf "$SRC/go.work" "$SRC/go.work.sum" "$SRC/vendor"
  # Module zips omit the nested staging modules; point each replace at the published
  # k8s.io/X v0.MINOR.PATCH, which upstream publishes from the same tree.
  staging_version=v0.${KUBERNETES_VERSION#v1.}
  sed -i -E "s#^(\s*k8s.io/[a-z0-9-]+) => ./staging/src/k8s.io/[a-z0-9-]+#\1 => \1 $staging_version#" "$SRC/go.mod"
  grep -q './staging/' "$SRC/go.mod" && die "go.mod still has staging replaces"
  log "resolving Kubernetes dependencies"
  (cd "$SRC" && with_heartbeat "downloading Kubernetes dependencies" go mod download)
  touch "$SRC/.prepared"
fi

# --- Kubernetes binaries ---------------------------------------------------------------
major=${KUBERNETES_VERSION#v}; major=${major%%.*}
minor=${KUBERNETES_VERSION#v*.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
KBIN=$SRC/_output/local/bin/linux/amd64   # where local-up-cluster.sh -O looks
mkdir -p "$KBIN"
# The first binary compiles most of the shared code (about 8 minutes on 2 cores); the
# rest take about a minute each.
for cmd in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl; do
  [ -x "$KBIN/$cmd" ] && continue
  log "building $cmd $KUBERNETES_VERSION"
  (cd "$SRC" && with_heartbeat "building $cmd" go build -trimpath -tags=selinux,notest -ldflags "$ldflags" -o "$KBIN/$cmd.tmp" "./cmd/$cmd")
  mv "$KBIN/$cmd.tmp" "$KBIN/$cmd"
done
"$KBIN/kube-apiserver" --version | grep -q "$KUBERNETES_VERSION" || die "kube-apiserver does not report $KUBERNETES_VERSION"

# --- etcd, from a throwaway module (its own go.mod has replace lines, so no go install)
if [ ! -x "$OUT/bin/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  tmp=$(mktemp -d)
  cat > "$tmp/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$tmp" && go mod init etcdbuild >/dev/null 2>&1 && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 \
     && go mod tidy >/dev/null 2>&1 \
     && with_heartbeat "building etcd" go build -trimpath -ldflags "-s -w" -o "$OUT/bin/etcd" .)
  rm -rf "$tmp"
fi

# --- small tools through go install --------------------------------------------------
gobin_install() {  # name, package@version
  [ -x "$OUT/bin/$1" ] && return 0
  log "building $1 ($2)"
  GOBIN=$OUT/bin with_heartbeat "building $1" go install -trimpath -ldflags "-s -w" "$2"
}
gobin_install cfssl "github.com/cloudflare/cfssl/cmd/cfssl@$CFSSL_VERSION"
gobin_install cfssljson "github.com/cloudflare/cfssl/cmd/cfssljson@$CFSSL_VERSION"
gobin_install crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
gobin_install coredns "github.com/coredns/coredns@$COREDNS_VERSION"

# --- pause, compiled statically from the Kubernetes source ------------------------------
if [ ! -x "$OUT/bin/pause" ]; then
  command -v gcc >/dev/null || apt_install gcc libc6-dev
  log "compiling pause"
  gcc -Os -static -DVERSION="$KUBERNETES_VERSION" -o "$OUT/bin/pause" "$SRC/build/pause/linux/pause.c"
fi

echo "$(( $(date +%s) - _t0 ))" > "$OUT/build-seconds"   # the cold build time, for bench/run.py
touch "$OUT/.complete"
log "Kubernetes $KUBERNETES_VERSION built: $(du -sh "$OUT/bin" "$KBIN" | awk '{print $1}' | paste -sd+) in $OUT"
