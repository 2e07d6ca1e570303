"""Before deploying: do the releases fit the namespace quota and the nodes, in every phase
(at rest, each pre-upgrade hook, each rolling update with its surge pod)?

The quota arithmetic is quota.py's; this module adds what the cluster has: allocatable
resources of its schedulable nodes, minus what pods outside the namespace already request.
"""

from __future__ import annotations

from decimal import Decimal

from . import progress, quota


def node_capacity(core, namespace: str, only_namespace: str | None = None) -> tuple[dict[str, str], dict[str, Decimal]]:
    """(allocatable summed over schedulable nodes, requests of pods outside `namespace`, or
    only of those in `only_namespace`). Summing nodes is exact for one node and optimistic
    for several (a pod needs one node)."""
    allocatable = {"cpu": Decimal(0), "memory": Decimal(0), "pods": Decimal(0)}
    names = []
    for node in core.list_node().items:
        if node.spec.unschedulable:
            continue
        names.append(node.metadata.name)
        for key in allocatable:
            allocatable[key] += quota.parse_quantity((node.status.allocatable or {}).get(key, "0"))
    reserved = {"cpu": Decimal(0), "memory": Decimal(0), "pods": Decimal(0)}
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
        if pod.metadata.namespace == namespace or pod.spec.node_name not in names:
            continue
        if only_namespace and pod.metadata.namespace != only_namespace:
            continue
        usage = quota.pod_usage(core.api_client.sanitize_for_serialization(pod.spec))
        reserved["cpu"] += usage["requests.cpu"]
        reserved["memory"] += usage["requests.memory"]
        reserved["pods"] += 1
    return {k: str(v) for k, v in allocatable.items()}, reserved


def fits(footprints: list[quota.Footprint], quota_hard: dict[str, str], quota_name: str,
         allocatable: dict[str, str], reserved: dict[str, Decimal]) -> tuple[list[quota.Fit], list[str]]:
    """Every phase against the quota and against the nodes; (all fits, problem sentences)."""
    results, problems = [], []
    for phase in quota.phases(footprints):
        checks = [quota.node_fit(phase, allocatable, reserved)]
        if quota_hard:
            checks.insert(0, quota.quota_fit(phase, quota_hard, quota_name))
        for fit in checks:
            results.append(fit)
            problems += [str(o) for o in fit.overflows]
    return results, problems
