"""Evidence for a failed deploy or health check, gathered before anything is rolled back or
deleted: pod descriptions, container logs (previous containers too), namespace events,
helm status and history, quota usage. Collection never raises; a part that cannot be read
says why instead.
"""

from __future__ import annotations

from typing import Callable

from . import commands

Evidence = list[tuple[str, str]]  # (title, text)


def _safe(title: str, fn: Callable[[], str]) -> tuple[str, str]:
    try:
        return title, commands.scrub(fn() or "(empty)")
    except Exception as exc:
        return title, f"(could not collect: {type(exc).__name__}: {exc})"


def collect(kubectl: list[str], helm, namespace: str, releases: list[str], core_api=None,
            max_log_lines: int = 80) -> Evidence:
    """kubectl: argv prefix with kubeconfig/context flags; helm: releases.Helm or None."""
    def kc(*args: str) -> str:
        result = commands.run([*kubectl, *args, "--namespace", namespace], check=False, timeout_s=60)
        return result.stdout if result.ok else result.stdout + result.stderr

    evidence: Evidence = [
        _safe(f"events in {namespace} (oldest first)", lambda: kc("get", "events", "--sort-by=.lastTimestamp")),
        _safe(f"pods in {namespace}", lambda: kc("get", "pods", "-o", "wide")),
        _safe(f"quota usage in {namespace}", lambda: kc("describe", "resourcequota")),
    ]
    for release in releases:
        selector = f"app.kubernetes.io/instance={release}"
        evidence.append(_safe(f"describe pods of {release}", lambda s=selector: kc("describe", "pods", "-l", s)))
        if helm is not None:
            evidence.append(_safe(f"helm status {release}", lambda r=release: _output(helm.run("status", r, check=False))))
            evidence.append(_safe(f"helm history {release}", lambda r=release: helm.run("history", r, check=False).stdout))
        if core_api is not None:
            evidence += container_logs(core_api, namespace, selector, max_log_lines)
    return evidence


def _output(result: commands.CommandResult) -> str:
    return result.stdout + result.stderr


def container_logs(core_api, namespace: str, selector: str, max_lines: int) -> Evidence:
    evidence: Evidence = []
    try:
        pods = core_api.list_namespaced_pod(namespace, label_selector=selector).items
    except Exception as exc:
        return [(f"logs of {selector}", f"(could not list pods: {exc})")]
    for pod in pods:
        statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
        for cs in statuses:
            name = f"{pod.metadata.name}/{cs.name}"
            evidence.append(_safe(f"log {name}", lambda p=pod.metadata.name, c=cs.name: core_api.read_namespaced_pod_log(
                p, namespace, container=c, tail_lines=max_lines)))
            if cs.restart_count:
                evidence.append(_safe(f"log {name} (previous container)", lambda p=pod.metadata.name, c=cs.name:
                                      core_api.read_namespaced_pod_log(p, namespace, container=c, previous=True,
                                                                       tail_lines=max_lines)))
    return evidence
