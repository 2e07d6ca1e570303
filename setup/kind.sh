#!/usr/bin/env bash
# kind clusters, also on machines that cannot pull from a registry.
#
#   setup/kind.sh build          kind and the node image; cached by version, a second run is a no-op
#   setup/kind.sh create         create the cluster "shipcheck" (one node), or reuse it when it answers
#   setup/kind.sh delete         delete it
#   setup/kind.sh load IMAGE...  copy local Docker images into its nodes (kind load docker-image)
#   setup/kind.sh status         whether it answers; its kubeconfig
#   setup/kind.sh built          exit 0 when kind and a node image are built (nothing is built)
#   setup/kind.sh node-image     the node image `create` uses
#
# Where Docker can pull kind's own node image (and the machine has cgroup v2, which that
# image's Kubernetes requires), that image is used and nothing else is built. Otherwise the
# node image is built here, nothing pulled: kind and local-path-provisioner from the Go
# module proxy, kubeadm from the Kubernetes source setup/build-kubernetes.sh caches, a
# Debian base with our node files (setup/kind-node/), and the control-plane, etcd, CoreDNS,
# pause, kube-proxy and storage images under the names kubeadm asks for, imported into the
# node's containerd. The kubeconfig is kept apart ($CACHE_DIR/kind/kubeconfig), so a kind
# cluster never becomes some other tool's current context by surprise.
set -euo pipefail
shopt -s inherit_errexit   # functions run as $(...) stop at their first failure too
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NODE_FILES=$SETUP_DIR/kind-node
KIND_OUT=$CACHE_DIR/kind-$KIND_VERSION
KIND=$KIND_OUT/bin/kind
LPP_OUT=$CACHE_DIR/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION
K8S_OUT=$CACHE_DIR/kubernetes-$KUBERNETES_VERSION
KBIN=$K8S_OUT/src/_output/local/bin/linux/amd64
STATE=$CACHE_DIR/kind                       # kubeconfig and the node image in use
KUBECONFIG_PATH=$STATE/kubeconfig
CLUSTER=shipcheck
DOCKER=/usr/bin/docker
# Part of the node image's tag, with the node files' contents: raise it when the way
# assemble_node and the image functions below build the node changes.
NODE_RECIPE=1
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

# --- tools from the Go module proxy ------------------------------------------------------------
build_kind() {
  if [ ! -x "$KIND" ]; then
    command -v go >/dev/null || die "go is not installed; it is needed to build kind from the Go module proxy"
    log "building kind $KIND_VERSION"
    GOBIN=$KIND_OUT/bin with_heartbeat "building kind" nice -n 10 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
  fi
  # Findable where the suite looks for set-up tools.
  mkdir -p "$TOOLS_BIN"
  ln -sf "$KIND" "$TOOLS_BIN/kind"
}

build_local_path_provisioner() {
  [ -x "$LPP_OUT/local-path-provisioner" ] && return 0
  log "building local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION"
  GOBIN=$LPP_OUT with_heartbeat "building local-path-provisioner" nice -n 10 \
    go install -trimpath -ldflags "-s -w" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
}

# kubeadm from the cached Kubernetes source, stamped like the other binaries
# (setup/build-kubernetes.sh), so it reports the same version.
build_kubeadm() {
  if [ ! -f "$K8S_OUT/.complete" ]; then
    if pgrep -f "build-kubernetes.sh" >/dev/null; then
      log "waiting for the Kubernetes build already running (it writes $K8S_OUT/.complete)"
      with_heartbeat "waiting for the Kubernetes build" \
        bash -c "while [ ! -f '$K8S_OUT/.complete' ]; do pgrep -f build-kubernetes.sh >/dev/null || exit 1; sleep 10; done" \
        || die "the Kubernetes build stopped without finishing; run setup/build-kubernetes.sh"
    else
      bash "$SETUP_DIR/build-kubernetes.sh"
    fi
  fi
  [ -x "$K8S_OUT/bin/kubeadm" ] && return 0
  local major minor ldflags pkg
  major=${KUBERNETES_VERSION#v}; major=${major%%.*}
  minor=${KUBERNETES_VERSION#v*.}; minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  log "building kubeadm $KUBERNETES_VERSION"
  (cd "$K8S_OUT/src" && with_heartbeat "building kubeadm" nice -n 10 \
     go build -trimpath -tags=selinux,notest -ldflags "$ldflags" -o "$K8S_OUT/bin/kubeadm.tmp" ./cmd/kubeadm)
  mv "$K8S_OUT/bin/kubeadm.tmp" "$K8S_OUT/bin/kubeadm"
  "$K8S_OUT/bin/kubeadm" version -o short | grep -qx "$KUBERNETES_VERSION" || die "kubeadm does not report $KUBERNETES_VERSION"
}

# --- images -----------------------------------------------------------------------------------
have_image() { $DOCKER image inspect "$1" >/dev/null 2>&1; }

debian_image() {  # the official trixie image when the engine has it, else the stand-in
  if have_image debian:trixie-slim; then echo debian:trixie-slim; return; fi
  have_image stand-in/debian:trixie-slim || bash "$SETUP_DIR/base-images.sh" >&2
  echo stand-in/debian:trixie-slim
}

files_hash() { cat "$@" | sha256sum | cut -c1-12; }

# One binary in an otherwise empty image, as its entrypoint.
binary_image() {  # tag, binary
  have_image "$1" && return 0
  local tmp name; tmp=$(mktemp -d); name=$(basename "$2")
  cp "$2" "$tmp/$name"
  printf 'FROM scratch\nCOPY %s /usr/local/bin/%s\nENV PATH=/usr/local/bin\nENTRYPOINT ["/usr/local/bin/%s"]\n' \
    "$name" "$name" "$name" > "$tmp/Dockerfile"
  DOCKER_BUILDKIT=1 $DOCKER build -q -t "$1" "$tmp" >/dev/null
  rm -rf "$tmp"
}

# kube-proxy runs iptables: Debian with iptables and conntrack, and a wrapper that picks the
# node's iptables backend (setup/kind-node/kube-proxy).
kube_proxy_image() {  # tag
  have_image "$1" && return 0
  local tmp; tmp=$(mktemp -d)
  cp "$KBIN/kube-proxy" "$tmp/kube-proxy-bin"
  cp "$NODE_FILES/kube-proxy" "$tmp/kube-proxy"
  chmod 0755 "$tmp/kube-proxy" "$tmp/kube-proxy-bin"   # COPY keeps the mode: no second layer for a chmod
  cat > "$tmp/Dockerfile" <<EOF
FROM $(debian_image)
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables conntrack >/dev/null \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY kube-proxy-bin kube-proxy /usr/local/bin/
EOF
  DOCKER_BUILDKIT=1 $DOCKER build -q -t "$1" "$tmp" >/dev/null
  rm -rf "$tmp"
}

base_image() {  # prints the base image's tag, building it when missing
  local tag
  tag=shipcheck-kind/node-base:trixie-$(cd "$NODE_FILES" && files_hash Dockerfile entrypoint containerd.toml crictl.yaml \
        99-shipcheck-bridge.conflist kubelet.default containerd.service kubelet.service kubelet.slice)
  if ! have_image "$tag"; then
    log "building the node base image $tag from Debian packages"
    with_heartbeat "building the node base image" \
      $DOCKER build -q --build-arg "BASE_IMAGE=$(debian_image)" -t "$tag" "$NODE_FILES" >/dev/null
  fi
  echo "$tag"
}

# The images kubeadm asks for, each built as shipcheck-kind/NAME:TAG and renamed inside the
# node; prints "docker-name kubeadm-name" lines.
system_images() {
  local want name tag ours
  for want in $("$K8S_OUT/bin/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" 2>/dev/null); do
    name=${want##*/}; tag=${name#*:}; name=${name%%:*}
    ours=shipcheck-kind/$name:$tag
    case "$name" in
      kube-apiserver|kube-controller-manager|kube-scheduler) binary_image "$ours" "$KBIN/$name" ;;
      kube-proxy) kube_proxy_image "$ours" ;;
      etcd|coredns|pause) binary_image "$ours" "$K8S_OUT/bin/$name" ;;
      *) die "kubeadm $KUBERNETES_VERSION asks for $want, which this script does not know how to build" ;;
    esac
    echo "$ours $want"
  done
}

storage_images() {  # prints "docker-name" lines: the provisioner and its helper
  local provisioner=shipcheck-kind/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION
  local helper=shipcheck-kind/local-path-helper:trixie
  binary_image "$provisioner" "$LPP_OUT/local-path-provisioner"
  have_image "$helper" || $DOCKER tag "$(debian_image)" "$helper"
  echo "$provisioner"; echo "$helper"
}

# The node image: the base plus kubeadm, kubelet, kubectl and crictl, /kind's version and
# manifests, and every image imported (pinned) into the node's containerd. `kind build
# node-image` cannot do this offline (it pulls etcd, CoreDNS, pause, kindnetd and the
# storage images), so the node is assembled in a running container and committed.
assemble_node() {  # base tag, node tag
  local base=$1 node=$2 builder=shipcheck-kind-build-$$
  log "assembling the node image $node"
  local pairs storage
  pairs=$(system_images)
  storage=$(storage_images)
  $DOCKER rm -f "$builder" >/dev/null 2>&1 || true
  # Privileged: containerd's overlayfs snapshotter checks it can mount.
  $DOCKER run -d --name "$builder" --privileged --entrypoint sleep "$base" infinity >/dev/null
  trap '$DOCKER rm -f "'"$builder"'" >/dev/null 2>&1 || true' EXIT
  $DOCKER cp "$K8S_OUT/bin/kubeadm" "$builder:/usr/bin/kubeadm"
  $DOCKER cp "$KBIN/kubelet" "$builder:/usr/bin/kubelet"
  $DOCKER cp "$KBIN/kubectl" "$builder:/usr/bin/kubectl"
  $DOCKER cp "$K8S_OUT/bin/crictl" "$builder:/usr/bin/crictl"
  $DOCKER cp "$NODE_FILES/default-cni.yaml" "$builder:/kind/manifests/default-cni.yaml"
  sed -e "s#@PROVISIONER_IMAGE@#docker.io/$(sed -n 1p <<<"$storage")#g" \
      -e "s#@HELPER_IMAGE@#docker.io/$(sed -n 2p <<<"$storage")#g" "$NODE_FILES/storage.yaml" \
    | $DOCKER exec -i "$builder" sh -c 'cat > /kind/manifests/default-storage.yaml'
  $DOCKER exec "$builder" sh -c "echo $KUBERNETES_VERSION > /kind/version"
  $DOCKER exec "$builder" sh -c 'containerd --config /etc/containerd/config.toml >/tmp/containerd.log 2>&1 &
    for i in $(seq 1 30); do ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; cat /tmp/containerd.log; exit 1'
  # shellcheck disable=SC2046
  $DOCKER save $(awk '{print $1}' <<<"$pairs") $storage \
    | $DOCKER exec -i "$builder" ctr -n k8s.io images import - >/dev/null
  # Renamed to what kubeadm asks for, and pinned: the kubelet's image GC never removes them.
  local ours want
  while read -r ours want; do
    $DOCKER exec "$builder" sh -c "ctr -n k8s.io images tag --force docker.io/$ours $want >/dev/null &&
      ctr -n k8s.io images rm docker.io/$ours >/dev/null"
  done <<<"$pairs"
  for want in $(awk '{print $2}' <<<"$pairs") $(sed 's#^#docker.io/#' <<<"$storage"); do
    $DOCKER exec "$builder" ctr -n k8s.io images label "$want" io.cri-containerd.pinned=pinned >/dev/null
  done
  $DOCKER exec "$builder" sh -c 'pkill containerd; for i in $(seq 1 20); do pgrep containerd >/dev/null || break; sleep 0.5; done;
    rm -rf /tmp/* /run/containerd'
  $DOCKER commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
    "$builder" "$node" >/dev/null
  $DOCKER rm -f "$builder" >/dev/null
  trap - EXIT
}

build_node_image() {
  build_kubeadm >&2
  build_local_path_provisioner >&2
  local base node
  base=$(base_image)
  node=shipcheck-kind/node:$KUBERNETES_VERSION-$( (echo "$base $LOCAL_PATH_PROVISIONER_VERSION $NODE_RECIPE"; \
        cat "$NODE_FILES/default-cni.yaml" "$NODE_FILES/storage.yaml" "$NODE_FILES/kube-proxy") | sha256sum | cut -c1-12)
  if ! have_image "$node"; then
    local t0; t0=$(date +%s)
    assemble_node "$base" "$node"
    log "node image $node assembled in $(( $(date +%s) - t0 )) s ($($DOCKER image inspect -f '{{.Size}}' "$node" | awk '{printf "%.0f MB", $1/1e6}'))"
    # Node images of older node files are of no use (about 1 GB each): remove ours.
    local old
    for old in $($DOCKER images --format '{{.Repository}}:{{.Tag}}' shipcheck-kind/node) \
               $($DOCKER images --format '{{.Repository}}:{{.Tag}}' shipcheck-kind/node-base); do
      [ "$old" = "$node" ] || [ "$old" = "$base" ] || $DOCKER rmi "$old" >/dev/null 2>&1 || true
    done
  fi
  echo "$node"
}

# kind's own image needs cgroup v2 (its Kubernetes refuses v1) and a registry.
upstream_image_usable() {
  [ -f /sys/fs/cgroup/cgroup.controllers ] || return 1
  have_image "$KIND_UPSTREAM_NODE_IMAGE" && return 0
  timeout 300 $DOCKER pull -q "$KIND_UPSTREAM_NODE_IMAGE" >/dev/null 2>&1
}

build() {
  bash "$SETUP_DIR/docker.sh"   # also installs the runc wrapper where privileged containers need it
  build_kind
  mkdir -p "$STATE"
  local image
  if [ "$(cat "$STATE/node-image" 2>/dev/null)" = "$KIND_UPSTREAM_NODE_IMAGE" ] && have_image "$KIND_UPSTREAM_NODE_IMAGE"; then
    image=$KIND_UPSTREAM_NODE_IMAGE
  elif upstream_image_usable; then
    image=$KIND_UPSTREAM_NODE_IMAGE
    log "Docker can pull kind's own node image: using $image, building none"
  else
    image=$(build_node_image)
  fi
  echo "$image" > "$STATE/node-image"
  log "kind $KIND_VERSION ready; node image $image"
}

# --- the cluster ----------------------------------------------------------------------------------
answers() {
  [ -f "$KUBECONFIG_PATH" ] && "$KBIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" --context "kind-$CLUSTER" \
    get --raw /readyz >/dev/null 2>&1
}

exists() { [ -x "$KIND" ] && "$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER"; }

create() {
  if exists && answers; then
    log "kind cluster $CLUSTER already running; kubeconfig $KUBECONFIG_PATH"
    return
  fi
  build
  if exists; then
    log "kind cluster $CLUSTER exists but does not answer: deleting it first"
    delete
  fi
  local t0; t0=$(date +%s)
  log "creating kind cluster $CLUSTER (image $(cat "$STATE/node-image"))"
  with_heartbeat "creating the kind cluster" \
    "$KIND" create cluster --name "$CLUSTER" --config "$NODE_FILES/cluster.yaml" --image "$(cat "$STATE/node-image")" \
      --kubeconfig "$KUBECONFIG_PATH" --wait 10m
  log "kind cluster $CLUSTER Ready in $(( $(date +%s) - t0 )) s; kubeconfig $KUBECONFIG_PATH"
}

delete() {
  [ -x "$KIND" ] || { log "kind is not built: no cluster to delete"; return; }
  "$KIND" delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH"
}

status() {
  if answers; then
    echo "running; kubeconfig $KUBECONFIG_PATH (context kind-$CLUSTER)"
    "$KBIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" --context "kind-$CLUSTER" get nodes -o wide
  else
    echo "not running"; return 1
  fi
}

load() {
  [ $# -gt 0 ] || die "usage: $0 load IMAGE..."
  local image t0
  for image in "$@"; do
    t0=$(date +%s)
    "$KIND" load docker-image "$image" --name "$CLUSTER"
    log "loaded $image into kind cluster $CLUSTER in $(( $(date +%s) - t0 )) s"
  done
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0   # sourced (a benchmark, a test): functions only
case "${1:-}" in
  build) build ;;
  create) create ;;
  delete) delete ;;
  load) shift; load "$@" ;;
  status) status ;;
  built) [ -x "$KIND" ] && [ -f "$STATE/node-image" ] && have_image "$(cat "$STATE/node-image")" ;;
  node-image) cat "$STATE/node-image" ;;
  kubeconfig) echo "$KUBECONFIG_PATH" ;;
  *) sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
