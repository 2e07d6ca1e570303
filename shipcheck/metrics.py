"""Usage of running pods, from the kubelet's Summary API (`/stats/summary`).

`pod_usage` is pure: it turns one node's Summary document into CPU (millicores) and
memory (working-set bytes, what `kubectl top` and eviction use) per pod and container.
A container the kubelet has no sample of yet is left out: CPU usage is a rate, so it is
missing for a container's first ~10-15 s (wait with `is_sampled`). The health stage charts
these against requests and limits.

`read_summary` reads the document through the API server's node proxy
(`GET /api/v1/nodes/{node}/proxy/stats/summary`).
"""

from __future__ import annotations

import json
from typing import Iterable

SUMMARY_PATH = "stats/summary"

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


# --- reading the cluster ---------------------------------------------------------------------
def read_summary(kube, node: str, timeout_s: float = 10) -> dict:
    """The Summary document of `node` through the API server's node proxy; kube is a
    deploy.KubeApis. (The API server will not proxy to a node registered at a loopback
    address: setup/local-cluster.sh registers the node under the host's address.)"""
    response = kube.core.connect_get_node_proxy_with_path(node, SUMMARY_PATH, _preload_content=False,
                                                         _request_timeout=timeout_s)
    return json.loads(response.data)
