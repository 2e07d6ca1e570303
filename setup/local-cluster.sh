#!/usr/bin/env bash
# A single-node upstream Kubernetes on this machine, for machines without a registry.
#
#   setup/local-cluster.sh start    build (first time) and start; a running cluster is reused
#   setup/local-cluster.sh stop     stop everything it started; no processes or mounts left
#   setup/local-cluster.sh status   print whether it answers, and the kubeconfig path
#   setup/local-cluster.sh load IMAGE...   make locally built Docker images visible to it
#
# Binaries come from setup/build-kubernetes.sh (cached by version). It runs upstream's
# hack/local-up-cluster.sh on a containerd of its own (not the one dockerd uses), with
# the pause and CoreDNS images built here from source, CNI plugins from Debian.
set -euo pipefail
source "$(dirname "$0")/common.sh"

OUT=$CACHE_DIR/kubernetes-$KUBERNETES_VERSION
SRC=$OUT/src
KBIN=$SRC/_output/local/bin/linux/amd64
STATE=/var/lib/shipcheck-cluster            # logs, containerd config, pids
CERT_DIR=/var/run/kubernetes
KUBECONFIG_PATH=$CERT_DIR/admin.kubeconfig
CONTAINERD_SOCK=/run/shipcheck-containerd/containerd.sock
CONTAINERD_ROOT=/var/lib/shipcheck-containerd
REGISTRY_HOSTS_DIR=/etc/shipcheck-containerd/certs.d
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
COREDNS_IMAGE=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
CTR=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
KUBECTL=("$KBIN/kubectl" --kubeconfig "$KUBECONFIG_PATH")

answers() { [ -x "$KBIN/kubectl" ] && "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1; }

node_ready() {
  "${KUBECTL[@]}" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{end}' 2>/dev/null | grep -q True
}

host_packages() {
  # containerd for the CRI (its own instance), CNI plugins, and what the script and
  # kube-proxy call: sudo, iptables, conntrack, openssl; socat for port-forward.
  apt_install containerd containernetworking-plugins iptables conntrack sudo openssl socat ethtool iproute2 procps
}

start_containerd() {
  if [ -S "$CONTAINERD_SOCK" ] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then return; fi
  mkdir -p "$STATE" "$(dirname "$CONTAINERD_SOCK")" /opt/cni/bin /etc/cni/net.d "$REGISTRY_HOSTS_DIR"
  cat > "$STATE/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "/run/shipcheck-containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This VM withholds CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj below the
  # parent's (pod sandboxes ask for -998): clamp instead of failing every pod.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
  # Per-registry settings (a CA to trust, in <host:port>/hosts.toml), read at every pull:
  # the registry path of the pipeline adds its registry here without restarting anything.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$REGISTRY_HOSTS_DIR"
EOF
  log "starting containerd for Kubernetes on $CONTAINERD_SOCK (log $STATE/containerd.log)"
  nohup containerd --config "$STATE/containerd.toml" >"$STATE/containerd.log" 2>&1 &
  echo $! > "$STATE/containerd.pid"
  for _ in $(seq 1 30); do ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1 && return; sleep 1; done
  tail -20 "$STATE/containerd.log" >&2; die "containerd did not start"
}

network() {
  # Debian's CNI plugins where local-up-cluster.sh looks (/opt/cni/bin), and an IPv4
  # bridge network for pods (the script's own CNI install downloads from GitHub). The
  # firewall plugin accepts pod traffic in FORWARD, whose policy dockerd sets to DROP
  # (with bridge netfilter on, even pod-to-pod traffic on cni0 passes FORWARD).
  for plugin in /usr/lib/cni/*; do ln -sf "$plugin" "/opt/cni/bin/$(basename "$plugin")"; done
  cat > /etc/cni/net.d/10-shipcheck.conflist <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "shipcheck",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"},
    {"type": "loopback"}
  ]
}
EOF
  # Shared mount propagation, as upstream does in containers (the VM boots with private
  # mounts): network namespaces and volume mounts must reach the runtime.
  mount --make-rshared /
  sysctl -qw net.ipv4.ip_forward=1
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1 || true
  # cgroup v1 controllers the kubelet asks for but the VM leaves unmounted.
  for controller in hugetlb net_cls perf_event; do
    if grep -qw "$controller" /proc/cgroups && ! mountpoint -q "/sys/fs/cgroup/$controller"; then
      mkdir -p "/sys/fs/cgroup/$controller" && mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller" || true
    fi
  done
}

system_images() {
  # pause and CoreDNS, built FROM scratch out of binaries compiled here, under the names
  # containerd and the DNS add-on manifest ask for.
  local tmp
  for pair in "$PAUSE_IMAGE:pause" "$COREDNS_IMAGE:coredns"; do
    local image=${pair%:*} binary=${pair##*:}
    "${CTR[@]}" images ls -q | grep -qx "$image" && continue
    tmp=$(mktemp -d)
    cp "$OUT/bin/$binary" "$tmp/$binary"
    printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' "$binary" "$binary" "$binary" > "$tmp/Dockerfile"
    DOCKER_BUILDKIT=1 /usr/bin/docker build -q -t "$image" "$tmp" >/dev/null
    /usr/bin/docker save "$image" | "${CTR[@]}" images import - >/dev/null
    rm -rf "$tmp"
    log "image $image ready in containerd"
  done
}

# NetworkPolicy enforcement (the bridge CNI has none): kube-router's firewall on the node,
# built and cached by setup/netpol-controller.sh. Started once the node is Ready, stopped
# first, leaving no process, iptables chain or ipset. SHIPCHECK_NETPOL_CONTROLLER=off skips it.
network_policy_controller() {
  [ "${SHIPCHECK_NETPOL_CONTROLLER:-on}" = off ] && [ "$1" = start ] && { log "NetworkPolicy controller off (SHIPCHECK_NETPOL_CONTROLLER=off)"; return; }
  bash "$SETUP_DIR/netpol-controller.sh" "$1"
}

start() {
  if answers && node_ready; then
    log "local cluster already running ($($KBIN/kubectl version --kubeconfig "$KUBECONFIG_PATH" -o json | sed -n 's/.*"gitVersion": "\(v1[^"]*\)".*/\1/p' | tail -1)); kubeconfig $KUBECONFIG_PATH"
    network_policy_controller start
    return
  fi
  bash "$SETUP_DIR/build-kubernetes.sh"
  host_packages
  bash "$SETUP_DIR/docker.sh"
  local t0; t0=$(date +%s)
  start_containerd
  network
  system_images
  # A fresh cluster every start (cached binaries and images make it quick): state kept
  # from an earlier run would hold pods bound to a node that is gone.
  rm -rf "$STATE/etcd"
  mkdir -p "$STATE/logs"
  log "starting Kubernetes $KUBERNETES_VERSION with hack/local-up-cluster.sh (logs $STATE/logs)"
  # The script wants cfssl, etcd and kubectl on PATH, and `sudo` even as root.
  # Eviction thresholds are relaxed (a full CI disk must not evict the app under test),
  # image GC is off (it would delete the pause and app images, which cannot be pulled).
  # The node registers under the host's own address, not 127.0.0.1: the API server
  # refuses to proxy to loopback (the kubelet's stats/summary, node proxy).
  local node_ip
  node_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  node_ip=${node_ip:-127.0.0.1}
  (cd "$SRC" && PATH="$OUT/bin:$KBIN:$PATH" HOSTNAME_OVERRIDE="$node_ip" KUBELET_HOST="$node_ip" \
     ENABLE_DAEMON=true GO_OUT="$KBIN" LOG_DIR="$STATE/logs" \
     CONTAINER_RUNTIME_ENDPOINT="unix://$CONTAINERD_SOCK" CGROUP_DRIVER=cgroupfs \
     KUBE_ENABLE_CLUSTER_DNS=true KUBE_DNS_MEMORY_LIMIT=170Mi KUBE_DEFAULT_STORAGE_CLASS=false \
     EVICTION_HARD="memory.available<100Mi,nodefs.available<1%,imagefs.available<1%,nodefs.inodesFree<1%" \
     KUBELET_FLAGS="--image-gc-high-threshold=100 --image-gc-low-threshold=99" \
     ETCD_DIR="$STATE/etcd" \
     with_heartbeat "starting the cluster" bash hack/local-up-cluster.sh -O >"$STATE/logs/local-up-cluster.log" 2>&1) || {
       tail -40 "$STATE/logs/local-up-cluster.log" >&2; die "local-up-cluster.sh failed; logs in $STATE/logs"; }
  for _ in $(seq 1 90); do node_ready && break; sleep 1; done
  node_ready || die "node not Ready after 90 s; see $STATE/logs/kubelet.log"
  log "local cluster Ready in $(( $(date +%s) - t0 )) s; kubeconfig $KUBECONFIG_PATH"
  network_policy_controller start
}

stop() {
  log "stopping the local cluster"
  network_policy_controller stop || true  # it names what it left behind; the cluster still stops
  if [ -S "$CONTAINERD_SOCK" ] && [ -x "$OUT/bin/crictl" ]; then
    # Pods first, while the kubelet can no longer restart them but containerd still runs.
    pkill -f "$KBIN/kubelet" 2>/dev/null || true
    "$OUT/bin/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" rmp --all --force >/dev/null 2>&1 || true
  fi
  for binary in "$KBIN/kube-proxy" "$KBIN/kube-scheduler" "$KBIN/kube-controller-manager" "$KBIN/kube-apiserver"; do
    pkill -f "$binary" 2>/dev/null || true
  done
  pkill -f "etcd .*--data-dir $STATE/etcd" 2>/dev/null || true   # started as plain `etcd` from PATH
  if [ -f "$STATE/containerd.pid" ]; then
    kill "$(cat "$STATE/containerd.pid")" 2>/dev/null || true
    rm -f "$STATE/containerd.pid"
  fi
  local ours="$KBIN/|etcd .*--data-dir $STATE/etcd|containerd --config $STATE"
  for _ in $(seq 1 20); do
    pgrep -f "$ours" >/dev/null || break
    sleep 0.5
  done
  pkill -9 -f "$ours" 2>/dev/null || true
  pkill -f "containerd-shim-runc-v2 -namespace k8s.io" 2>/dev/null || true
  # Mounts left by the kubelet (secrets, projected tokens) and by containerd (shm, rootfs).
  { grep -oE " (/var/lib/kubelet|/run/shipcheck-containerd|$CONTAINERD_ROOT)[^ ]*" /proc/mounts || true; } | sort -r | \
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  # The iptables chains of kube-proxy, the kubelet and the CNI plugins (Docker's rules
  # stay), and the pod bridge.
  [ -x "$KBIN/kube-proxy" ] && "$KBIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  for table in filter nat mangle; do
    if iptables-save -t "$table" | grep -qE '(KUBE|CNI)-'; then
      iptables-save -t "$table" | grep -vE '(KUBE|CNI)-' | iptables-restore -T "$table"
    fi
  done
  ip link delete cni0 2>/dev/null || true
  # What the issue promises: nothing of ours left. Say what remains rather than claim it.
  local procs mounts
  procs=$(pgrep -af "$ours|containerd-shim-runc-v2 -namespace k8s.io" || true)
  mounts=$(grep -E " (/var/lib/kubelet|/run/shipcheck-containerd|$CONTAINERD_ROOT)" /proc/mounts || true)
  if [ -n "$procs$mounts" ]; then
    printf 'left behind:\n%s\n%s\n' "$procs" "$mounts" >&2
    die "the local cluster did not stop cleanly (processes or mounts above); run '$0 stop' again"
  fi
  log "local cluster stopped; no processes or mounts left"
}

status() {
  if answers; then
    echo "running; kubeconfig $KUBECONFIG_PATH"; "${KUBECTL[@]}" get nodes -o wide
  else
    echo "not running"; return 1
  fi
}

load() {
  [ $# -gt 0 ] || die "usage: $0 load IMAGE..."
  for image in "$@"; do
    local t0; t0=$(date +%s)
    # Same image ID already in containerd (CRI reports the config digest, as docker does): skip.
    local want have
    want=$(/usr/bin/docker image inspect -f '{{.Id}}' "$image")
    have=$("$OUT/bin/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" inspecti -o go-template \
             --template '{{.status.id}}' "$image" 2>/dev/null || true)
    if [ "$want" = "$have" ]; then log "$image already in the local cluster"; continue; fi
    /usr/bin/docker save "$image" | "${CTR[@]}" images import - >/dev/null
    log "loaded $image into the local cluster in $(( $(date +%s) - t0 )) s"
  done
}

inspect_image() {  # what the node's containerd holds under IMAGE (crictl's JSON: id, repoDigests)
  "$OUT/bin/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" inspecti -o json "$1"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  load) shift; load "$@" ;;
  inspect-image) inspect_image "$2" ;;
  kubeconfig) echo "$KUBECONFIG_PATH" ;;
  *) echo "usage: $0 start|stop|status|load IMAGE...|inspect-image IMAGE|kubeconfig" >&2; exit 2 ;;
esac
