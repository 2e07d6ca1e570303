#!/usr/bin/env bash
# helm, kubectl and actionlint for the suite, pinned in versions.env, built from the Go module proxy
# into $CACHE_DIR/bin (outside the repository, reused by every clone).
set -euo pipefail
source "$(dirname "$0")/common.sh"
mkdir -p "$TOOLS_BIN"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

helm_bin=$TOOLS_BIN/helm-$HELM_VERSION
if [ ! -x "$helm_bin" ]; then
  command -v go >/dev/null || die "go is needed to build helm $HELM_VERSION"
  dir=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  # Helm's Makefile stamps its version and the Kubernetes version its client libraries
  # speak (lint and template use it for .Capabilities.KubeVersion).
  k8s_mod=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$dir/go.mod")   # e.g. v0.34.2
  k8s_minor=$(echo "$k8s_mod" | cut -d. -f2)
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  log "building helm $HELM_VERSION (Kubernetes 1.$k8s_minor client libraries)"
  tmp=$(mktemp -d)
  GOBIN=$tmp with_heartbeat "building helm" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$tmp/helm" "$helm_bin"; rm -rf "$tmp"
fi
ln -sf "$helm_bin" "$TOOLS_BIN/helm"
log "helm: $("$TOOLS_BIN/helm" version --short)"

# kubectl at the pinned Kubernetes version, from the k8s.io/kubectl module: a few lines of
# main around its command, stamped like upstream's build (a skew of more than one minor
# version from the server makes kubectl warn on every call).
kubectl_bin=$TOOLS_BIN/kubectl-$KUBERNETES_VERSION
if [ ! -x "$kubectl_bin" ]; then
  built=$CACHE_DIR/kubernetes-$KUBERNETES_VERSION/src/_output/local/bin/linux/amd64/kubectl
  if [ -x "$built" ]; then
    cp "$built" "$kubectl_bin"
  else
    log "building kubectl $KUBERNETES_VERSION"
    tmp=$(mktemp -d)
    cat > "$tmp/main.go" <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
    staging=v0.${KUBERNETES_VERSION#v1.}
    minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
      ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    (cd "$tmp" && go mod init kubectlbuild >/dev/null 2>&1 \
       && go get "k8s.io/kubectl@$staging" "k8s.io/component-base@$staging" >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1 \
       && with_heartbeat "building kubectl" go build -trimpath -ldflags "$ldflags" -o "$kubectl_bin" .)
    rm -rf "$tmp"
  fi
fi
ln -sf "$kubectl_bin" "$TOOLS_BIN/kubectl"
log "kubectl: $("$TOOLS_BIN/kubectl" version --client | head -1)"

# actionlint, for the example GitHub Actions job (examples/).
if [ ! -x "$TOOLS_BIN/actionlint-$ACTIONLINT_VERSION" ]; then
  log "building actionlint $ACTIONLINT_VERSION"
  tmp=$(mktemp -d)
  GOBIN=$tmp with_heartbeat "building actionlint" go install -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  mv "$tmp/actionlint" "$TOOLS_BIN/actionlint-$ACTIONLINT_VERSION"; rm -rf "$tmp"
fi
ln -sf "$TOOLS_BIN/actionlint-$ACTIONLINT_VERSION" "$TOOLS_BIN/actionlint"
