#!/usr/bin/env bash
# helm and kubectl for the suite, pinned in versions.env, built from the Go module proxy
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

# kubectl of the same version as the local cluster, from its build.
kubectl_built=$CACHE_DIR/kubernetes-$KUBERNETES_VERSION/src/_output/local/bin/linux/amd64/kubectl
if [ -x "$kubectl_built" ]; then
  ln -sf "$kubectl_built" "$TOOLS_BIN/kubectl"
  log "kubectl: $("$TOOLS_BIN/kubectl" version --client | head -1)"
elif ! command -v kubectl >/dev/null; then
  log "kubectl comes with the local cluster build (setup/build-kubernetes.sh)"
fi
