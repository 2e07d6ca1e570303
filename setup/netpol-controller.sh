#!/usr/bin/env bash
# The local cluster's NetworkPolicy controller: kube-router's firewall alone (iptables +
# ipset on the node), built from the Go module proxy and cached by version.
#
#   setup/netpol-controller.sh build    build it once into $CACHE_DIR/kube-router-<version>/bin
#   setup/netpol-controller.sh start    build if needed, then run it against the local cluster
#                                       (the node must be Ready); a running one is reused
#   setup/netpol-controller.sh stop     stop it, remove its iptables chains and ipsets, and
#                                       fail naming whatever is left
#   setup/netpol-controller.sh status
#
# Why kube-router v2.1.0, firewall only (NOTES.md, "NetworkPolicies enforced"): the proxy
# serves it (and no later v2), it enforces with iptables and ipset, which this kernel has
# (sigs.k8s.io/kube-network-policies v0.7.0/v0.8.0 need the nftables `queue` expression,
# CONFIG_NFT_QUEUE, which it lacks). Its reported flaws are in parts not run here: the BGP
# router's gRPC server (--run-router) and the service proxy (--run-service-proxy). It
# listens on no port: the health server (which would also serve net/http/pprof, imported
# by its main package) and metrics are off.
set -euo pipefail
source "$(dirname "$0")/common.sh"

KUBE_ROUTER_VERSION=${KUBE_ROUTER_VERSION:-v2.1.0}
KR_MODULE=github.com/cloudnativelabs/kube-router/v2
KR_DIR=$CACHE_DIR/kube-router-$KUBE_ROUTER_VERSION
KR_BIN=$KR_DIR/bin/kube-router
STATE=/var/lib/shipcheck-cluster
KR_PID=$STATE/kube-router.pid
KR_LOG=$STATE/logs/kube-router.log
KR_KUBECONFIG=$STATE/kube-router.kubeconfig
ADMIN_KUBECONFIG=/var/run/kubernetes/admin.kubeconfig
# The cluster's own kubectl (setup/build-kubernetes.sh), else one on PATH.
KBIN=$CACHE_DIR/kubernetes-$KUBERNETES_VERSION/src/_output/local/bin/linux/amd64
KUBECTL=("$( [ -x "$KBIN/kubectl" ] && echo "$KBIN/kubectl" || echo kubectl)" --kubeconfig "$ADMIN_KUBECONFIG")
# What kube-router's firewall leaves in the filter table and in ipset.
CHAINS_RE='KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)|KUBE-NWPLCY-|KUBE-POD-FW-'
IPSETS_RE='^(inet6:)?KUBE-(SRC|DST)-'

running() { [ -f "$KR_PID" ] && kill -0 "$(cat "$KR_PID")" 2>/dev/null; }

build() {
  apt_install ipset iptables
  if [ -x "$KR_BIN" ]; then return; fi
  command -v go >/dev/null || die "go not found: bash setup/tools.sh installs it"
  log "building kube-router $KUBE_ROUTER_VERSION from the Go module proxy (cached in $KR_DIR)"
  mkdir -p "$KR_DIR/bin"
  local flags="-s -w -X $KR_MODULE/pkg/version.Version=$KUBE_ROUTER_VERSION -X $KR_MODULE/pkg/version.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  GOBIN=$KR_DIR/bin GOFLAGS=-mod=mod CGO_ENABLED=0 with_heartbeat "building kube-router" \
    nice -n 10 go install -trimpath -ldflags "$flags" "$KR_MODULE/cmd/kube-router@$KUBE_ROUTER_VERSION"
  "$KR_BIN" --version >/dev/null 2>&1 || die "kube-router built but does not run: $KR_BIN --version"
}

# kube-router reads pods, namespaces, nodes and NetworkPolicies: it gets a ServiceAccount
# allowed exactly that, not the cluster admin's credentials.
credentials() {
  "${KUBECTL[@]}" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: ServiceAccount
metadata: {name: shipcheck-netpol-controller, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: shipcheck-netpol-controller}
rules:
  - apiGroups: [""]
    resources: [pods, namespaces, nodes, services, endpoints]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: shipcheck-netpol-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: shipcheck-netpol-controller}
subjects: [{kind: ServiceAccount, name: shipcheck-netpol-controller, namespace: kube-system}]
EOF
  local token server ca
  token=$("${KUBECTL[@]}" -n kube-system create token shipcheck-netpol-controller --duration=24h)
  server=$("${KUBECTL[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$("${KUBECTL[@]}" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  if [ -z "$ca" ]; then
    ca=$(base64 -w0 < "$("${KUBECTL[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')")
  fi
  umask 077
  cat > "$KR_KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: netpol-controller, user: {token: "$token"}}]
contexts: [{name: local, context: {cluster: local, user: netpol-controller}}]
current-context: local
EOF
}

start() {
  build
  if running; then log "NetworkPolicy controller already running (kube-router pid $(cat "$KR_PID"))"; return; fi
  "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1 || die "the local cluster does not answer; start it first"
  local node cidr
  node=$("${KUBECTL[@]}" get nodes -o jsonpath='{.items[0].metadata.name}')
  # The Service range the API server was started with (kube-router admits traffic to it).
  cidr=$(pgrep -a kube-apiserver | grep -o -- '--service-cluster-ip-range=[^ ]*' | head -1 | cut -d= -f2)
  cidr=${cidr:-10.0.0.0/24}
  credentials
  mkdir -p "$STATE/logs"
  log "starting the NetworkPolicy controller: kube-router $KUBE_ROUTER_VERSION, firewall only, node $node (log $KR_LOG)"
  nohup "$KR_BIN" --kubeconfig="$KR_KUBECONFIG" --hostname-override="$node" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --enable-cni=false --enable-ipv4=true --enable-ipv6=false \
    --service-cluster-ip-range="$cidr" --health-port=0 --metrics-port=0 \
    >"$KR_LOG" 2>&1 &
  echo $! > "$KR_PID"
  local t0; t0=$(date +%s)
  for _ in $(seq 1 60); do
    if ! running; then tail -20 "$KR_LOG" >&2; rm -f "$KR_PID"; stop_quietly; die "kube-router exited; log above"; fi
    # Ready when its top-level chain is in FORWARD: from then on policies are enforced.
    iptables -S FORWARD 2>/dev/null | grep -q -- '-j KUBE-ROUTER-FORWARD' && break
    sleep 0.5
  done
  iptables -S FORWARD | grep -q -- '-j KUBE-ROUTER-FORWARD' || { tail -20 "$KR_LOG" >&2; stop; die "kube-router set no rule in 30 s"; }
  log "NetworkPolicy controller enforcing after $(( $(date +%s) - t0 )) s (kube-router pid $(cat "$KR_PID"))"
}

remove_rules() {
  # Jumps from the built-in chains first, then kube-router's chains (flushed, then deleted,
  # as they refer to each other), then its ipsets (free once no rule refers to them).
  local chain rule
  for chain in INPUT FORWARD OUTPUT; do
    { iptables -S "$chain" 2>/dev/null | grep -E -- "-j ($CHAINS_RE)" || true; } | sed 's/^-A /-D /' | while read -r rule; do
      eval "iptables $rule" 2>/dev/null || true
    done
  done
  local chains
  chains=$(iptables -S 2>/dev/null | sed -n 's/^-N //p' | grep -E "^($CHAINS_RE)" || true)
  for chain in $chains; do iptables -F "$chain" 2>/dev/null || true; done
  for chain in $chains; do iptables -X "$chain" 2>/dev/null || true; done
  { ipset list -n 2>/dev/null | grep -E "$IPSETS_RE" || true; } | while read -r set; do ipset destroy "$set" 2>/dev/null || true; done
}

stop_quietly() {
  if running; then
    local pid; pid=$(cat "$KR_PID")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$KR_PID" "$KR_KUBECONFIG"
  remove_rules
}

stop() {
  log "stopping the NetworkPolicy controller"
  stop_quietly
  # What stop promises: no process, chain, rule or ipset of kube-router left.
  local procs rules sets
  procs=$(pgrep -af "$KR_BIN" || true)
  rules=$(iptables-save -t filter 2>/dev/null | grep -E "$CHAINS_RE" || true)
  sets=$(ipset list -n 2>/dev/null | grep -E "$IPSETS_RE" || true)
  if [ -n "$procs$rules$sets" ]; then
    printf 'left behind:\n%s\n%s\n%s\n' "$procs" "$rules" "$sets" >&2
    die "the NetworkPolicy controller did not stop cleanly (above); run '$0 stop' again"
  fi
  if "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1; then
    "${KUBECTL[@]}" delete clusterrolebinding/shipcheck-netpol-controller clusterrole/shipcheck-netpol-controller \
      -n kube-system serviceaccount/shipcheck-netpol-controller --ignore-not-found >/dev/null 2>&1 || true
  fi
  log "NetworkPolicy controller stopped; no process, iptables chain or ipset of it left"
}

status() {
  if running; then
    echo "kube-router $KUBE_ROUTER_VERSION running (pid $(cat "$KR_PID")); $(iptables-save -t filter | grep -cE "^-A ($CHAINS_RE)") rules"
  else
    echo "not running"; return 1
  fi
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 build|start|stop|status" >&2; exit 2 ;;
esac
