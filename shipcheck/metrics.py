"""Usage of running pods, from the kubelet's Summary API (`/stats/summary`).

`pod_usage` is pure: it turns one node's Summary document into CPU (millicores) and
memory (working-set bytes, what `kubectl top` and eviction use) per pod and container.
A container the kubelet has no sample of yet is left out: CPU usage is a rate, so it is
missing for a container's first ~10-15 s (wait with `is_sampled`). The health stage charts
these against requests and limits.

`read_summary` reads the document through the API server's node proxy
(`GET /api/v1/nodes/{node}/proxy/stats/summary`). The API server refuses to proxy to a
loopback address ("address not allowed"); a single-node cluster whose kubelet registered
and listens on 127.0.0.1 (setup/local-cluster.sh) is read on that loopback address
directly instead, with the kubeconfig's own credentials.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.request
from typing import Iterable

from . import progress

SUMMARY_PATH = "stats/summary"
DEFAULT_KUBELET_PORT = 10250
_read_directly: set[str] = set()  # nodes already reported as read past the API server

Usage = dict[str, dict[str, dict[str, float | int]]]  # pod -> container -> {"cpu_millicores", "memory_bytes"}


# --- pure ------------------------------------------------------------------------------------
def pod_usage(summary: dict, namespace: str) -> Usage:
    """{pod: {container: {"cpu_millicores": float, "memory_bytes": int}}} for the pods of
    `namespace` in a Summary document. Containers without both a CPU and a memory sample
    yet are left out (a pod with none of them maps to {})."""
    usage: Usage = {}
    for pod in summary.get("pods") or []:
        ref = pod.get("podRef") or {}
        if ref.get("namespace") != namespace:
            continue
        containers = usage.setdefault(ref.get("name", "?"), {})
        for container in pod.get("containers") or []:
            nano_cores = (container.get("cpu") or {}).get("usageNanoCores")
            working_set = (container.get("memory") or {}).get("workingSetBytes")
            if nano_cores is None or working_set is None:
                continue
            containers[container.get("name", "?")] = {"cpu_millicores": nano_cores / 1e6,
                                                      "memory_bytes": int(working_set)}
    return usage


def is_sampled(usage: Usage, pod: str, containers: Iterable[str]) -> bool:
    """Every one of the pod's `containers` (at least one) has usage figures."""
    wanted = set(containers)
    return bool(wanted) and wanted <= set(usage.get(pod) or {})


def kubelet_endpoint(node: dict) -> tuple[str, int]:
    """(address, port) where the node's kubelet answers: its InternalIP (else the first
    address), and the port it reports in status.daemonEndpoints."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    chosen = next((a["address"] for a in addresses if a.get("type") == "InternalIP"),
                  addresses[0]["address"] if addresses else node["metadata"]["name"])
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_KUBELET_PORT
    return chosen, int(port)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# --- reading the cluster ---------------------------------------------------------------------
def read_summary(kube, node: str, timeout_s: float = 10) -> dict:
    """The Summary document of `node`; kube is a deploy.KubeApis."""
    from kubernetes.client import ApiException

    try:
        response = kube.core.connect_get_node_proxy_with_path(node, SUMMARY_PATH, _preload_content=False,
                                                             _request_timeout=timeout_s)
        return json.loads(response.data)
    except ApiException as exc:
        if not (exc.status == 400 and "address not allowed" in str(exc.body)):
            raise
        refused = exc
    address, port = kubelet_endpoint(kube.api_client.sanitize_for_serialization(kube.core.read_node(node)))
    if not is_loopback(address):
        raise RuntimeError(f"the API server refuses to proxy to node {node} at {address} ({refused.body}); "
                           "register the node with an address the API server may proxy to") from refused
    if node not in _read_directly:
        _read_directly.add(node)
        progress.say(f"node {node} registered the loopback address {address}, which the API server will not proxy "
                     f"to; reading its kubelet at https://{address}:{port} directly")
    return _read_kubelet(kube.api_client.configuration, address, port, timeout_s)


def _read_kubelet(configuration, address: str, port: int, timeout_s: float) -> dict:
    """GET /stats/summary from a kubelet on this machine with the kubeconfig's credentials
    (the kubelet authenticates a client certificate of the cluster's client CA, or a bearer
    token). Its serving certificate is self-signed, and the API server does not verify it
    either (no --kubelet-certificate-authority): verification is off, for loopback only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    headers = {"Accept": "application/json"}
    if configuration.cert_file and configuration.key_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    elif (configuration.api_key or {}).get("authorization"):
        headers["Authorization"] = configuration.api_key["authorization"]
    else:
        raise RuntimeError("the kubeconfig has neither a client certificate nor a token to present to the kubelet")
    request = urllib.request.Request(f"https://{address}:{port}/{SUMMARY_PATH}", headers=headers)
    with urllib.request.urlopen(request, context=context, timeout=timeout_s) as response:
        return json.loads(response.read())
