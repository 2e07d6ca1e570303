"""Before deploying: do the releases fit the namespace quota and the nodes, in every phase
(at rest, each pre-upgrade hook, each rolling update with its surge pod and the old pod
still terminating beside it)?

The quota arithmetic is quota.py's; this module adds what the cluster has: allocatable
resources of its schedulable nodes, and what the pods already scheduled on them request,
per namespace (kube-system, and other teams' or tests' app pods on a shared node: the
scheduler counts them all).
"""

from __future__ import annotations

from decimal import Decimal

from . import progress, quota

NODE_KEYS = ("cpu", "memory", "pods")


def node_capacity(core, namespace: str, only_namespace: str | None = None
                  ) -> tuple[dict[str, str], dict[str, dict[str, Decimal]]]:
    """(allocatable summed over schedulable nodes, {namespace: requests of its pods on those
    nodes}) for pods outside `namespace` (whose pods the releases replace), or only those of
    `only_namespace`. Pods that finished (Succeeded/Failed) hold nothing; pods still
    terminating do until they are gone. Summing nodes is exact for one node and optimistic
    for several (a pod needs one node)."""
    allocatable = {key: Decimal(0) for key in NODE_KEYS}
    names = set()
    for node in core.list_node().items:
        if node.spec.unschedulable:
            continue
        names.add(node.metadata.name)
        for key in allocatable:
            allocatable[key] += quota.parse_quantity((node.status.allocatable or {}).get(key, "0"))
    reserved: dict[str, dict[str, Decimal]] = {}
    try:
        pods = core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded,status.phase!=Failed").items
    except Exception as exc:
        if getattr(exc, "status", None) != 403:
            raise
        # A least-privilege account (examples/rbac/) reads only its own namespace: what other
        # namespaces request is unknown, so the node fit is judged against allocatable alone.
        progress.say("pods of other namespaces are not readable (RBAC): the node fit counts none of their requests")
        pods = []
    for pod in pods:
        owner = pod.metadata.namespace
        if owner == namespace or pod.spec.node_name not in names:
            continue
        if only_namespace and owner != only_namespace:
            continue
        usage = quota.pod_usage(core.api_client.sanitize_for_serialization(pod.spec))
        held = reserved.setdefault(owner, {key: Decimal(0) for key in NODE_KEYS})
        held["cpu"] += usage["requests.cpu"]
        held["memory"] += usage["requests.memory"]
        held["pods"] += 1
    return {k: str(v) for k, v in allocatable.items()}, reserved


def fits(footprints: list[quota.Footprint], quota_hard: dict[str, str], quota_name: str,
         allocatable: dict[str, str], reserved: dict) -> tuple[list[quota.Fit], list[str]]:
    """Every phase against the quota and against the nodes; (all fits, problem sentences).
    `reserved` is node_capacity's (per namespace), or a flat map of system pods."""
    results, problems = [], []
    for phase in quota.phases(footprints):
        checks = [quota.node_fit(phase, allocatable, reserved)]
        if quota_hard:
            checks.insert(0, quota.quota_fit(phase, quota_hard, quota_name))
        for fit in checks:
            results.append(fit)
            problems += [str(o) for o in fit.overflows]
    return results, problems
